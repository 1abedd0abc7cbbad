"""An output directory owned by one run at a time: the lock, the ownership record and the resume
check (issue 12)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import readonly_dirs

from spikebridge.io import write_text
from spikebridge.rundir import (
    LOCK_NAME,
    RECORD_NAME,
    DirectoryBusy,
    DirectoryNotOwned,
    DirectoryNotWritable,
    ResumeMismatch,
    check_resume,
    claim,
    read_record,
    resume_differences,
)

read_only = readonly_dirs.read_only  # the fixture
TRAIN = {"arch": "cnn", "timesteps": 4, "epochs": 2, "lr": 0.001, "seed": 0, "batch_size": 32}


class Holder:
    """A second process (forked, so no re-import of torch) that claims ``directory``, writes a
    result and holds the directory until :meth:`finish` (or until it is killed)."""

    def __init__(self, directory: Path):
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into pytest
            code = 1
            try:
                os.close(ready_r)
                os.close(go_w)
                with claim(directory, "train", TRAIN) as run:
                    run.begin()
                    write_text(run.path / "result.txt", "first run")
                    os.write(ready_w, b"claimed")
                    os.read(go_r, 1)
                    run.finish([run.path / "result.txt"])
                code = 0
            finally:
                os._exit(code)
        os.close(ready_w)
        os.close(go_r)
        self.pid = pid
        self._go = go_w
        assert os.read(ready_r, 16) == b"claimed"
        os.close(ready_r)

    def finish(self) -> int:
        os.write(self._go, b"x")
        os.close(self._go)
        return os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self._go)


def test_second_process_is_refused_with_the_holders_pid_and_first_files_stay(tmp_path):
    out = tmp_path / "run"
    holder = Holder(out)
    try:
        before = (out / "result.txt").read_bytes()
        with pytest.raises(DirectoryBusy, match=rf"pid {holder.pid}\b.*spikebridge train") as err:
            claim(out, "train", TRAIN)
        assert err.value.pid == holder.pid
        assert "--out" in str(err.value)
        assert (out / "result.txt").read_bytes() == before
    finally:
        assert holder.finish() == 0
    assert (out / "result.txt").read_text() == "first run"
    assert read_record(out)["status"] == "finished"
    assert not (out / LOCK_NAME).exists()
    # released: the same run may now take it again
    with claim(out, "train", TRAIN, resume=True):
        pass


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    out = tmp_path / "run"
    holder = Holder(out)
    holder.kill()
    # the kernel dropped the flock; the lock file left behind does not block the next run
    assert (out / LOCK_NAME).exists()
    with claim(out, "train", TRAIN, resume=True) as run:
        assert run.previous["status"] == "running"
    assert not (out / LOCK_NAME).exists()


def test_claims_in_one_process_exclude_each_other(tmp_path):
    with claim(tmp_path / "d", "convert", {"seed": 0}):
        with pytest.raises(DirectoryBusy, match=f"pid {os.getpid()}"):
            claim(tmp_path / "d", "convert", {"seed": 0})


def test_other_command_and_other_experiment_are_refused_unless_overwrite(tmp_path):
    out = tmp_path / "run"
    with claim(out, "compare", {"seed": 0}) as run:
        run.begin()
        run.finish()
    with pytest.raises(DirectoryNotOwned, match=r"`spikebridge compare`.*--overwrite"):
        claim(out, "convert", {"seed": 0})
    with pytest.raises(DirectoryNotOwned, match=r"--seed: 0 in DIR, 1 now"):
        claim(out, "compare", {"seed": 1})
    with claim(out, "compare", {"seed": 0}) as run:  # the same experiment again
        assert run.previous["settings"] == {"seed": 0}
    with claim(out, "convert", {"seed": 1}, overwrite=True) as run:
        run.begin()
    assert read_record(out)["command"] == "convert"


def test_training_rerun_without_resume_is_refused(tmp_path):
    out = tmp_path / "run"
    with claim(out, "train", TRAIN, rerun=False) as run:
        run.begin()
    with pytest.raises(DirectoryNotOwned, match="--resume to continue it"):
        claim(out, "train", TRAIN, rerun=False)


def test_directory_with_unrecorded_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DirectoryNotOwned, match=r"not empty \(notes.txt\)"):
        claim(tmp_path, "train", TRAIN)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_resume_keeps_the_ownership_check_for_unrecorded_files(tmp_path):
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(DirectoryNotOwned, match=r"--resume: .*no spikebridge run record"):
        claim(tmp_path, "train", TRAIN, resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    with claim(tmp_path, "train", TRAIN, resume=True, overwrite=True) as run:  # the user's word
        assert run.previous is None


def test_the_failure_record_is_written_in_reserved_space(tmp_path, monkeypatch):
    from spikebridge import io

    with pytest.raises(ValueError, match="boom"):
        with claim(tmp_path / "run", "train", TRAIN) as run:
            run.begin(planned=["checkpoint.pt"])
            reserved = [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
            assert len(reserved) == 1 and reserved[0].startswith(".run.json.spikebridge-")

            def full(path, text):
                raise OSError(28, "No space left on device", str(path))

            monkeypatch.setattr(io, "write_text", full)  # the disk is full from here on
            raise ValueError("boom")
    record = read_record(tmp_path / "run")
    assert record["status"] == "failed" and record["error"] == "ValueError: boom"
    assert record["files"] == ["checkpoint.pt", "checkpoint.pt.sha256"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [RECORD_NAME]


def test_refused_or_failed_claims_leave_the_directory_as_found(tmp_path):
    out = tmp_path / "new" / "run"
    with pytest.raises(RuntimeError, match="boom"):
        with claim(out, "train", TRAIN):
            raise RuntimeError("boom")  # e.g. a bad data file, before compute began
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "old"
    with claim(existing, "train", TRAIN) as run:
        run.begin()
    record = (existing / RECORD_NAME).read_bytes()
    with pytest.raises(ResumeMismatch):
        claim(existing, "train", {**TRAIN, "timesteps": 8}, resume=True)
    assert (existing / RECORD_NAME).read_bytes() == record
    assert sorted(p.name for p in existing.iterdir()) == [RECORD_NAME]


def test_a_failure_after_begin_is_recorded(tmp_path):
    with pytest.raises(ValueError):
        with claim(tmp_path / "run", "train", TRAIN) as run:
            run.begin()
            raise ValueError("the loss became nan")
    record = read_record(tmp_path / "run")
    assert record["status"] == "failed" and "nan" in record["error"]


def test_resume_refuses_each_changed_setting_by_name():
    changed = {**TRAIN, "timesteps": 8, "lr": 0.01, "seed": 3}
    problems = resume_differences(TRAIN, changed)
    assert [p.split(":")[0] for p in problems] == ["--ann-lr", "--seed", "--timesteps"]
    with pytest.raises(ResumeMismatch, match=r"--timesteps: 4 in the run being resumed, 8 now"):
        check_resume(TRAIN, changed)


def test_resume_lets_epochs_grow_but_not_shrink():
    check_resume(TRAIN, {**TRAIN, "epochs": 5})
    with pytest.raises(ResumeMismatch, match=r"--ann-epochs: 1 now, fewer than the 2"):
        check_resume(TRAIN, {**TRAIN, "epochs": 1})


def test_resume_into_a_directory_of_another_command_is_refused(tmp_path):
    with claim(tmp_path, "convert", {"seed": 0}) as run:
        run.begin()
    with pytest.raises(DirectoryNotOwned, match="`spikebridge convert`"):
        claim(tmp_path, "train", TRAIN, resume=True)


def test_corrupt_record_is_refused(tmp_path):
    (tmp_path / RECORD_NAME).write_text("{not json")
    with pytest.raises(DirectoryNotOwned, match="not a readable spikebridge run record"):
        claim(tmp_path, "train", TRAIN)


def test_file_in_place_of_the_directory(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(NotADirectoryError, match="--out"):
        claim(target, "train", TRAIN)
    with pytest.raises(NotADirectoryError, match="is a file"):
        claim(target / "sub", "train", TRAIN)


def test_other_ranks_do_not_claim(tmp_path):
    with claim(tmp_path / "d", "train", TRAIN, rank=1) as run:
        assert not run.held
    assert not (tmp_path / "d").exists()


def test_record_is_json_with_the_files_written(tmp_path):
    with claim(tmp_path, "convert", {"seed": 0}) as run:
        run.begin()
        (tmp_path / "a.csv").write_text("1")
        run.finish([tmp_path / "a.csv"], seconds=1.5)
    record = json.loads((tmp_path / RECORD_NAME).read_text())
    assert record["files"] == ["a.csv"] and record["seconds"] == 1.5
    assert record["command"] == "convert" and record["settings"] == {"seed": 0}


def test_not_writable_is_named(tmp_path, read_only):
    parent = tmp_path / "ro"
    parent.mkdir()
    read_only(parent)
    with pytest.raises(DirectoryNotWritable, match=r"--out .*ro/run.* is not writable"):
        claim(parent / "run", "train", TRAIN)
    with pytest.raises(DirectoryNotWritable, match=r"--out .*ro.* is not writable"):
        claim(parent, "train", TRAIN)


def test_busy_message_waits_for_nothing(tmp_path):
    """The refusal is immediate (a non-blocking lock), not a wait for the holder."""
    with claim(tmp_path, "train", TRAIN):
        start = time.perf_counter()
        with pytest.raises(DirectoryBusy):
            claim(tmp_path, "train", TRAIN)
        assert time.perf_counter() - start < 1.0


def test_an_unrecorded_directory_the_command_recognises_is_adopted(tmp_path):
    (tmp_path / "experiment.json").write_text('{"seed": 0}')
    with pytest.raises(DirectoryNotOwned):
        claim(tmp_path, "compare", {"seed": 0}, adopt=lambda d: False)
    with claim(tmp_path, "compare", {"seed": 0}, adopt=lambda d: True) as run:
        assert run.previous is None


def test_a_lock_taken_but_not_yet_written_still_names_its_holder(tmp_path):
    """The holder writes its pid just after it takes the lock; a second run that arrives in
    between waits for that record instead of reporting an unknown holder."""
    import fcntl
    import threading

    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    info = {"pid": 4242, "command": "compare", "host": os.uname().nodename}
    writer = threading.Timer(0.2, os.pwrite, (fd, json.dumps(info).encode(), 0))
    writer.start()
    try:
        with pytest.raises(DirectoryBusy, match=r"pid 4242\b.*spikebridge compare") as err:
            claim(tmp_path, "train", TRAIN)
        assert err.value.pid == 4242
    finally:
        writer.join()
        os.close(fd)
