"""Shared pieces of the dataset readers: error types, the image dataset, root helpers."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where the caller said (or are incomplete)."""


class DatasetFormatError(ValueError):
    """A dataset file exists but does not hold what its format promises (corrupt or truncated)."""


def default_root() -> Path:
    """Where datasets live when no root is given: ``$SPIKEBRIDGE_DATA`` or ``~/.cache/spikebridge/data``."""
    env = os.environ.get("SPIKEBRIDGE_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "spikebridge" / "data"


def resolve_root(root: str | os.PathLike | None) -> Path:
    """``root`` as an absolute path (``default_root()`` when None)."""
    return (Path(root).expanduser() if root is not None else default_root()).absolute()


def describe_search(name: str, searched: Sequence[Path], expected: Sequence[str], hint: str) -> str:
    """The message of a :class:`DatasetNotFoundError`: where we looked, what we wanted, what to do."""
    places = "\n".join(f"  - {p}{'' if p.is_dir() else ' (does not exist)'}" for p in searched)
    files = ", ".join(expected)
    return f"{name}: no complete copy found. Searched:\n{places}\nExpected files: {files}.\n{hint}"


class ImageDataset(Dataset):
    """Static images held in memory, returned as float32 [C, H, W] in [0, 1].

    Args:
        images: [N, C, H, W] raw values (uint8 or float).
        labels: [N] integer class labels.
        scale: the raw value that maps to 1.0 (255 for 8-bit images, 16 for sklearn digits).
        transform: optional callable applied to each [C, H, W] float tensor (e.g. augmentation).

    Items are ``(x [C, H, W] float32, label int)``. ``targets`` is the [N] int64 label tensor.
    No mean/std normalisation is applied: rate coding needs inputs in [0, 1].
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        scale: float,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if images.dim() != 4:
            raise ValueError(f"images must be [N, C, H, W], got shape {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"labels must be [N] with N = {images.shape[0]} images, got shape {tuple(labels.shape)}"
            )
        self.images = images
        self.targets = labels.long()
        self.scale = float(scale)
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        x = (
            self.images[index].to(torch.float32) / self.scale
        )  # never in place: the view may share memory
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[index])
