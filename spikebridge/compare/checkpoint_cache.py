"""The trained networks a comparison caches under ``DIR/checkpoints``: ``NAME.pt`` with
``NAME.json`` beside it recording the settings it was trained for, so that a re-run with the same
settings reuses it, an interrupted run resumes it, and a checkpoint of other settings is never
mistaken for this one (used by the direct and the STDP routes).

A checkpoint recorded for these settings that is damaged (its SHA-256 differs from
``NAME.pt.sha256``, it is truncated, or its contents are not a checkpoint's) stops the comparison
with a one-line :class:`DamagedCheckpoint` naming the file: it is never retrained over silently,
since the results would silently differ; deleting the file trains it again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..io import checksum_path, write_json
from .context import ComparisonContext


class DamagedCheckpoint(ValueError):
    """A cached checkpoint of this experiment is damaged; the message names it."""


def damaged(path: Path, problem: str) -> DamagedCheckpoint:
    return DamagedCheckpoint(
        f"{problem}; the comparison does not retrain over a damaged checkpoint silently: delete "
        f"{path} to train it again"
    )


def matching_checkpoint(
    path: Path, expected: dict, read: Callable[[Path], Any], unreadable: type[Exception]
) -> Any | None:
    """``read(path)`` when ``path``'s settings record equals ``expected`` and the file reads;
    None when there is none for these settings (no file, no record, another experiment's).

    Raises :class:`DamagedCheckpoint` when the checkpoint recorded for these settings does not
    match its checksum or ``read`` refuses it with ``unreadable``."""
    record = path.with_suffix(".json")
    try:
        recorded = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    except json.JSONDecodeError:
        return None
    if recorded != expected or not path.is_file():
        return None
    try:
        return read(path)  # the readers check the checksum first
    except unreadable as err:
        problem = str(err)
        if "; " in problem:  # the reader's own advice is for a training run: ours replaces it
            problem = problem.rsplit("; ", 1)[0]
        raise damaged(path, problem) from None


def start_training(ctx: ComparisonContext, path: Path, expected: dict, resume: bool) -> None:
    """Before (re)training into ``path``: rank 0 drops a checkpoint that is not resumed and
    records ``expected`` beside it; every process waits for that."""
    ctx.barrier()
    if ctx.shard.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not resume:
            for old in (path, checksum_path(path)):
                if old.is_file() and not old.is_symlink():
                    old.unlink()
        write_json(path.with_suffix(".json"), expected)
    ctx.barrier()
