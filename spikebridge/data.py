"""Datasets by name, and the loaders both routes use.

Names: ``digits`` (scikit-learn's 8x8 digits, offline), ``mnist``, ``fashion-mnist``,
``cifar10`` (static images: items ``x [C, H, W]`` float32 in [0, 1], no mean/std normalisation,
so rate coding sees intensities) and ``nmnist`` (event recordings: items ``x [T, 2, 34, 34]``
float32 event counts). Labels are ints in 0..9.

Files are read from a local root as distributed (see each reader in ``spikebridge.datasets``);
torchvision downloads them only when ``download=True``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from .datasets.base import DatasetFormatError, DatasetNotFoundError, default_root, resolve_root
from .datasets.cifar import load_cifar10
from .datasets.digits import load_digits_split
from .datasets.idx import load_idx_dataset, read_idx
from .datasets.nmnist import NMNISTDataset, bin_events, decode_events
from .validation import check_positive_int

__all__ = [
    "DATASET_NAMES",
    "DatasetFormatError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "NMNISTDataset",
    "bin_events",
    "calibration_loader",
    "dataset_info",
    "decode_events",
    "default_root",
    "is_event_dataset",
    "load_dataset",
    "make_loaders",
    "Normalized",
    "normalize_values",
    "split_validation",
    "read_idx",
]


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset.

    ``in_channels`` and ``image_size`` describe one frame: [C, H, W] = [in_channels, image_size,
    image_size]. Event datasets (``is_event``) yield [T, C, H, W] per sample.
    """

    name: str
    in_channels: int
    image_size: int
    num_classes: int
    is_event: bool


_INFO = {
    "digits": DatasetInfo("digits", 1, 8, 10, False),
    "mnist": DatasetInfo("mnist", 1, 28, 10, False),
    "fashion-mnist": DatasetInfo("fashion-mnist", 1, 28, 10, False),
    "cifar10": DatasetInfo("cifar10", 3, 32, 10, False),
    "nmnist": DatasetInfo("nmnist", 2, 34, 10, True),
}
DATASET_NAMES: tuple[str, ...] = tuple(_INFO)
_ALIASES = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "n-mnist": "nmnist"}


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in _INFO:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
    return key


def dataset_info(name: str) -> DatasetInfo:
    """Shape facts of dataset ``name`` (case-insensitive; '_' and '-' alike)."""
    return _INFO[_canonical(name)]


def is_event_dataset(name: str) -> bool:
    """True for event-camera datasets (samples already in time: [T, C, H, W])."""
    return dataset_info(name).is_event


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    train: bool = True,
    download: bool = False,
    timesteps: int | None = None,
    *,
    binarize: bool = False,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> Dataset:
    """The train or test split of dataset ``name`` as a map-style dataset of ``(x, label)``.

    Args:
        name: one of ``DATASET_NAMES``.
        root: folder holding the files as distributed (or torchvision's root); ignored for
            ``digits``; None means ``default_root()``.
        train: training split (True) or test split.
        download: let torchvision fetch missing files (mnist, fashion-mnist, cifar10 only).
        timesteps: frames per sample, required for event data; ignored for static images
            (their time axis comes from the encoder).
        binarize: event data only: clip per-frame event counts to 1.
        transform: applied to each sample tensor (e.g. augmentation).

    Returns: items ``(x, label int)``; x is [C, H, W] float32 in [0, 1] for static images and
    [T, 2, 34, 34] float32 for ``nmnist``. The dataset's ``targets`` is the [N] label tensor.

    Raises:
        ValueError: unknown name, bad ``timesteps``, ``download`` for nmnist.
        DatasetNotFoundError (a FileNotFoundError): the root lacks the files; names the folders
            searched and the files expected.
        DatasetFormatError (a ValueError): a file is corrupt; names the file.
    """
    key = _canonical(name)
    if key == "digits":
        return load_digits_split(train, transform)
    path = resolve_root(root)
    if key in ("mnist", "fashion-mnist"):
        return load_idx_dataset(key, path, train, download, transform)
    if key == "cifar10":
        return load_cifar10(path, train, download, transform)
    # nmnist
    if timesteps is None:
        raise ValueError("nmnist: timesteps is required (the number of frames to bin events into)")
    if download:
        raise ValueError(
            "nmnist: download is not supported; get the dataset from "
            "https://www.garrickorchard.com/datasets/n-mnist and pass its folder as the root"
        )
    return NMNISTDataset(path, train, timesteps, binarize=binarize, transform=transform)


class Normalized(Dataset):
    """A dataset of ``(x, y)`` with x normalised per channel: ``(x - mean) / std`` (as
    torchvision's ``Normalize``, for a model trained on normalised images); ``targets`` kept."""

    def __init__(self, dataset: Dataset, mean: list[float], std: list[float]) -> None:
        self.dataset = dataset
        self.mean = torch.tensor(mean, dtype=torch.float32)
        self.std = torch.tensor(std, dtype=torch.float32)
        targets = getattr(dataset, "targets", None)
        if targets is not None:
            self.targets = targets

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        shape = (-1,) + (1,) * (x.dim() - 1)  # [C, H, W] (or [T, C, H, W]: channel last-but-2)
        if x.dim() == 4:
            shape = (1, -1, 1, 1)
        return (x - self.mean.view(shape)) / self.std.view(shape), y


def normalize_values(text: str | None, channels: int) -> tuple[list[float], list[float]] | None:
    """``--normalize`` as (mean, std) lists of ``channels`` values each (one value given for
    all), or None; a count that fits neither is an error naming the flag."""
    if text is None:
        return None
    from .settings import parse_normalize

    mean, std = parse_normalize(text)
    if len(mean) == 1:
        return mean * channels, std * channels
    if len(mean) != channels:
        raise ValueError(
            f"--normalize gives {len(mean)} means and {len(std)} stds; the images have "
            f"{channels} channel(s): give one MEAN,STD or {channels} means then {channels} stds"
        )
    return mean, std


def _seeded_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _subset(dataset: Dataset, indices: list[int]) -> Subset:
    subset = Subset(dataset, indices)
    targets = getattr(dataset, "targets", None)
    if isinstance(targets, Tensor):  # keep labels reachable without decoding samples
        subset.targets = targets[torch.tensor(indices, dtype=torch.long)]
    return subset


def make_loaders(
    name: str,
    root: str | os.PathLike | None = None,
    batch_size: int = 128,
    limit: int | None = None,
    seed: int = 0,
    download: bool = False,
    timesteps: int | None = None,
    num_workers: int = 0,
    train_limit: int | None = None,
    *,
    binarize: bool = False,
    train_transform: Callable[[Tensor], Tensor] | None = None,
    pin_memory: bool = False,
    normalize: str | None = None,
) -> tuple[DataLoader, DataLoader]:
    """(train_loader, test_loader) for dataset ``name``.

    Batches are ``(x [B, C, H, W], y [B])`` for static images and ``(x [B, T, 2, 34, 34], y [B])``
    for event data. The train loader reshuffles every epoch from a generator seeded with
    ``seed`` (its state is ``loader.generator``: save it to resume exactly); when its last batch
    would hold one image, that image is left out of the epoch (batch normalisation cannot train
    on one image; a different image each epoch). The test loader keeps the dataset order. An
    empty split is a ValueError naming the dataset.

    Args:
        limit: use only the first ``limit`` test samples (all when larger than the test set).
        train_limit: use a fixed random subset (seeded by ``seed``) of ``train_limit`` training
            samples; random rather than the first N because some layouts are sorted by class.
        normalize: ``"MEAN,STD"`` (or one mean per channel, then one std per channel): both
            splits become ``(x - MEAN) / STD`` (:class:`Normalized`).
        Other arguments as in :func:`load_dataset`; ``num_workers`` > 0 keeps workers alive
        across epochs so per-worker caches survive.
    """
    check_positive_int(batch_size, "batch_size")
    check_positive_int(limit, "limit", allow_none=True)
    check_positive_int(train_limit, "train_limit", allow_none=True)
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    train_set = load_dataset(
        name, root, True, download, timesteps, binarize=binarize, transform=train_transform
    )
    test_set = load_dataset(name, root, False, download, timesteps, binarize=binarize)
    stats = normalize_values(normalize, dataset_info(name).in_channels)
    if stats is not None:
        train_set, test_set = Normalized(train_set, *stats), Normalized(test_set, *stats)
    if train_limit is not None and train_limit < len(train_set):
        chosen = torch.randperm(len(train_set), generator=_seeded_generator(seed))[:train_limit]
        train_set = _subset(train_set, chosen.sort().values.tolist())
    if limit is not None and limit < len(test_set):
        test_set = _subset(test_set, list(range(limit)))
    for split, samples in (("training", train_set), ("test", test_set)):
        if len(samples) == 0:
            where = f" in {root}" if root is not None else ""
            raise ValueError(
                f"{name}: the {split} split{where} holds no samples; point --data-root at a "
                "complete copy of the dataset"
            )
    common = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "persistent_workers": num_workers > 0,
        "pin_memory": pin_memory,
    }
    # a last batch of one image is left out (another one each epoch, as the order is reshuffled):
    # batch normalisation cannot train on one image (e.g. --train-limit 129, --batch-size 128)
    lone_last = batch_size > 1 and len(train_set) % batch_size == 1 and len(train_set) > 1
    train_loader = DataLoader(
        train_set, shuffle=True, generator=_seeded_generator(seed), drop_last=lone_last, **common
    )
    test_loader = DataLoader(test_set, shuffle=False, **common)
    return train_loader, test_loader


def split_validation(
    train_loader: DataLoader, fraction: float, seed: int = 0
) -> tuple[DataLoader, DataLoader | None]:
    """(train_loader, validation_loader): a fixed random ``fraction`` of the training samples
    (seeded by ``seed``) held out for validation, the rest to train on, with the same batch size
    and workers; the training loader reshuffles from a generator seeded with ``seed`` as
    :func:`make_loaders`' does. ``fraction`` 0 returns ``(train_loader, None)``.
    """
    if not (isinstance(fraction, (int, float)) and 0 <= fraction < 1):
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction!r}")
    dataset = train_loader.dataset
    size = len(dataset)
    held = int(round(fraction * size))
    if held == 0:
        return train_loader, None
    if held >= size:
        raise ValueError(
            f"validation fraction {fraction:g} leaves none of the {size} training samples to "
            "train on; lower it"
        )
    order = torch.randperm(size, generator=_seeded_generator(seed + 1))
    train_set = _subset(dataset, order[held:].sort().values.tolist())
    validation_set = _subset(dataset, order[:held].sort().values.tolist())
    common = {
        "batch_size": train_loader.batch_size,
        "num_workers": train_loader.num_workers,
        "persistent_workers": train_loader.num_workers > 0,
        "pin_memory": train_loader.pin_memory,
    }
    train = DataLoader(train_set, shuffle=True, generator=_seeded_generator(seed), **common)
    return train, DataLoader(validation_set, shuffle=False, **common)


def calibration_loader(
    dataset: Dataset, n: int = 1000, batch_size: int = 128, seed: int = 0, skip: int = 0
) -> DataLoader:
    """A loader over a fixed random subset of ``n`` samples of ``dataset`` (all when fewer).

    Meant for the conversion's calibration pass: the subset depends only on ``seed`` and the
    dataset size, and the order is fixed (no shuffling), so calibration is reproducible.
    ``skip`` passes over the first ``skip`` samples of the same random order: with
    ``skip`` = the calibration set's ``n`` it gives held-out samples disjoint from it (for
    validation, e.g. :func:`spikebridge.convert.select_percentile`).
    """
    check_positive_int(n, "n")
    check_positive_int(batch_size, "batch_size")
    size = len(dataset)
    if size == 0:
        raise ValueError("calibration_loader: the dataset is empty; calibration needs samples")
    if skip < 0 or skip >= size:
        raise ValueError(
            f"calibration_loader: skip={skip} leaves no samples of a dataset of {size}; "
            "use a smaller calibration set"
        )
    if n < size or skip:
        order = torch.randperm(size, generator=_seeded_generator(seed))
        chosen = order[skip : skip + n].sort().values
        dataset = _subset(dataset, chosen.tolist())
    return DataLoader(dataset, batch_size=batch_size, shuffle=False)
