"""Taking an output directory for a run: :func:`claim` and the rules of ownership.

See :mod:`spikebridge.rundir` for what a directory may hold and when a run is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .directory import lock_directory, make_directory
from .errors import DirectoryNotOwned
from .record import RECORD_NAME, RunDirectory, read_record, unfinished
from .resume import check_resume, plain, resume_differences


def _visible_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


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
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
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
        upgrade: the recorded settings by today's names (a record of an earlier version), before
            they are compared.
        rank: the process rank under torchrun (default: the RANK environment variable); only
            rank 0 claims.

    Raises:
        DirectoryBusy: another run holds the lock (the message names its pid).
        DirectoryNotOwned: the directory holds other results and ``overwrite`` is False.
        ResumeMismatch: ``resume`` with changed settings, naming each.
        DirectoryNotWritable, NotADirectoryError: the directory cannot be created or written.
    """
    out = Path(path)
    settings = plain(dict(settings))
    if rank is None:
        rank = int(os.environ.get("RANK", "0") or 0)
    if rank != 0:
        return RunDirectory(out, command, settings, None, [], None)
    created = make_directory(out, arg)
    fd = lock_directory(out, arg, command, created)
    handle = RunDirectory(out, command, settings, None, created, fd)
    try:
        handle.previous = _check_ownership(
            out, command, settings, overwrite, resume, rerun, may_grow, arg, adopt, upgrade
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
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    record = read_record(out)
    where = f"{arg} {str(out)!r}"
    choose = f"choose another {arg}, or pass --overwrite to replace them"
    if record is None:
        visible = _visible_files(out)
        adopted = adopt is not None and bool(visible) and adopt(out)
        if visible and not overwrite and not adopted:
            shown = ", ".join(visible[:5]) + (", ..." if len(visible) > 5 else "")
            if resume:  # nothing says these files are a run's: --resume would replace them
                raise DirectoryNotOwned(
                    f"--resume: {where} holds files ({shown}) but no spikebridge run record "
                    f"({RECORD_NAME}), so nothing shows they are a run's; choose another {arg}, "
                    "or, if they are the results of a run of an earlier spikebridge version, "
                    "pass --overwrite with --resume (the run's result files are replaced)"
                )
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
    if upgrade is not None and isinstance(saved, dict):
        saved = upgrade(saved)
    if not resume and unfinished(record) and (rerun or record.get("status") == "failed"):
        # a failed run left no results: retry it, with any settings (a killed training run
        # keeps its checkpoint for --resume: it is not replaced without --overwrite)
        return record
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


__all__ = ["claim"]
