"""An exclusive lock on a directory, held by one process: ``DIR/.spikebridge.lock`` locked with
``fcntl.flock`` (non-blocking). The kernel releases the lock when the process exits, is killed or
crashes, so no stale lock survives; the file holds the holder's pid for the message a second
process gets. Used by :mod:`spikebridge.rundir`.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

LOCK_NAME = ".spikebridge.lock"


class LockHeld(Exception):
    """Another process holds the lock; ``holder`` is what it wrote (pid, command, ...)."""

    def __init__(self, holder: dict[str, Any]):
        super().__init__(f"locked by {holder.get('pid', 'another process')}")
        self.holder = holder


def acquire(directory: Path, info: dict[str, Any]) -> int:
    """Lock ``directory`` and write ``info`` (JSON) into the lock file; returns the file
    descriptor that holds the lock (pass it to :func:`release`).

    Raises :class:`LockHeld` when another process holds it, OSError when the lock file cannot
    be created (e.g. a read-only directory).
    """
    import fcntl  # POSIX only; imported here so that the rest of spikebridge imports anywhere

    path = Path(directory) / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = _wait_for_holder(fd)
            os.close(fd)
            raise LockHeld(holder) from None
        # the previous holder removes the file as it releases: if it did so after we opened
        # it, we hold a lock on a file nobody else will see; lock the one that is there now
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        return fd


def release(directory: Path, fd: int) -> None:
    """Remove the lock file (while still holding the lock) and drop the lock."""
    try:
        os.unlink(Path(directory) / LOCK_NAME)
    except OSError:
        pass
    finally:
        os.close(fd)


def _wait_for_holder(fd: int, seconds: float = 2.0) -> dict[str, Any]:
    """What the holder wrote; the holder writes it just after it takes the lock, so a process that
    finds the lock taken in between waits briefly for it (``{}`` if nothing comes)."""
    deadline = time.monotonic() + seconds
    while True:
        holder = _read_holder(fd)
        if holder or time.monotonic() >= deadline:
            return holder
        time.sleep(0.02)


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}
