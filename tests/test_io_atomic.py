"""The atomic writer: a kill during a write leaves nothing behind after the next write, results
honour the umask, a failed write leaves the old file (issue 12)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from spikebridge.io import (
    LEGACY_TEMP_AGE_SECONDS,
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
    assert len(stale) == 1 and stale[0].startswith(".summary.json.")
    assert target.read_text() == "never"  # the killed write never became visible
    write_json(tmp_path / "other.json", {"a": 1})  # any next write to the directory
    assert _temporaries(tmp_path) == []
    assert target.read_text() == "never"


def test_live_writers_temporary_files_are_kept(tmp_path):
    own = tmp_path / f".x.csv.{os.getpid()}-0123abcd.tmp"
    own.write_text("being written")
    parent = tmp_path / f".y.csv.{os.getppid()}-0123abcd.tmp"
    parent.write_text("being written by a running process")
    assert remove_stale_temporaries(tmp_path) == []
    assert own.exists() and parent.exists()


def test_pidless_temporaries_of_earlier_versions_go_once_old(tmp_path):
    old = tmp_path / ".results.json.ab_c9xyz.tmp"
    old.write_text("x")
    assert remove_stale_temporaries(tmp_path) == []  # could still be in use
    stamp = time.time() - LEGACY_TEMP_AGE_SECONDS - 10
    os.utime(old, (stamp, stamp))
    assert remove_stale_temporaries(tmp_path) == [old]
    other = tmp_path / ".notes.tmp"  # not a name the writer makes: never touched
    other.write_text("user's")
    os.utime(other, (stamp, stamp))
    assert remove_stale_temporaries(tmp_path) == []


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
