"""scikit-learn's 8x8 handwritten digits (shipped with scikit-learn: works offline)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .base import ImageDataset

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def stratified_split(
    labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: (train indices, test indices), sorted and disjoint.

    Each class contributes round(test_fraction * its size) samples to the test set, drawn with
    the legacy ``numpy.random.RandomState`` (whose stream is frozen across numpy versions).
    """
    rng = np.random.RandomState(seed)
    test: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        k = int(round(test_fraction * members.size))
        test.append(rng.permutation(members)[:k])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx)
    return train_idx, test_idx


def load_digits_split(
    train: bool, transform: Callable[[Tensor], Tensor] | None = None
) -> ImageDataset:
    """The train (80 %) or test (20 %) part of ``sklearn.datasets.load_digits``.

    Items: x [1, 8, 8] float32 in [0, 1] (raw values 0..16 divided by 16), label in 0..9.
    1797 samples in all; the split is stratified and fixed (seed 0), train and test disjoint.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    labels = np.asarray(bunch.target, dtype=np.int64)
    train_idx, test_idx = stratified_split(labels)
    idx = train_idx if train else test_idx
    images = torch.from_numpy(np.ascontiguousarray(bunch.images[idx], dtype=np.float32))
    return ImageDataset(images.unsqueeze(1), torch.from_numpy(labels[idx]), 16.0, transform)
