"""N-MNIST event recordings (Orchard et al. 2015, "Converting Static Image Datasets to Spiking
Neuromorphic Datasets Using Saccades"), read from the original binary files.

File format (one event per 40 bits, big-endian fields):
byte 0 = x (0..33), byte 1 = y (0..33), byte 2 bit 7 = polarity (0 off, 1 on), byte 2 bits 6..0
and bytes 3-4 = a 23-bit timestamp in microseconds. An event with y = 240 is a timestamp-overflow
marker: later timestamps gain 2**13 us and the marker itself is dropped (as in Orchard's reference
reader, eventvision.py, and tonic).

Layouts under ``root`` (or ``root/NMNIST``, ``root/nmnist``):

* the full dataset: ``Train/<digit>/<id>.bin`` and ``Test/<digit>/<id>.bin``;
* a subset with label lists: ``<id>.bs2`` (or ``.bin``) files beside ``train*.txt`` /
  ``test*.txt`` whose lines are ``<id> <class>`` (``#`` starts a comment), as in the SLAYER
  subset (``train1K.txt``, ``test100.txt``).

Samples are ordered by numeric id (N-MNIST ids follow MNIST's order, so classes are mixed).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..validation import check_positive_int
from .base import DatasetFormatError, DatasetNotFoundError, describe_search

SENSOR = 34  # pixels per side
PIXELS = 2 * SENSOR * SENSOR  # polarity x height x width
EVENT_BYTES = 5
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13
# Backward timestamp steps up to this many microseconds are tolerated (sensor jitter); a larger
# step means the bytes are not N-MNIST events (corrupt, misaligned, or another format).
TIME_TOLERANCE_US = 1000
EXTENSIONS = (".bs2", ".bin")


def decode_events(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode and validate one N-MNIST file: (x, y, p, t) arrays, one entry per event.

    x, y: uint8 in 0..33; p: uint8 polarity 0 (off) / 1 (on); t: int64 microseconds.
    Raises :class:`DatasetFormatError` naming the file and the byte offset of the first bad event
    when the length is not a multiple of 5 bytes, a coordinate lies outside the 34 x 34 sensor,
    timestamps step backwards by more than ``TIME_TOLERANCE_US``, or the file holds no events.
    """
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % EVENT_BYTES:
        offset = raw.size - raw.size % EVENT_BYTES
        raise DatasetFormatError(
            f"{path}: not an N-MNIST file: its length ({raw.size} bytes) is not a multiple of "
            f"{EVENT_BYTES} (40-bit events); the event at byte offset {offset} is incomplete"
        )
    events = raw.reshape(-1, EVENT_BYTES)
    x, y = events[:, 0], events[:, 1]
    p = events[:, 2] >> 7
    t = (
        ((events[:, 2] & 0x7F).astype(np.int64) << 16)
        | (events[:, 3].astype(np.int64) << 8)
        | events[:, 4].astype(np.int64)
    )
    marker = y == OVERFLOW_Y
    if marker.any():
        t = t + np.cumsum(marker, dtype=np.int64) * OVERFLOW_US
    keep = np.flatnonzero(~marker)
    x, y, p, t = x[keep], y[keep], p[keep], t[keep]
    outside = (x >= SENSOR) | (y >= SENSOR)
    if outside.any():
        i = int(np.argmax(outside))
        raise DatasetFormatError(
            f"{path}: not an N-MNIST file: the event at byte offset {int(keep[i]) * EVENT_BYTES} "
            f"has x={int(x[i])}, y={int(y[i])}, outside the {SENSOR}x{SENSOR} sensor"
        )
    if t.size == 0:
        raise DatasetFormatError(f"{path}: holds no events (byte offset 0); the file is empty")
    back = np.diff(t) < -TIME_TOLERANCE_US
    if back.any():
        i = int(np.argmax(back)) + 1
        raise DatasetFormatError(
            f"{path}: not an N-MNIST file: the event at byte offset {int(keep[i]) * EVENT_BYTES} "
            f"has timestamp {int(t[i])} us, {int(t[i - 1] - t[i])} us before the previous event "
            f"(timestamps must not decrease by more than {TIME_TOLERANCE_US} us)"
        )
    return x, y, p, t


def bin_events(
    pixel: np.ndarray, t: np.ndarray, timesteps: int, binarize: bool = False
) -> np.ndarray:
    """Bin events into ``timesteps`` frames by equal time slices over the recording.

    Args:
        pixel: [E] flat index p * 34 * 34 + y * 34 + x of each event.
        t: [E] timestamps (any unit); slice k holds t0 + k*D/T <= t < t0 + (k+1)*D/T where
            t0 = min t and D = max t - t0 + 1.
        timesteps: T > 0.
        binarize: clip counts to 1 (a pixel spikes or not within a slice).

    Returns: [T, 2, 34, 34] float32 event counts (ON polarity in channel 1, OFF in channel 0).
    """
    t = t.astype(np.int64, copy=False)
    t0 = int(t.min())
    span = int(t.max()) - t0 + 1
    slot = (t - t0) * timesteps // span
    counts = np.bincount(slot * PIXELS + pixel, minlength=timesteps * PIXELS)
    if binarize:
        np.minimum(counts, 1, out=counts)
    return counts.astype(np.float32).reshape(timesteps, 2, SENSOR, SENSOR)


def _numeric_key(path: Path) -> tuple[int, int | str]:
    return (0, int(path.stem)) if path.stem.isdigit() else (1, path.stem)


def _full_layout(directory: Path, train: bool) -> list[tuple[Path, int]] | None:
    """Train/<digit>/*.bin (or Test/...); None when the split folder is absent."""
    wanted = "train" if train else "test"
    if not directory.is_dir():
        return None
    split = [d for d in directory.iterdir() if d.is_dir() and d.name.lower() == wanted]
    if not split:
        return None
    samples = []
    for digit_dir in split[0].iterdir():
        if digit_dir.is_dir() and digit_dir.name.isdigit() and int(digit_dir.name) < 10:
            label = int(digit_dir.name)
            samples += [(f, label) for f in digit_dir.iterdir() if f.suffix in EXTENSIONS]
    if not samples:
        return None
    samples.sort(key=lambda s: _numeric_key(s[0]))
    return samples


def _read_label_file(path: Path) -> list[tuple[str, int]]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split()
        if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) > 9:
            raise DatasetFormatError(
                f"{path}, line {number}: expected '<sample id> <class 0..9>', found {line!r}"
            )
        rows.append((fields[0], int(fields[1])))
    if not rows:
        raise DatasetFormatError(f"{path}: the label list is empty")
    return rows


def _subset_layout(directory: Path, train: bool) -> list[tuple[Path, int]] | None:
    """<id>.bs2 files listed with their class in train*.txt / test*.txt; None when no list."""
    if not directory.is_dir():
        return None
    pattern = re.compile(r"^(train|test).*\.txt$", re.IGNORECASE)
    wanted = "train" if train else "test"
    lists = sorted(
        f
        for f in directory.iterdir()
        if f.is_file() and pattern.match(f.name) and f.name.lower().startswith(wanted)
    )
    if not lists:
        return None
    if len(lists) > 1:
        raise DatasetFormatError(
            f"{directory}: several {wanted} label lists ({', '.join(f.name for f in lists)}); "
            "keep one per split"
        )
    samples = []
    missing = []
    for sample, label in _read_label_file(lists[0]):
        found = next(
            (
                directory / f"{sample}{ext}"
                for ext in EXTENSIONS
                if (directory / f"{sample}{ext}").is_file()
            ),
            None,
        )
        if found is None:
            missing.append(f"{sample}{EXTENSIONS[0]}")
        else:
            samples.append((found, label))
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise DatasetNotFoundError(
            f"{lists[0]} lists samples whose files are missing from {directory}: {shown}"
        )
    return samples


def search_dirs(root: Path) -> list[Path]:
    return [root, root / "NMNIST", root / "nmnist"]


def locate(root: Path, train: bool) -> list[tuple[Path, int]]:
    """(file, label) pairs of the split from the first layout found under root."""
    for directory in search_dirs(root):
        samples = _full_layout(directory, train) or _subset_layout(directory, train)
        if samples:
            return samples
    split = "Train" if train else "Test"
    expected = [
        f"{split}/<digit>/<id>.bin (full dataset)",
        f"or <id>.bs2 files with a {split.lower()}*.txt label list (lines '<id> <class>')",
    ]
    hint = (
        "N-MNIST is not downloaded automatically; get it from "
        "https://www.garrickorchard.com/datasets/n-mnist and point the data root at it."
    )
    raise DatasetNotFoundError(describe_search("nmnist", search_dirs(root), expected, hint))


class NMNISTDataset(Dataset):
    """N-MNIST recordings binned into T frames.

    Items: ``(x [T, 2, 34, 34] float32, label int)``: event counts per polarity and pixel in each
    of T equal time slices of the recording (clipped to 1 when ``binarize``). A loader stacks
    them to [B, T, 2, 34, 34]; the simulation wants [T, B, ...]: ``x.transpose(0, 1)``.
    Decoded events are cached in memory on first access (``cache=False`` to turn off; the full
    training set needs about 1.5 GB).
    """

    def __init__(
        self,
        root: Path,
        train: bool,
        timesteps: int,
        binarize: bool = False,
        cache: bool = True,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        check_positive_int(timesteps, "nmnist: timesteps")
        samples = locate(Path(root), train)
        self.files = [f for f, _ in samples]
        self.targets = torch.tensor([label for _, label in samples], dtype=torch.long)
        self.timesteps = timesteps
        self.binarize = binarize
        self.transform = transform
        self._cache: list[tuple[np.ndarray, np.ndarray] | None] | None = (
            [None] * len(self.files) if cache else None
        )

    def __len__(self) -> int:
        return len(self.files)

    def events(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(pixel [E] uint16 = p*34*34 + y*34 + x, t [E] int32 microseconds) of one recording."""
        if self._cache is not None and self._cache[index] is not None:
            return self._cache[index]
        x, y, p, t = decode_events(self.files[index])
        pixel = p.astype(np.uint16) * (SENSOR * SENSOR) + y.astype(np.uint16) * SENSOR + x
        decoded = (pixel.astype(np.uint16), t.astype(np.int32))
        if self._cache is not None:
            self._cache[index] = decoded
        return decoded

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        pixel, t = self.events(index)
        x = torch.from_numpy(bin_events(pixel.astype(np.int64), t, self.timesteps, self.binarize))
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[index])
