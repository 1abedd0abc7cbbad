"""CIFAR-10 from its python distribution (Krizhevsky 2009).

Accepted layouts, searched under ``root`` and ``root/cifar10``: the extracted
``cifar-10-batches-py/`` folder (torchvision's layout), a folder that is itself
``cifar-10-batches-py``, or the archive ``cifar-10-python.tar.gz`` (read without extracting).
The pickled batches are read by a restricted unpickler that only admits the types a CIFAR
batch holds, so a tampered file cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .base import DatasetFormatError, DatasetNotFoundError, ImageDataset, describe_search

FOLDER = "cifar-10-batches-py"
ARCHIVE = "cifar-10-python.tar.gz"
BATCHES = {True: tuple(f"data_batch_{i}" for i in range(1, 6)), False: ("test_batch",)}


def _numpy_multiarray():
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a CIFAR batch (numpy arrays, py2 strings) needs."""

    def find_class(self, module: str, name: str):
        multiarray = _numpy_multiarray()
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy.core.multiarray", "scalar"): multiarray.scalar,
            ("numpy._core.multiarray", "scalar"): multiarray.scalar,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): __import__("codecs").encode,
        }
        try:
            return allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: not part of a CIFAR batch"
            ) from None


def parse_batch(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR-10 batch -> (images [N, 3, 32, 32] uint8, labels [N] int64).

    ``source`` names the file in errors.
    """
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as err:
        raise DatasetFormatError(
            f"{source}: not a readable CIFAR-10 batch ({type(err).__name__}: {err}); "
            "it is corrupt or truncated, replace it with a fresh copy"
        ) from err
    if not isinstance(batch, dict):
        raise DatasetFormatError(f"{source}: expected a pickled dict, found {type(batch).__name__}")
    batch = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DatasetFormatError(
            f"{source}: a CIFAR-10 batch has keys 'data' and 'labels', found {sorted(batch)}"
        )
    images = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
        raise DatasetFormatError(
            f"{source}: 'data' must be uint8 [N, 3072], found {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetFormatError(
            f"{source}: {images.shape[0]} images but labels of shape {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetFormatError(
            f"{source}: labels outside 0..9 (min {labels.min()}, max {labels.max()})"
        )
    return images.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _search_dirs(root: Path) -> list[Path]:
    return [root, root / FOLDER, root / "cifar10", root / "cifar10" / FOLDER]


def _read_folder(folder: Path, names: tuple[str, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [parse_batch((folder / n).read_bytes(), str(folder / n)) for n in names]


def _read_archive(archive: Path, names: tuple[str, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read the wanted batches in one sequential pass over the .tar.gz."""
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in names and base not in found:
                    payload = tar.extractfile(member).read()
                    found[base] = parse_batch(payload, f"{archive}:{member.name}")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise DatasetFormatError(
            f"{archive}: not a readable tar.gz archive ({err}); it is corrupt or truncated"
        ) from err
    missing = [n for n in names if n not in found]
    if missing:
        raise DatasetFormatError(f"{archive}: archive lacks the batches {missing}")
    return [found[n] for n in names]


def locate(root: Path, train: bool) -> tuple[str, Path] | None:
    """('folder', dir) or ('archive', file) for the first complete copy found under root."""
    names = BATCHES[train]
    for directory in _search_dirs(root):
        if all((directory / n).is_file() for n in names):
            return "folder", directory
    for directory in (root, root / "cifar10"):
        if (directory / ARCHIVE).is_file():
            return "archive", directory / ARCHIVE
    return None


def load_cifar10(
    root: Path,
    train: bool,
    download: bool = False,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> ImageDataset:
    """CIFAR-10 split as an :class:`ImageDataset` of [3, 32, 32] images in [0, 1]."""
    found = locate(root, train)
    if found is None and download:
        from torchvision.datasets import CIFAR10

        try:
            CIFAR10(str(root), train=train, download=True)
        except Exception as err:  # network errors come in many types
            raise DatasetNotFoundError(
                f"cifar10: download into {root} failed ({err}). Without network access, copy "
                f"{ARCHIVE} (or its extracted {FOLDER}/) into a folder and pass it as the data root."
            ) from err
        found = locate(root, train)
    if found is None:
        expected = [f"{FOLDER}/{n}" for n in BATCHES[train]] + [f"or {ARCHIVE}"]
        hint = (
            "Point the data root at the folder holding the archive or the extracted batches, "
            "or pass download=True (CLI: --download) to fetch them."
        )
        raise DatasetNotFoundError(describe_search("cifar10", _search_dirs(root), expected, hint))
    kind, where = found
    reader = _read_folder if kind == "folder" else _read_archive
    parts = reader(where, BATCHES[train])
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ImageDataset(torch.from_numpy(images), torch.from_numpy(labels), 255.0, transform)
