"""The record of a run in its output directory (``DIR/run.json``) and the handle of a claimed
directory (:class:`RunDirectory`), which writes that record as the run starts, finishes or fails.

The failure record must be written when the disk is full: as the run starts, the space for it is
reserved in a temporary file beside ``run.json`` (``.run.json.spikebridge-<pid>-<token>.tmp``,
filled to :data:`RESERVED_BYTES` more than the running record), and a failed run overwrites that
file in place and renames it over ``run.json``, which needs no new space.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import dirlock
from ..io import CHECKSUM_SUFFIX, strict_json, temp_path, write_json
from .directory import remove_directories, timestamp

RECORD_NAME = "run.json"
FORMAT = "spikebridge-run"
VERSION = 1
RESERVED_BYTES = 16384
"""Space kept for the failure record beyond the size of the running record."""
MAX_ERROR_CHARS = 4000


def read_record(directory: str | os.PathLike) -> dict[str, Any] | None:
    """``DIR/run.json`` as a dict; None when absent; ``{}`` when unreadable or not a run record."""
    path = Path(directory) / RECORD_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return {}
    return record


def unfinished(record: dict[str, Any] | None) -> bool:
    """Whether a run record is that of a run that failed or was killed (its directory's lock is
    free, so it is not running): it left no results, and a new run of the same command may
    take the directory without ``--overwrite`` (its files are removed as the new run begins)."""
    return bool(record) and record.get("status") in ("failed", "running")


class RunDirectory:
    """A claimed output directory (see :mod:`spikebridge.rundir`); a context manager that releases
    the lock on exit. ``previous`` is the record found there (None when there was none)."""

    def __init__(
        self,
        path: Path,
        command: str,
        settings: dict[str, Any],
        previous: dict[str, Any] | None,
        created: list[Path],
        lock_fd: int | None,
    ):
        self.path = path
        self.command = command
        self.settings = settings
        self.previous = previous
        self._created = created
        self._lock_fd = lock_fd
        self._began = False
        self._started = time.time()
        self._planned: list[str] = []
        self._reserved: Path | None = None

    @property
    def held(self) -> bool:
        return self._lock_fd is not None

    def previous_files(self, folder: str | None = None) -> list[str]:
        """The files the run recorded here had written or planned, to remove when this run
        replaces it: top-level names, or with ``folder`` the names directly inside that
        subfolder (``"nir"`` -> ``["nir/snn-max.nir", ...]``). Never a file the record does not
        list: a user's file beside ours stays."""
        if not self.previous:
            return []
        files = [f for f in self.previous.get("files") or [] if isinstance(f, str)]
        if folder is not None:
            files = [f[len(folder) + 1 :] for f in files if f.startswith(folder + "/")]
        names = [f for f in files if f and "/" not in f and not f.startswith(".")]
        return [f"{folder}/{n}" for n in names] if folder is not None else names

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None and self._began and self.held:
                self.fail(f"{exc_type.__name__}: {exc}")
        finally:
            self.release(remove_created=not self._began)

    def fail(self, error: str) -> None:
        """The run failed: record ``status: failed`` and ``error``, in the space reserved when
        it began (so that this works on a full disk)."""
        if not self.held:
            return
        error = error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS] + "..."
        record = self._record("failed", files=self._planned, error=error)
        if self._reserved is not None and self._write_reserved(record):
            return
        try:
            write_json(self.path / RECORD_NAME, record)
        except OSError:  # the run's own error, already on its way, says more
            pass

    def begin(self, remove: Iterable[str] = (), planned: Iterable[str] = ()) -> None:
        """Compute starts: remove the ``remove`` files (a replaced run's results) and write the
        record, ``status: running``, listing the ``planned`` files (so that a run replacing
        this one, should it be killed, knows what to remove)."""
        if not self.held:
            return
        names = set(planned)
        names |= {n + CHECKSUM_SUFFIX for n in names if n.endswith(".pt")}
        self._planned = sorted(names)
        self._reserve()  # first: a disk too full for it fails the run before anything changes
        if unfinished(self.previous):  # a failed run's partial files go, --overwrite or not
            remove = [*remove, *self.previous_files()]
        for name in remove:
            target = self.path / name
            if target.is_file() or target.is_symlink():
                target.unlink()
        self._began = True
        self._write_record("running", files=self._planned)

    def finish(self, files: Iterable[str | os.PathLike] = (), **extra: Any) -> None:
        """The run completed: record ``status: finished`` and the files it wrote."""
        if not self.held:
            return
        self._began = True
        paths = [Path(f) for f in files]
        sums = [p.with_name(p.name + CHECKSUM_SUFFIX) for p in paths if p.suffix == ".pt"]
        paths += [p for p in sums if os.path.lexists(p)]
        names = sorted({os.path.relpath(p, self.path) for p in paths})
        self._write_record("finished", files=names, **extra)
        self._drop_reservation()

    def _record(self, status: str, **extra: Any) -> dict[str, Any]:
        record = {
            "format": FORMAT,
            "version": VERSION,
            "command": self.command,
            "settings": self.settings,
            "status": status,
            "pid": os.getpid(),
            "started": timestamp(self._started),
            "updated": timestamp(time.time()),
        }
        record.update(extra)
        return record

    def _write_record(self, status: str, **extra: Any) -> None:
        write_json(self.path / RECORD_NAME, self._record(status, **extra))

    def _reserve(self) -> None:
        """Fill a temporary file with the space the failure record will need."""
        self._drop_reservation()
        size = len(strict_json(self._record("failed", files=self._planned))) + RESERVED_BYTES
        tmp = temp_path(self.path / RECORD_NAME)
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666
        )
        try:
            os.write(fd, b" " * size)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink_quietly(tmp)  # never masks the error that stopped the reservation
            raise
        os.close(fd)
        self._reserved = tmp

    def _write_reserved(self, record: dict[str, Any]) -> bool:
        """Write ``record`` into the reserved file in place and rename it over ``run.json``;
        False when it does not fit or fails."""
        data = strict_json(record).encode()
        tmp, self._reserved = self._reserved, None
        try:
            if tmp is None or len(data) > os.lstat(tmp).st_size:
                return False
            fd = os.open(tmp, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
            try:
                os.pwrite(fd, data, 0)
                os.ftruncate(fd, len(data))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path / RECORD_NAME)
            tmp = None
            return True
        except OSError:
            return False
        finally:
            if tmp is not None:
                _unlink_quietly(tmp)

    def _drop_reservation(self) -> None:
        tmp, self._reserved = self._reserved, None
        if tmp is not None:
            _unlink_quietly(tmp)

    def release(self, remove_created: bool = False) -> None:
        """Drop the lock (removing the lock file while still holding it); with
        ``remove_created``, also remove the directories :func:`claim` created, if empty."""
        if self._lock_fd is None:
            return
        self._drop_reservation()
        fd, self._lock_fd = self._lock_fd, None
        dirlock.release(self.path, fd)
        if remove_created:
            remove_directories(self._created)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


__all__ = ["FORMAT", "RECORD_NAME", "VERSION", "RunDirectory", "read_record", "unfinished"]
