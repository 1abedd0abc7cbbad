"""MNIST and Fashion-MNIST from their distributed IDX files (LeCun et al. 1998; Xiao et al. 2017).

The files are read directly, ``.gz`` or unpacked, from either the folder that holds them
(``root/train-images-idx3-ubyte.gz``) or torchvision's layout (``root/MNIST/raw/...``,
``root/FashionMNIST/raw/...``). torchvision is used only to download.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .base import DatasetFormatError, DatasetNotFoundError, ImageDataset, describe_search

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass(frozen=True)
class IdxSpec:
    """Where one member of the MNIST family lives and how to recognise its files."""

    name: str
    torchvision_folder: str  # root/<folder>/raw in torchvision's layout
    # md5 of the distributed t10k/train label .gz files (torchvision's published values)
    label_md5: dict[str, str]


FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

SPECS = {
    "mnist": IdxSpec(
        "mnist",
        "MNIST",
        {
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": IdxSpec(
        "fashion-mnist",
        "FashionMNIST",
        {
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array of its declared shape.

    Raises :class:`DatasetFormatError` naming the file when the gzip stream is broken, the magic
    number is not an IDX one, or the data size disagrees with the header.
    """
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DatasetFormatError(
                f"{path}: not a valid gzip file ({err}); it is corrupt or truncated, "
                "replace it with a fresh copy"
            ) from err
    if len(raw) < 4:
        raise DatasetFormatError(f"{path}: only {len(raw)} bytes, too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise DatasetFormatError(
            f"{path}: magic number 0x{raw[:4].hex()} is not an IDX magic number "
            "(expected 0x0000 followed by a type code and a dimension count); not an IDX file"
        )
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(f"{path}: truncated inside the IDX header ({len(raw)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DatasetFormatError(
            f"{path}: header declares shape {shape} ({expected} data bytes) but the file holds "
            f"{len(raw) - header} data bytes; it is truncated or corrupt"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def _find(directory: Path, stem: str) -> Path | None:
    """The unpacked file when present (fastest to read), else its ``.gz``."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def candidate_dirs(spec: IdxSpec, root: Path) -> list[Path]:
    """Folders searched, in order: root itself, torchvision's root/<Folder>/raw, root/<name>."""
    return [root, root / spec.torchvision_folder / "raw", root / spec.name]


def locate(spec: IdxSpec, root: Path, train: bool) -> tuple[Path, Path] | None:
    """(images, labels) files for the split, from the first folder that holds both; else None."""
    for directory in candidate_dirs(spec, root):
        images, labels = (_find(directory, stem) for stem in FILES[train])
        if images is not None and labels is not None:
            return images, labels
    return None


def missing_message(spec: IdxSpec, root: Path, train: bool) -> str:
    expected = [f"{stem}[.gz]" for stem in FILES[train]]
    hint = (
        "Point the data root at the folder holding these files (as distributed, .gz or unpacked) "
        "or at torchvision's root, or pass download=True (CLI: --download) to fetch them."
    )
    return describe_search(spec.name, candidate_dirs(spec, root), expected, hint)


def _check_not_sibling(spec: IdxSpec, labels_path: Path) -> None:
    """Refuse MNIST files given as Fashion-MNIST and vice versa (same file names, other data)."""
    if labels_path.suffix != ".gz":
        return
    digest = hashlib.md5(labels_path.read_bytes()).hexdigest()
    for other in SPECS.values():
        if other is not spec and digest == other.label_md5.get(labels_path.name):
            raise DatasetFormatError(
                f"{labels_path}: this is the {other.name} label file, but dataset {spec.name!r} "
                f"was asked for; point the data root at a {spec.name} copy"
            )


def load_idx_pair(spec: IdxSpec, images_path: Path, labels_path: Path) -> tuple[Tensor, Tensor]:
    """Parse and cross-check an images/labels pair: ([N, 1, 28, 28] uint8, [N] int64)."""
    _check_not_sibling(spec, labels_path)
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DatasetFormatError(
            f"{images_path}: expected uint8 images of shape [N, 28, 28], found {images.dtype} "
            f"{images.shape}; is this an image file of {spec.name}?"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DatasetFormatError(
            f"{labels_path}: expected a uint8 label vector [N], found {labels.dtype} {labels.shape}"
        )
    if labels.shape[0] != images.shape[0]:
        raise DatasetFormatError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels; the pair does not belong together"
        )
    if labels.size and int(labels.max()) > 9:
        bad = int(np.argmax(labels > 9))
        raise DatasetFormatError(
            f"{labels_path}: label {int(labels[bad])} at index {bad} is outside 0..9"
        )
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def _download(spec: IdxSpec, root: Path, train: bool) -> None:
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[spec.name]
    try:
        cls(str(root), train=train, download=True)
    except Exception as err:  # network errors come in many types
        raise DatasetNotFoundError(
            f"{spec.name}: download into {root} failed ({err}). Without network access, copy "
            f"the four *-idx?-ubyte.gz files into a folder and pass it as the data root."
        ) from err


def load_idx_dataset(
    name: str,
    root: Path,
    train: bool,
    download: bool = False,
    transform: Callable[[Tensor], Tensor] | None = None,
) -> ImageDataset:
    """MNIST or Fashion-MNIST split as an :class:`ImageDataset` of [1, 28, 28] images in [0, 1]."""
    spec = SPECS[name]
    found = locate(spec, root, train)
    if found is None and download:
        _download(spec, root, train)
        found = locate(spec, root, train)
    if found is None:
        raise DatasetNotFoundError(missing_message(spec, root, train))
    images, labels = load_idx_pair(spec, *found)
    return ImageDataset(images, labels, 255.0, transform)
