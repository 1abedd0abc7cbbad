"""Tests of spikebridge.data: datasets by name, file parsers and their errors, loaders."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from spikebridge.data import (
    DATASET_NAMES,
    DatasetFormatError,
    DatasetNotFoundError,
    bin_events,
    calibration_loader,
    dataset_info,
    decode_events,
    is_event_dataset,
    load_dataset,
    make_loaders,
    read_idx,
)
from spikebridge.datasets.digits import stratified_split


def _shared_data() -> Path:
    env = os.environ.get("SPIKEBRIDGE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


SHARED = _shared_data()
MNIST_DIR = SHARED / "mnist"
NMNIST_DIR = SHARED / "nmnist-small"
needs_mnist = pytest.mark.skipif(
    not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"shared MNIST copy not found at {MNIST_DIR} (set SPIKEBRIDGE_SHARED_DATA)",
)
needs_nmnist = pytest.mark.skipif(
    not (NMNIST_DIR / "test100.txt").is_file(),
    reason=f"shared N-MNIST subset not found at {NMNIST_DIR} (set SPIKEBRIDGE_SHARED_DATA)",
)
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


# ---------------------------------------------------------------- names and info


def test_dataset_info_for_every_name():
    expected = {
        "digits": (1, 8, False),
        "mnist": (1, 28, False),
        "fashion-mnist": (1, 28, False),
        "cifar10": (3, 32, False),
        "nmnist": (2, 34, True),
    }
    assert set(DATASET_NAMES) == set(expected)
    for name, (channels, size, event) in expected.items():
        info = dataset_info(name)
        assert (info.name, info.in_channels, info.image_size, info.num_classes) == (
            name,
            channels,
            size,
            10,
        )
        assert info.is_event is event and is_event_dataset(name) is event
    assert dataset_info("Fashion_MNIST").name == "fashion-mnist"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        dataset_info("imagenet")
    for name in DATASET_NAMES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("svhn")


# ---------------------------------------------------------------- digits


def test_digits_shapes_range_and_disjoint_stratified_split():
    train, test = load_dataset("digits", train=True), load_dataset("digits", train=False)
    assert len(train) + len(test) == 1797
    x, y = train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and isinstance(y, int)
    images = torch.stack([train[i][0] for i in range(len(train))])
    assert images.min() >= 0 and images.max() == 1.0
    # the real split: disjoint, covering, each class ~20 % in test, identical on reload
    from sklearn.datasets import load_digits

    target = load_digits().target
    tr, te = stratified_split(target)
    assert set(tr).isdisjoint(te) and len(set(tr) | set(te)) == target.size
    for cls in range(10):
        share = (target[te] == cls).sum() / (target == cls).sum()
        assert abs(share - 0.2) < 0.01
    assert torch.equal(test.targets, torch.from_numpy(target[te]).long())
    again = load_dataset("digits", train=False)
    assert torch.equal(again.images, test.images)


# ---------------------------------------------------------------- MNIST family


@needs_mnist
def test_mnist_from_direct_dir_fast_and_sane():
    start = time.perf_counter()
    train = load_dataset("mnist", MNIST_DIR, train=True)
    seconds = time.perf_counter() - start
    assert len(train) == 60000 and seconds < 2.0, f"parsing 60k images took {seconds:.2f} s"
    test = load_dataset("mnist", MNIST_DIR, train=False)
    assert len(test) == 10000
    counts = torch.bincount(test.targets, minlength=10)
    assert counts.sum() == 10000 and counts.min() > 800 and counts.max() < 1200
    x, y = test[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert y == 7  # MNIST's first test digit


@needs_mnist
def test_mnist_torchvision_layout_and_unpacked_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES[2:]:
        (raw / name).symlink_to(MNIST_DIR / name)
    direct = load_dataset("mnist", MNIST_DIR, train=False)
    via_layout = load_dataset("mnist", tmp_path, train=False)
    assert torch.equal(direct.images, via_layout.images)
    assert torch.equal(direct.targets, via_layout.targets)
    # torchvision's own download leaves unpacked files: read those too
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    for name in MNIST_FILES[2:]:
        (unpacked / name[:-3]).write_bytes(gzip.decompress((MNIST_DIR / name).read_bytes()))
    plain = load_dataset("mnist", unpacked, train=False)
    assert torch.equal(direct.images, plain.images)


def test_missing_root_names_dir_and_files(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("mnist", missing, train=False)
    message = str(err.value)
    assert isinstance(err.value, DatasetNotFoundError)
    assert str(missing) in message and "does not exist" in message
    assert "t10k-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert "download" in message
    with pytest.raises(DatasetNotFoundError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", missing)
    with pytest.raises(DatasetNotFoundError, match="nmnist"):
        load_dataset("nmnist", missing, timesteps=4)


@needs_mnist
def test_incomplete_root_names_missing_split_files(tmp_path):
    for name in MNIST_FILES[2:]:  # test split only
        (tmp_path / name).symlink_to(MNIST_DIR / name)
    assert len(load_dataset("mnist", tmp_path, train=False)) == 10000
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mnist", tmp_path, train=True)
    assert str(tmp_path) in str(err.value) and "train-images-idx3-ubyte" in str(err.value)


@needs_mnist
def test_mnist_files_refused_as_fashion_mnist(tmp_path):
    for name in MNIST_FILES[2:]:
        (tmp_path / name).symlink_to(MNIST_DIR / name)
    with pytest.raises(DatasetFormatError, match="mnist label file"):
        load_dataset("fashion-mnist", tmp_path, train=False)


def _write_idx(path: Path, array: np.ndarray, magic_type: int = 0x08) -> None:
    header = bytes([0, 0, magic_type, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_idx_parser_round_trip_and_corrupt_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 9], dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    assert np.array_equal(read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images)
    ds = load_dataset("fashion-mnist", tmp_path, train=False)
    assert torch.allclose(ds[1][0][0], torch.from_numpy(images[1]).float() / 255)
    assert [ds[i][1] for i in range(5)] == labels.tolist()

    layout = tmp_path / "tv" / "FashionMNIST" / "raw"
    layout.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"):
        shutil.copy(tmp_path / name, layout / name)
    assert torch.equal(
        load_dataset("fashion-mnist", tmp_path / "tv", train=False).images, ds.images
    )

    truncated = tmp_path / "trunc.gz"
    truncated.write_bytes(gzip.compress(b"\0" * 1000)[:-20])
    with pytest.raises(DatasetFormatError, match="trunc.gz"):
        read_idx(truncated)
    bad_magic = tmp_path / "magic"
    bad_magic.write_bytes(b"\x12\x34\x08\x03" + b"\0" * 20)
    with pytest.raises(DatasetFormatError, match=r"magic.*not an IDX"):
        read_idx(bad_magic)
    short = tmp_path / "short"
    _write_idx(short, images)
    short.write_bytes(short.read_bytes()[:-7])
    with pytest.raises(DatasetFormatError, match=r"short: header declares shape \(5, 28, 28\)"):
        read_idx(short)
    # a pair that does not belong together, and labels outside 0..9
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels[:4])
    with pytest.raises(DatasetFormatError, match="5 images but .* 4 labels"):
        load_dataset("fashion-mnist", tmp_path, train=False)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 3, 12]))
    with pytest.raises(DatasetFormatError, match="label 12 at index 4"):
        load_dataset("fashion-mnist", tmp_path, train=False)


def test_download_only_when_asked_and_missing(tmp_path, monkeypatch):
    import urllib.error

    import torchvision.datasets as tv

    calls = []
    images = np.zeros((2, 28, 28), dtype=np.uint8)

    class FakeMNIST:  # writes what torchvision's download leaves: unpacked files in MNIST/raw
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            raw = Path(root) / "MNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            _write_idx(raw / "t10k-images-idx3-ubyte", images)
            _write_idx(raw / "t10k-labels-idx1-ubyte", np.array([4, 2], dtype=np.uint8))

    monkeypatch.setattr(tv, "MNIST", FakeMNIST)
    with pytest.raises(DatasetNotFoundError):
        load_dataset("mnist", tmp_path, train=False)  # no download unless asked
    assert calls == []
    ds = load_dataset("mnist", tmp_path, train=False, download=True)
    assert calls == [(str(tmp_path.absolute()), False, True)] and ds.targets.tolist() == [4, 2]
    load_dataset("mnist", tmp_path, train=False, download=True)  # present now: no new download
    assert len(calls) == 1

    class Offline:
        def __init__(self, *args, **kwargs):
            raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(tv, "FashionMNIST", Offline)
    monkeypatch.setattr(tv, "CIFAR10", Offline)
    for name in ("fashion-mnist", "cifar10"):
        with pytest.raises(DatasetNotFoundError, match=r"download into .* failed"):
            load_dataset(name, tmp_path / "empty", download=True)


# ---------------------------------------------------------------- CIFAR-10


def _cifar_batch(n: int, seed: int, bytes_keys: bool) -> tuple[dict, np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).tolist()
    batch = {"batch_label": "fake", "labels": labels, "data": data, "filenames": ["a"] * n}
    if bytes_keys:
        batch = {k.encode(): v for k, v in batch.items()}
    return batch, data, labels


def _py2_pickle(batch: dict) -> bytes:
    """A CIFAR batch pickled the way Python 2 wrote the distributed files (protocol 2, py2 str
    keys and array bytes, numpy.core.multiarray._reconstruct)."""

    def string(b: bytes) -> bytes:  # SHORT_BINSTRING / BINSTRING
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b

    data, n = batch["data"], batch["data"].shape[0]
    dtype = (
        b"cnumpy\ndtype\n"
        + string(b"u1")
        + b"K\x00K\x01\x87R(K\x03"
        + string(b"|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
        + string(b"b")
        + b"\x87R(K\x01M"
        + struct.pack("<H", n)
        + b"M"
        + struct.pack("<H", 3072)
        + b"\x86"
        + dtype
        + b"\x89"
        + string(data.tobytes())
        + b"tb"
    )
    labels = b"](" + b"".join(b"K" + bytes([v]) for v in batch["labels"]) + b"e"
    return b"\x80\x02}(" + string(b"data") + array + string(b"labels") + labels + b"u."


def _write_cifar(folder: Path) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for seed, name in enumerate(names):
        batch, data, labels = _cifar_batch(3 + seed, seed, bytes_keys=seed % 2 == 0)
        if name == "test_batch":  # the real files' Python 2 format
            (folder / name).write_bytes(_py2_pickle(batch))
        else:
            with open(folder / name, "wb") as f:
                pickle.dump(batch, f, protocol=2)
        written[name] = (data, labels)
    return written


def test_cifar10_parser_on_fake_batches_in_every_layout(tmp_path):
    written = _write_cifar(tmp_path / "root" / "cifar-10-batches-py")
    test_data, test_labels = written["test_batch"]
    for root in (tmp_path / "root", tmp_path / "root" / "cifar-10-batches-py"):
        test = load_dataset("cifar10", root, train=False)
        assert len(test) == len(test_labels)
        assert torch.equal(test.images.reshape(len(test), -1), torch.from_numpy(test_data))
        x, y = test[1]
        assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == test_labels[1]
        # rows are R(1024) G(1024) B(1024), each 32x32 row-major
        assert x[2, 0, 5].item() == pytest.approx(test_data[1, 2048 + 5] / 255.0)
    train = load_dataset("cifar10", tmp_path / "root", train=True)
    assert len(train) == sum(3 + s for s in range(5))
    assert train.targets.tolist() == sum((written[f"data_batch_{i}"][1] for i in range(1, 6)), [])

    archive_root = tmp_path / "archive"
    archive_root.mkdir()
    with tarfile.open(archive_root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "root" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    from_archive = load_dataset("cifar10", archive_root, train=True)
    assert torch.equal(from_archive.images, train.images)


def test_cifar10_corrupt_and_malicious_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    (folder / "test_batch").write_bytes((folder / "test_batch").read_bytes()[:500])
    with pytest.raises(DatasetFormatError, match="test_batch"):
        load_dataset("cifar10", tmp_path, train=False)

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": Evil(), "labels": []}, f)
    with pytest.raises(DatasetFormatError, match="refusing global builtins.print"):
        load_dataset("cifar10", tmp_path, train=False)

    batch, _, _ = _cifar_batch(4, 0, bytes_keys=False)
    batch["data"] = batch["data"][:, :100]
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(batch, f, protocol=2)
    with pytest.raises(DatasetFormatError, match=r"'data' must be uint8 \[N, 3072\]"):
        load_dataset("cifar10", tmp_path, train=False)


# ---------------------------------------------------------------- N-MNIST


def _encode_events(x, y, p, t) -> bytes:
    """Encode events in the N-MNIST 40-bit format."""
    x, y, p, t = (np.asarray(a, dtype=np.int64) for a in (x, y, p, t))
    out = np.zeros((x.size, 5), dtype=np.uint8)
    out[:, 0], out[:, 1] = x, y
    out[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    out[:, 3], out[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return out.tobytes()


def test_nmnist_decode_round_trip_overflow_and_binning(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    x, y, p = rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n)
    t = np.sort(rng.integers(0, 300_000, n))
    path = tmp_path / "a.bin"
    path.write_bytes(_encode_events(x, y, p, t))
    dx, dy, dp, dt = decode_events(path)
    assert (dx == x).all() and (dy == y).all() and (dp == p).all() and (dt == t).all()

    # an overflow marker (y = 240) adds 2**13 us to every later event and is dropped
    raw = _encode_events([1, 0, 2], [1, 240, 2], [0, 0, 1], [100, 0, 50])
    path.write_bytes(raw)
    dx, dy, dp, dt = decode_events(path)
    assert dx.tolist() == [1, 2] and dt.tolist() == [100, 50 + 8192]

    # equal time slices over the recording: t in [0, 1000) with T = 4 -> 250 us per slice
    pixel = np.array([0, 0, 1, 2 * 34 * 34 - 1, 5])
    times = np.array([0, 249, 250, 749, 999])
    frames = bin_events(pixel, times, 4)
    assert frames.shape == (4, 2, 34, 34) and frames.dtype == np.float32
    assert frames[0, 0, 0, 0] == 2 and frames[1, 0, 0, 1] == 1
    assert frames[2, 1, 33, 33] == 1 and frames[3, 0, 0, 5] == 1 and frames.sum() == 5
    assert bin_events(pixel, times, 4, binarize=True)[0, 0, 0, 0] == 1


@needs_nmnist
def test_nmnist_subset_loads_with_labels_and_events():
    timesteps = 8
    test = load_dataset("nmnist", NMNIST_DIR, train=False, timesteps=timesteps)
    assert len(test) == 100
    rows = [line.split() for line in (NMNIST_DIR / "test100.txt").read_text().splitlines()[1:]]
    expected = {int(sample): int(label) for sample, label in rows}
    for i in range(len(test)):
        x, label = test[i]
        assert x.shape == (timesteps, 2, 34, 34) and x.dtype == torch.float32
        assert label == expected[int(test.files[i].stem)]
        # every event lands in exactly one frame; both polarities fire; every slice has events
        assert x.sum() == test.files[i].stat().st_size // 5
        assert x[:, 0].sum() > 0 and x[:, 1].sum() > 0 and (x.sum(dim=(1, 2, 3)) > 0).all()
    assert test[0][1] == 7  # N-MNIST 60001 is MNIST test digit 0
    binary = load_dataset("nmnist", NMNIST_DIR, train=False, timesteps=timesteps, binarize=True)
    assert binary[0][0].max() == 1 and torch.equal(binary[0][0], test[0][0].clamp(max=1))
    assert len(load_dataset("nmnist", NMNIST_DIR, train=True, timesteps=2)) == 1000


@needs_nmnist
def test_nmnist_loader_batches_and_limit():
    train_loader, test_loader = make_loaders(
        "nmnist", NMNIST_DIR, batch_size=16, limit=20, timesteps=5, train_limit=40
    )
    x, y = next(iter(test_loader))
    assert x.shape == (16, 5, 2, 34, 34) and y.shape == (16,)
    assert len(test_loader.dataset) == 20 and len(train_loader.dataset) == 40


def test_nmnist_full_layout_and_bad_arguments(tmp_path):
    for split, sample, digit in (("Train", 5, 3), ("Train", 2, 8), ("Test", 60001, 7)):
        folder = tmp_path / split / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{sample}.bin").write_bytes(
            _encode_events([1, 2, 3], [4, 5, 6], [0, 1, 1], [0, 10, 20 + sample])
        )
    train = load_dataset("nmnist", tmp_path, train=True, timesteps=3)
    assert [f.name for f in train.files] == ["2.bin", "5.bin"]  # ordered by id, not class
    assert train.targets.tolist() == [8, 3]
    assert train[0][0].shape == (3, 2, 34, 34) and train[0][0].sum() == 3
    first = train[1][0]
    train.files[1].unlink()  # decoded events are cached in memory
    assert torch.equal(train[1][0], first)
    assert load_dataset("nmnist", tmp_path, train=False, timesteps=3)[0][1] == 7
    with pytest.raises(ValueError, match="timesteps is required"):
        load_dataset("nmnist", tmp_path)
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="timesteps must be a positive integer"):
            load_dataset("nmnist", tmp_path, timesteps=bad)
    with pytest.raises(ValueError, match="download is not supported"):
        load_dataset("nmnist", tmp_path, timesteps=3, download=True)


def _subset_root(tmp_path: Path, payload: bytes) -> Path:
    root = tmp_path / "subset"
    root.mkdir()
    (root / "test100.txt").write_text("#sample #class\n60001\t7\n")
    (root / "60001.bs2").write_bytes(payload)
    return root


@pytest.mark.parametrize(
    ("payload", "pattern"),
    [
        (_encode_events([1, 2], [3, 4], [0, 1], [5, 6]) + b"\x01\x02", r"byte offset 10"),
        (_encode_events([1, 40, 2], [3, 4, 5], [0, 1, 0], [5, 6, 7]), r"byte offset 5 .*x=40"),
        (_encode_events([1, 2, 3], [3, 4, 99], [0, 1, 0], [5, 6, 7]), r"byte offset 10 .*y=99"),
        (
            _encode_events([1, 2, 3], [3, 4, 5], [0, 1, 0], [5, 90_000, 7]),
            r"byte offset 10 .*timestamp",
        ),
        (b"", r"no events"),
    ],
    ids=["length", "x", "y", "time", "empty"],
)
def test_corrupt_nmnist_file_names_file_and_offset(tmp_path, payload, pattern):
    root = _subset_root(tmp_path, payload)
    dataset = load_dataset("nmnist", root, train=False, timesteps=4)  # decoding is lazy
    with pytest.raises(DatasetFormatError, match=pattern) as err:
        dataset[0]
    assert "60001.bs2" in str(err.value)


def test_nmnist_label_list_errors(tmp_path):
    root = _subset_root(tmp_path, _encode_events([1], [1], [1], [1]))
    (root / "test100.txt").write_text("#sample #class\n60001\t7\n60002\t1\n")
    with pytest.raises(DatasetNotFoundError, match="60002.bs2"):
        load_dataset("nmnist", root, train=False, timesteps=2)
    (root / "test100.txt").write_text("60001 seven\n")
    with pytest.raises(DatasetFormatError, match="line 1"):
        load_dataset("nmnist", root, train=False, timesteps=2)


# ---------------------------------------------------------------- loaders


def test_make_loaders_shapes_limit_and_seeded_shuffle():
    train_loader, test_loader = make_loaders("digits", batch_size=32, limit=50, seed=3)
    x, y = next(iter(train_loader))
    assert x.shape == (32, 1, 8, 8) and y.dtype == torch.int64
    full_test = load_dataset("digits", train=False)
    limited = torch.cat([b[1] for b in test_loader])
    assert torch.equal(limited, full_test.targets[:50])  # the first N test samples, in order

    def first_labels(seed: int) -> torch.Tensor:
        loader, _ = make_loaders("digits", batch_size=64, seed=seed)
        return torch.cat([next(iter(loader))[1], next(iter(loader))[1]])

    assert torch.equal(first_labels(3), first_labels(3))
    assert not torch.equal(first_labels(3), first_labels(4))
    epoch1, epoch2 = ([b[1] for b in train_loader] for _ in range(2))
    assert not all(torch.equal(a, b) for a, b in zip(epoch1, epoch2))  # reshuffled per epoch

    small, _ = make_loaders("digits", train_limit=100, seed=1)
    again, _ = make_loaders("digits", train_limit=100, seed=1)
    assert len(small.dataset) == 100 and small.dataset.indices == again.dataset.indices
    assert len(small.dataset.targets.unique()) == 10  # random, not the first 100
    big, _ = make_loaders("digits", limit=10**6)
    assert len(big.dataset) > 1000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"limit": 0},
        {"limit": -5},
        {"train_limit": 0},
        {"num_workers": -1},
        {"batch_size": 2.5},
    ],
)
def test_make_loaders_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_loaders("digits", **kwargs)


def test_calibration_loader_fixed_subset():
    train = load_dataset("digits")
    first = torch.cat([y for _, y in calibration_loader(train, n=200, batch_size=64, seed=5)])
    second = torch.cat([y for _, y in calibration_loader(train, n=200, batch_size=64, seed=5)])
    other = calibration_loader(train, n=200, seed=6)
    assert first.numel() == 200 and torch.equal(first, second)
    assert calibration_loader(train, n=200, seed=5).dataset.indices != other.dataset.indices
    assert len(calibration_loader(train, n=10**6).dataset) == len(train)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        calibration_loader(train, n=0)
    with pytest.raises(ValueError, match="dataset is empty"):
        calibration_loader(torch.utils.data.TensorDataset(torch.zeros(0, 1)), n=5)


def test_default_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEBRIDGE_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
        load_dataset("mnist", train=False)


@needs_mnist
def test_idx_reader_gives_torchvisions_tensors_on_the_real_mnist_files(tmp_path):
    """Our IDX reader (kept for the flat .gz layout and its errors; docs/loading.md, Dataset
    readers) reads the distributed MNIST test files into exactly the tensors torchvision's own
    parser gives for the unpacked files."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    ours = load_dataset("mnist", root=MNIST_DIR, train=False)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / stem).write_bytes(gzip.decompress((MNIST_DIR / f"{stem}.gz").read_bytes()))
    images = read_image_file(str(tmp_path / "t10k-images-idx3-ubyte"))
    labels = read_label_file(str(tmp_path / "t10k-labels-idx1-ubyte"))
    assert torch.equal(ours.images.squeeze(1), images)
    assert torch.equal(ours.targets, labels.long())
