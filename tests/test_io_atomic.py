"""The atomic writer: a kill during a write leaves nothing behind after the next write of that
file, no other file is ever removed, results honour the umask, a failed write leaves the old file
(issues 12, 19)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from spikebridge.io import (
    atomic_write,
    remove_stale_temporaries,
    write_json,
    write_text,
)


def _temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def _killed_during_write(target: Path) -> None:
    """A forked process starts writing ``target`` and is killed (SIGKILL) halfway."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:

            def write(tmp: str) -> None:
                Path(tmp).write_text("half of a new res")
                os.write(ready_w, b"1")
                time.sleep(60)

            write_text(target, "never")  # replaced by the slow writer below
            atomic_write(target, write)
        finally:
            os._exit(1)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_kill_during_write_leaves_no_stale_file_after_the_next_write(tmp_path):
    target = tmp_path / "summary.json"
    _killed_during_write(target)
    stale = _temporaries(tmp_path)
    assert len(stale) == 1 and stale[0].startswith(".summary.json.spikebridge-")
    assert target.read_text() == "never"  # the killed write never became visible
    write_json(tmp_path / "other.json", {"a": 1})  # another file's write leaves it alone
    assert _temporaries(tmp_path) == stale
    write_json(target, {"a": 2})  # the next write of the same file removes it
    assert _temporaries(tmp_path) == []
    assert target.read_text().startswith("{")


def test_live_writers_temporary_files_are_kept(tmp_path):
    own = tmp_path / f".x.csv.spikebridge-{os.getpid()}-0123abcd.tmp"
    own.write_text("being written")
    parent = tmp_path / f".x.csv.spikebridge-{os.getppid()}-0123abcd.tmp"
    parent.write_text("being written by a running process")
    assert remove_stale_temporaries(tmp_path / "x.csv") == []
    assert own.exists() and parent.exists()


def test_only_the_writers_own_temporaries_are_ever_removed(tmp_path):
    dead = _dead_pid()
    stamp = time.time() - 7200
    foreign = [
        ".thesis.abcd1234.tmp",  # another program's, two hours old
        ".results.json.ab_c9xyz.tmp",  # what versions before 0.9 named theirs: left alone
        f".results.json.{dead}-0123abcd.tmp",
        f".other.json.spikebridge-{dead}-0123abcd.tmp",  # another file's: not this write's
        f".results.json.spikebridge-{dead}-0123abcd.tmp.keep",
        ".notes.tmp",
    ]
    for name in foreign:
        (tmp_path / name).write_text("not yours")
        os.utime(tmp_path / name, (stamp, stamp))
    ours = tmp_path / f".results.json.spikebridge-{dead}-0123abcd.tmp"
    ours.write_text("half")
    write_json(tmp_path / "results.json", {"a": 1})
    assert not ours.exists()
    for name in foreign:
        assert (tmp_path / name).read_text() == "not yours"
        assert (tmp_path / name).stat().st_mtime == pytest.approx(stamp)


def _dead_pid() -> int:
    """A pid that is not running (a child that has exited and been reaped)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_results_honour_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = write_text(tmp_path / "summary.json", "{}")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == mode


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = write_text(tmp_path / "a.txt", "old")

    def broken(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert _temporaries(tmp_path) == []
