"""An exclusive lock on a directory, held by one process: ``DIR/.spikebridge.lock`` locked with
``fcntl.flock`` (non-blocking). The kernel releases the lock when the process exits, is killed or
crashes, so no stale lock survives; the file holds the holder's pid for the message a second
process gets. Used by :mod:`spikebridge.rundir`.

The lock file is opened without following a symbolic link (``O_NOFOLLOW``), and is used only when
it is a regular file with one link, owned by this user, that is empty or holds a lock record: a
``.spikebridge.lock`` that is a symlink, a hard link, a FIFO or someone else's file is refused
(:class:`LockFileRefused`) and never truncated or written.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

LOCK_NAME = ".spikebridge.lock"


class LockHeld(Exception):
    """Another process holds the lock; ``holder`` is what it wrote (pid, command, ...)."""

    def __init__(self, holder: dict[str, Any]):
        super().__init__(f"locked by {holder.get('pid', 'another process')}")
        self.holder = holder


class LockFileRefused(OSError):
    """``DIR/.spikebridge.lock`` exists but is not a lock file this toolkit wrote (a symlink, a
    hard link, not a regular file, another user's, or other content); it is left untouched."""


def _refuse(path: Path, what: str) -> LockFileRefused:
    return LockFileRefused(
        f"{str(path)!r} is {what}, not a spikebridge lock file; it was left untouched. Remove it "
        "if it is not needed (or choose another output directory)"
    )


def _open_lock_file(path: Path) -> int:
    """Open (creating it if absent) the lock file without following a symlink; refuse anything
    that is not a plain lock file of ours."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as err:
        if err.errno == errno.ELOOP or os.path.islink(path):
            raise _refuse(path, "a symbolic link") from None
        if err.errno == errno.EISDIR:
            raise _refuse(path, "a directory") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(path, "not a regular file")
        if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            raise _refuse(path, f"owned by another user (uid {info.st_uid})")
        if info.st_nlink != 1:
            raise _refuse(path, f"a file with {info.st_nlink} hard links")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _holds_lock_record(fd: int) -> bool:
    """Whether the (locked) file is empty or holds what :func:`acquire` writes."""
    size = os.fstat(fd).st_size
    if size == 0:
        return True
    if size > 65536:
        return False
    try:
        record = json.loads(os.pread(fd, size, 0).decode("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "pid" in record


def acquire(directory: Path, info: dict[str, Any]) -> int:
    """Lock ``directory`` and write ``info`` (JSON) into the lock file; returns the file
    descriptor that holds the lock (pass it to :func:`release`).

    Raises :class:`LockHeld` when another process holds it, :class:`LockFileRefused` when the
    lock file is not one of ours (a symlink, ...), OSError when it cannot be created (e.g. a
    read-only directory).
    """
    import fcntl  # POSIX only; imported here so that the rest of spikebridge imports anywhere

    path = Path(directory) / LOCK_NAME
    while True:
        fd = _open_lock_file(path)
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
            same = os.fstat(fd).st_ino == os.lstat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        if not _holds_lock_record(fd):
            os.close(fd)
            raise _refuse(path, "a file with other content")
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        return fd


def release(directory: Path, fd: int) -> None:
    """Remove the lock file (while still holding the lock) and drop the lock; a file put in its
    place meanwhile is not ours and stays."""
    path = Path(directory) / LOCK_NAME
    try:
        held, there = os.fstat(fd), os.lstat(path)
        if (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino):
            os.unlink(path)
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
