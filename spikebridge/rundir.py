"""An output directory owned by one run at a time.

:func:`claim` takes the directory for a run in one step: it creates the directory (checking it is
writable before any compute), takes an OS lock on ``DIR/.spikebridge.lock`` (``fcntl.flock``,
held until the run ends; the kernel releases it when the process exits or crashes) and, holding
the lock, reads ``DIR/run.json`` to decide whether this run may write there. Because the check is
made under the lock, two runs started together cannot both pass it.

``run.json`` records which command wrote the directory and the settings that determine its
results. A directory holding another command's results, another experiment's, or files that no
run recorded, is refused unless ``overwrite``. With ``resume``, the saved settings are compared
with the given ones (:func:`check_resume`) and any difference is refused, naming each; the keys in
``may_grow`` (``epochs``) may only increase.

Nothing is written to a directory that is refused, and a run that fails before
:meth:`RunDirectory.begin` leaves the directory as it found it (a directory it created is
removed again). :meth:`RunDirectory.begin` writes the record when compute starts;
:meth:`RunDirectory.finish` adds the files written.

Under ``torchrun`` only rank 0 claims the directory; the other processes get a handle that does
nothing, as they write nothing.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from . import dirlock
from .dirlock import LOCK_NAME
from .io import write_json

RECORD_NAME = "run.json"
FORMAT = "spikebridge-run"
VERSION = 1


class RunDirectoryError(RuntimeError):
    """The output directory cannot be used by this run."""


class DirectoryBusy(RunDirectoryError):
    """Another run holds the directory's lock."""

    def __init__(self, message: str, pid: int | None):
        super().__init__(message)
        self.pid = pid


class DirectoryNotOwned(RunDirectoryError, FileExistsError):
    """The directory holds another command's or another experiment's results."""


class DirectoryNotWritable(RunDirectoryError, PermissionError):
    """The directory (or its parent) cannot be written."""


class ResumeMismatch(RunDirectoryError, ValueError):
    """``--resume`` with settings that differ from the run being resumed."""


def flag(key: str) -> str:
    """The command-line flag of a setting: ``batch_size`` -> ``--batch-size``."""
    return "--" + key.replace("_", "-")


def _plain(value: Any) -> Any:
    """A JSON round-trip of ``value``, so saved and given settings compare equal."""
    return json.loads(json.dumps(value, default=str))


def resume_differences(
    saved: Mapping[str, Any],
    given: Mapping[str, Any],
    may_grow: Iterable[str] = ("epochs",),
    saved_as: str = "the run being resumed",
) -> list[str]:
    """Each setting in which ``given`` differs from ``saved``, as ``--flag: X in <saved_as>, Y
    now``; keys in ``may_grow`` may increase (a decrease is listed)."""
    grow = set(may_grow)
    problems = []
    for key in sorted(set(saved) | set(given)):
        old, new = _plain(saved.get(key)), _plain(given.get(key))
        if old == new:
            continue
        if key in grow and _is_number(old) and _is_number(new):
            if new > old:
                continue
            problems.append(f"{flag(key)}: {new!r} now, fewer than the {old!r} of {saved_as}")
            continue
        problems.append(f"{flag(key)}: {old!r} in {saved_as}, {new!r} now")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_resume(
    saved: Mapping[str, Any],
    given: Mapping[str, Any],
    *,
    may_grow: Iterable[str] = ("epochs",),
    source: str = RECORD_NAME,
) -> None:
    """Raise :class:`ResumeMismatch` naming every result-changing difference between the saved
    settings (read from ``source``) and the given ones."""
    problems = resume_differences(saved, given, may_grow)
    if problems:
        raise ResumeMismatch(
            f"--resume with settings different from those of the run being resumed ({source}): "
            + "; ".join(problems)
            + ". Resume with the same settings (only --epochs may grow), or start a new --out"
        )


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


def _visible_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


class RunDirectory:
    """A claimed output directory (see the module docstring); a context manager that releases
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
            "started": _timestamp(self._started),
            "updated": _timestamp(time.time()),
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
            for directory in reversed(self._created):
                try:
                    directory.rmdir()
                except OSError:
                    break


def _timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _make_directory(path: Path, arg: str) -> list[Path]:
    """Create ``path`` and missing parents; returns the directories created (outermost first)."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"{arg} {str(path)!r} is an existing file, not a directory; choose another {arg}"
        )
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NotADirectoryError(
            f"{arg} {str(path)!r}: {str(probe)!r} is a file, not a directory; choose another {arg}"
        )
    created = []
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            for made in reversed(created):
                try:
                    made.rmdir()
                except OSError:
                    break
            raise _not_writable(path, arg, err) from None
        created.append(directory)
    return created


def _not_writable(path: Path, arg: str, err: OSError) -> DirectoryNotWritable:
    reason = err.strerror or type(err).__name__
    where = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
    return DirectoryNotWritable(
        f"{arg} {str(path)!r} is not writable: {reason}{where}; fix its permissions or choose "
        f"another {arg}"
    )


def _lock(path: Path, arg: str, command: str, created: list[Path]) -> int:
    """Take the directory's lock (:mod:`spikebridge.dirlock`) for this process."""
    info = {
        "pid": os.getpid(),
        "command": command,
        "host": socket.gethostname(),
        "started": _timestamp(time.time()),
    }
    try:
        return dirlock.acquire(path, info)
    except dirlock.LockHeld as held:
        _remove(created)
        raise DirectoryBusy(_busy_message(path, arg, held.holder), held.holder.get("pid")) from None
    except OSError as err:
        _remove(created)
        raise _not_writable(path, arg, err) from None


def _busy_message(path: Path, arg: str, holder: dict[str, Any]) -> str:
    pid = holder.get("pid") if isinstance(holder.get("pid"), int) else None
    who = f"pid {pid}" if pid is not None else "a process that did not record its pid"
    host = holder.get("host")
    on = f" on {host}" if host and host != socket.gethostname() else ""
    what = f", `spikebridge {holder['command']}`" if holder.get("command") else ""
    since = f", since {holder['started']}" if holder.get("started") else ""
    return (
        f"{arg} {str(path)!r} is in use by another spikebridge run ({who}{on}{what}{since}); "
        f"wait for it to finish, or choose another {arg}"
    )


def _remove(created: list[Path]) -> None:
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            break


def claim(
    path: str | os.PathLike,
    command: str,
    settings: Mapping[str, Any],
    *,
    overwrite: bool = False,
    resume: bool = False,
    rerun: bool = True,
    may_grow: Iterable[str] = ("epochs",),
    arg: str = "--out",
    rank: int | None = None,
    adopt: Callable[[Path], bool] | None = None,
) -> RunDirectory:
    """Take the output directory ``path`` for a run of ``command`` with ``settings`` (the
    result-determining ones, e.g. from :func:`settings_from_args`).

    Args:
        overwrite: take a directory holding another command's, another experiment's or
            unrecorded results (the caller removes what it replaces, see :meth:`RunDirectory.begin`).
        resume: continue the run recorded there: its settings must equal ``settings`` except the
            ``may_grow`` keys, which may increase (:func:`check_resume`).
        rerun: whether a run with the same settings may write over the directory without
            ``resume`` or ``overwrite`` (True for deterministic results such as a conversion; False
            for training, whose checkpoint a fresh run would replace).
        arg: the flag that named the directory, for messages.
        adopt: for a directory without a run record, whether it holds this command's earlier
            results for the same settings, recorded in the command's own way (e.g. a comparison's
            ``experiment.json`` from before run records); such a directory is accepted.
        rank: the process rank under torchrun (default: the RANK environment variable); only
            rank 0 claims.

    Raises:
        DirectoryBusy: another run holds the lock (the message names its pid).
        DirectoryNotOwned: the directory holds other results and ``overwrite`` is False.
        ResumeMismatch: ``resume`` with changed settings, naming each.
        DirectoryNotWritable, NotADirectoryError: the directory cannot be created or written.
    """
    out = Path(path)
    settings = _plain(dict(settings))
    if rank is None:
        rank = int(os.environ.get("RANK", "0") or 0)
    if rank != 0:
        return RunDirectory(out, command, settings, None, [], None)
    created = _make_directory(out, arg)
    fd = _lock(out, arg, command, created)
    handle = RunDirectory(out, command, settings, None, created, fd)
    try:
        handle.previous = _check_ownership(
            out, command, settings, overwrite, resume, rerun, may_grow, arg, adopt
        )
    except BaseException:
        handle.release(remove_created=True)
        raise
    return handle


def _check_ownership(
    out: Path,
    command: str,
    settings: dict[str, Any],
    overwrite: bool,
    resume: bool,
    rerun: bool,
    may_grow: Iterable[str],
    arg: str,
    adopt: Callable[[Path], bool] | None = None,
) -> dict[str, Any] | None:
    record = read_record(out)
    where = f"{arg} {str(out)!r}"
    choose = f"choose another {arg}, or pass --overwrite to replace them"
    if record is None:
        visible = _visible_files(out)
        adopted = adopt is not None and bool(visible) and adopt(out)
        if visible and not overwrite and not resume and not adopted:
            shown = ", ".join(visible[:5]) + (", ..." if len(visible) > 5 else "")
            raise DirectoryNotOwned(
                f"{where} is not empty ({shown}) and holds no spikebridge run record "
                f"({RECORD_NAME}); {choose}"
            )
        return None
    if not record:
        if overwrite:
            return record
        raise DirectoryNotOwned(
            f"{where}: {RECORD_NAME} there is not a readable spikebridge run record; {choose}"
        )
    if overwrite:
        return record
    if record.get("command") != command:
        raise DirectoryNotOwned(
            f"{where} holds the results of `spikebridge {record.get('command')}`, not "
            f"`spikebridge {command}`; {choose}"
        )
    saved = record.get("settings") or {}
    if resume:
        check_resume(saved, settings, may_grow=may_grow, source=str(out / RECORD_NAME))
        return record
    differences = resume_differences(saved, settings, may_grow=(), saved_as="DIR")
    if differences:
        raise DirectoryNotOwned(
            f"{where} holds the results of a different experiment ("
            + "; ".join(differences)
            + f"); {choose}"
        )
    if not rerun:
        raise DirectoryNotOwned(
            f"{where} holds the results of an earlier `spikebridge {command}` run with the same "
            "settings; pass --resume to continue it, --overwrite to start it again, or choose "
            f"another {arg}"
        )
    return record


__all__ = [
    "LOCK_NAME",
    "RECORD_NAME",
    "DirectoryBusy",
    "DirectoryNotOwned",
    "DirectoryNotWritable",
    "ResumeMismatch",
    "RunDirectory",
    "RunDirectoryError",
    "check_resume",
    "claim",
    "read_record",
    "resume_differences",
]
