"""What every stage of a comparison shares: settings, data, device, shard, DIR and the notes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..data import DatasetInfo
from ..evaluation import Shard
from .config import Settings


def epoch_line(name: str, row: dict, epochs: int) -> str:
    """One plain line for an epoch of training (logs and batch jobs see progress too)."""

    def pct(value: float) -> str:
        return "–" if value != value else f"{100 * value:.2f}%"

    return (
        f"{name} epoch {row['epoch']}/{epochs}: loss {row['loss']:.4f}  train "
        f"{pct(row['train_accuracy'])}  validation {pct(row.get('validation_accuracy', float('nan')))}"
        f"  ({row['seconds']:.1f} s)"
    )


@dataclass
class ComparisonContext:
    """One comparison in progress.

    Attributes:
        settings: the experiment's settings.
        out: the output directory DIR (checkpoints under ``out / "checkpoints"``).
        device: where networks run; ``shard``: this process's share under torchrun.
        info: the dataset's shape and classes; ``train_loader``, ``test_loader``: its data.
        progress: show progress bars; ``log``: called with one line per stage (or None).
        notes: what the report should say (methods skipped, checkpoints reused, ...).
        ann: the trained ANN (set before the routes run); ``ann_train_seconds``: its training.
        user_graph: the ANN is the user's own graph from ``checkpoint`` (a .pt2 or ONNX file,
            or a trusted pickled module), not an architecture spikebridge builds.
        validation_loader: held-out training images that validate training (None: none).
        histories: the training history of every network trained (or reused) here
            (:func:`spikebridge.tables.history_frame` tables).
    """

    settings: Settings
    out: Path
    device: torch.device
    shard: Shard
    info: DatasetInfo
    train_loader: Iterable
    test_loader: Iterable
    progress: bool = False
    log: Callable[[str], None] | None = None
    notes: list[str] = field(default_factory=list)
    ann: nn.Module | None = None
    ann_train_seconds: float = float("nan")
    user_graph: bool = False
    validation_loader: Iterable | None = None
    histories: list = field(default_factory=list)

    def say(self, message: str) -> None:
        """One line about the current stage (only when a log is attached)."""
        if self.log is not None:
            self.log(message)

    def barrier(self) -> None:
        """Wait for every process (no-op in a single process)."""
        if self.shard.enabled:
            dist.barrier()

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"
