"""The record of a run in its output directory (``DIR/run.json``) and the handle of a claimed
directory (:class:`RunDirectory`), which writes that record as the run starts, finishes or fails.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import dirlock
from ..io import write_json
from .directory import remove_directories, timestamp

RECORD_NAME = "run.json"
FORMAT = "spikebridge-run"
VERSION = 1


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

    @property
    def held(self) -> bool:
        return self._lock_fd is not None

    def previous_files(self) -> list[str]:
        """The files the run recorded here had written or planned (top-level names), to remove
        when this run replaces it."""
        if not self.previous:
            return []
        files = self.previous.get("files") or []
        return [f for f in files if isinstance(f, str) and "/" not in f and not f.startswith(".")]

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._began and self.held:
            self._write_record("failed", error=f"{exc_type.__name__}: {exc}")
        self.release(remove_created=not self._began)

    def begin(self, remove: Iterable[str] = (), planned: Iterable[str] = ()) -> None:
        """Compute starts: remove the ``remove`` files (a replaced run's results) and write the
        record, ``status: running``, listing the ``planned`` files (so that a run replacing
        this one, should it be killed, knows what to remove)."""
        if not self.held:
            return
        if unfinished(self.previous):  # a failed run's partial files go, --overwrite or not
            remove = [*remove, *self.previous_files()]
        for name in remove:
            target = self.path / name
            if target.is_file() or target.is_symlink():
                target.unlink()
        self._began = True
        self._write_record("running", files=sorted(set(planned)))

    def finish(self, files: Iterable[str | os.PathLike] = (), **extra: Any) -> None:
        """The run completed: record ``status: finished`` and the files it wrote."""
        if not self.held:
            return
        self._began = True
        names = sorted({os.path.relpath(Path(f), self.path) for f in files})
        self._write_record("finished", files=names, **extra)

    def _write_record(self, status: str, **extra: Any) -> None:
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
        write_json(self.path / RECORD_NAME, record)

    def release(self, remove_created: bool = False) -> None:
        """Drop the lock (removing the lock file while still holding it); with
        ``remove_created``, also remove the directories :func:`claim` created, if empty."""
        if self._lock_fd is None:
            return
        fd, self._lock_fd = self._lock_fd, None
        dirlock.release(self.path, fd)
        if remove_created:
            remove_directories(self._created)


__all__ = ["FORMAT", "RECORD_NAME", "VERSION", "RunDirectory", "read_record", "unfinished"]
