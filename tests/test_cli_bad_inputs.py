"""Every CLI command against bad input: one table (issue 12).

Each case runs ``spikebridge.cli.main`` in-process and asserts what a user relies on: exit status
2, a one-line message on stderr naming the argument or file at fault, no traceback, and no file
created, changed or removed in a pre-existing output directory (hashes before and after), or no
output directory at all when there was none. The cases fail before any compute: every training
function (ANN, direct SNN, STDP) is replaced by one that fails the test if called. The few that
need a finished run to start from copy one made once per session with tiny digits settings.
``export`` cases give their own arguments; ``{out}`` is the output directory there.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import readonly_dirs
import torch

from spikebridge.cli import main
from spikebridge.models import build_model
from spikebridge.rundir import claim

read_only = readonly_dirs.read_only  # the fixture

CONVERT = [
    "convert", "--width", "0.25", "--batch-size", "64", "--limit", "32", "--epochs", "1",
    "--train-limit", "128",
    "--calibration-samples", "32", "--timesteps", "4", "--method", "max", "--device", "cpu",
    "--quiet",
]  # fmt: skip
TRAIN = [
    "train", "--width", "0.25", "--batch-size", "32", "--train-limit", "64", "--limit", "32",
    "--direct-timesteps", "2", "--epochs", "1", "--device", "cpu", "--quiet",
]  # fmt: skip
COMPARE = [
    "compare", "--width", "0.25", "--batch-size", "64", "--limit", "32", "--train-limit", "64",
    "--calibration-samples", "32", "--timesteps", "4", "--epochs", "1", "--direct-epochs", "1",
    "--direct-timesteps", "2", "--methods", "max", "--device", "cpu", "--quiet",
]  # fmt: skip
DEMO = ["demo", "--device", "cpu", "--quiet"]
BASE = {"convert": CONVERT, "train": TRAIN, "compare": COMPARE, "demo": DEMO, "export": ["export"]}
HUGE = "99999999999999999999"  # past 64 bits: once an OverflowError after the ANN had trained
TRAINING_FUNCTIONS = [
    ("spikebridge.convert.experiment", "train_ann"),
    ("spikebridge.compare.ann", "train_ann"),
    ("spikebridge.direct.experiment", "train_direct"),
    ("spikebridge.compare.routes.direct", "train_direct"),
    ("spikebridge.stdp.run", "train"),
    ("spikebridge.compare.routes.stdp", "train_stdp_layers"),
]


@dataclass
class Case:
    """One bad input: ``args`` follow the command's base arguments; ``{data}`` is the folder of
    prepared bad files. ``expect``: a regex the one-line message must match (naming the argument
    or file). ``out``: the output directory the run is pointed at (see :func:`_prepare_out`)."""

    id: str
    command: str
    args: list[str]
    expect: str
    out: str = "empty"
    marks: list = field(default_factory=list)

    def param(self):
        return pytest.param(self, id=self.id, marks=self.marks)


def _numbers(command: str, bad: list[tuple[str, list[str], str]]) -> list[Case]:
    return [Case(f"{command}-{name}", command, args, expect) for name, args, expect in bad]


POSITIVE = r"argument {}: expected a positive integer"
CASES: list[Case] = [
    # --- bad numbers and names -----------------------------------------------------------------
    *_numbers(
        "convert",
        [
            ("timesteps-0", ["--timesteps", "0"], POSITIVE.format("--timesteps")),
            ("timesteps-negative", ["--timesteps", "-3"], POSITIVE.format("--timesteps")),
            ("timesteps-text", ["--timesteps", "four"], POSITIVE.format("--timesteps")),
            ("batch-size-0", ["--batch-size", "0"], POSITIVE.format("--batch-size")),
            ("limit-0", ["--limit", "0"], POSITIVE.format("--limit")),
            ("percentile-0", ["--percentile", "0"], r"argument --percentile: percentile must be"),
            ("percentile-101", ["--percentile", "101"], r"argument --percentile"),
            ("percentile-text", ["--percentile", "high"], r"argument --percentile"),
            ("calibration-0", ["--calibration-samples", "0"], r"--calibration-samples"),
            ("levels-0", ["--levels", "0"], POSITIVE.format("--levels")),
            ("validation-0", ["--validation-samples", "0"], r"--validation-samples"),
            ("selection-timesteps-0", ["--selection-timesteps", "0"], r"--selection-timesteps"),
            ("width-0", ["--width", "0"], r"--width"),
            ("width-negative", ["--width", "-1"], r"--width"),
            ("train-epochs-negative", ["--train-epochs", "-1"], r"--train-epochs"),
            ("lr-nan", ["--train-epochs", "1", "--lr", "nan"], r"--lr|learning rate"),
            ("method-unknown", ["--method", "bogus"], r"bogus"),
            ("arch-unknown", ["--arch", "bogus"], r"bogus"),
            ("dataset-unknown", ["--dataset", "bogus"], r"bogus"),
            ("device-cuda-absent", ["--device", "cuda"], r"device 'cuda'.*--device cpu"),
        ],
    ),
    *_numbers(
        "train",
        [
            ("timesteps-0", ["--timesteps", "0"], POSITIVE.format("--timesteps")),
            ("epochs-0", ["--epochs", "0"], r"--direct-epochs \(--epochs\) must be a positive integer to train, got 0"),
            ("epochs-negative", ["--epochs", "-1"], r"argument --epochs/--train-epochs: expected an integer >= 0"),
            ("direct-timesteps-0", ["--direct-timesteps", "0"], POSITIVE.format("--direct-timesteps")),
            ("timesteps-with-stdp", ["--route", "stdp", "--timesteps", "8"], r"--timesteps is the direct route's simulated T.*--stdp-timesteps"),
            ("lr-negative", ["--lr", "-1"], r"--lr|learning rate"),
            ("lr-nan", ["--lr", "nan"], r"--lr|learning rate"),
            ("lr-inf", ["--lr", "inf"], r"--lr|learning rate"),
            ("batch-size-0", ["--batch-size", "0"], POSITIVE.format("--batch-size")),
            ("width-0", ["--width", "0"], r"--width"),
            ("width-negative", ["--width", "-0.5"], r"--width"),
            ("weight-decay-negative", ["--weight-decay", "-1"], r"weight.decay"),
            ("workers-negative", ["--workers", "-1"], r"workers"),
            ("train-limit-0", ["--train-limit", "0"], POSITIVE.format("--train-limit")),
            ("seed-text", ["--seed", "abc"], r"argument --seed"),
            ("arch-unknown", ["--arch", "bogus"], r"bogus"),
            ("dataset-unknown", ["--dataset", "bogus"], r"bogus"),
            ("device-cuda-absent", ["--device", "cuda"], r"device 'cuda'.*--device cpu"),
        ],
    ),
    *_numbers(
        "compare",
        [
            ("timesteps-0", ["--timesteps", "0"], POSITIVE.format("--timesteps")),
            ("epochs-negative", ["--epochs", "-2"], r"argument --epochs(/--train-epochs)?: expected an integer >= 0"),
            ("direct-epochs-negative", ["--direct-epochs", "-1"], r"argument --direct-epochs: expected an integer >= 0"),
            ("width-0", ["--width", "0"], r"argument --width: must be positive"),
            ("width-negative", ["--width", "-1"], r"argument --width: must be positive"),
            ("lr-refused", ["--lr", "0.1"], r"--lr: compare trains two networks with two optimisers: give --ann-lr .* --direct-lr"),
            ("lr-refused-without-value", ["--lr"], r"--lr: .*--ann-lr"),
            ("ann-lr-0", ["--ann-lr", "0"], r"argument --ann-lr: must be positive"),
            ("percentile-200", ["--percentile", "200"], r"percentile must be in"),
            ("e-mac-negative", ["--e-mac", "-1"], r"argument --e-mac: must be >= 0"),
            ("methods-unknown", ["--methods", "bogus"], r"methods: unknown method.*bogus"),
            ("dataset-events", ["--dataset", "nmnist"], r"nmnist"),
            ("arch-unknown", ["--arch", "bogus"], r"bogus"),
            ("calibration-0", ["--calibration-samples", "0"], r"--calibration-samples"),
            ("device-cuda-absent", ["--device", "cuda"], r"device 'cuda'.*--device cpu"),
        ],
    ),
    Case("demo-device-cuda-absent", "demo", ["--device", "cuda"], r"device 'cuda'.*--device cpu"),
    Case("demo-unknown-flag", "demo", ["--epochs", "3"], r"unrecognized arguments: --epochs"),
    # --- data files ----------------------------------------------------------------------------
    *[
        Case(f"{command}-mnist-{name}", command, ["--dataset", "mnist", "--data-root", root], expect)
        for command in ("convert", "train", "compare")
        for name, root, expect in [
            ("missing-root", "{data}/absent", r"mnist: no complete copy found.*absent"),
            ("missing-files", "{data}/mnist-empty", r"mnist: no complete copy found.*mnist-empty"),
            ("corrupt-gz", "{data}/mnist-corrupt", r"mnist-corrupt/.*not a valid gzip file"),
            ("truncated-gz", "{data}/mnist-truncated", r"mnist-truncated/.*not a valid gzip"),
            ("not-idx", "{data}/mnist-not-idx", r"mnist-not-idx/.*not an IDX magic number"),
            ("short-data", "{data}/mnist-short", r"mnist-short/.*truncated or corrupt"),
        ]
    ],
    Case("train-nmnist-missing-root", "train", ["--dataset", "nmnist", "--data-root", "{data}/absent"], r"nmnist: no complete copy found.*absent"),
    Case("train-nmnist-bad-label-list", "train", ["--dataset", "nmnist", "--data-root", "{data}/nmnist-bad-list"], r"nmnist-bad-list/train1K.txt, line 2"),
    Case("train-nmnist-listed-file-missing", "train", ["--dataset", "nmnist", "--data-root", "{data}/nmnist-missing-file"], r"train1K.txt lists samples whose files are missing.*7.bs2"),
    Case("convert-nmnist-events", "convert", ["--dataset", "nmnist", "--data-root", "{data}/absent"], r"--dataset nmnist"),
    # --- checkpoints ---------------------------------------------------------------------------
    *[
        Case(f"convert-checkpoint-{name}", "convert", ["--checkpoint", f"{{data}}/{file}", *extra], expect, marks=marks)
        for name, file, extra, expect, marks in [
            ("missing", "absent.pt", [], r"--checkpoint .*absent.pt.*no such file", []),
            ("directory", "mnist-empty", [], r"--checkpoint .*mnist-empty", []),
            ("empty", "empty.pt", [], r"--checkpoint .*empty.pt", []),
            ("random-bytes", "random.pt", [], r"--checkpoint .*random.pt", []),
            ("truncated", "truncated.pt", [], r"--checkpoint .*truncated.pt", []),
            ("other-architecture", "wide.pt", [], r"--checkpoint .*wide.pt.*does not match the architecture", []),
            ("a-tensor", "tensor.pt", [], r"--checkpoint .*tensor.pt.*holds a Tensor", []),
            ("whole-module-untrusted", "module.pt", [], r"--checkpoint .*module.pt.*--trust-checkpoint", []),
            ("random-bytes-trusted", "random.pt", ["--trust-checkpoint"], r"--checkpoint .*random.pt", []),
            ("truncated-trusted", "truncated.pt", ["--trust-checkpoint"], r"--checkpoint .*truncated.pt", []),
            ("class-gone-trusted", "vanished.pt", ["--trust-checkpoint"], r"--checkpoint .*vanished.pt.*VanishedNet", []),
            ("module-gone-trusted", "module_gone.pt", ["--trust-checkpoint"], r"--checkpoint .*module_gone.pt.*spikebridge_vanished", []),
            ("corrupt-export", "corrupt.pt2", [], r"--checkpoint .*corrupt.pt2", []),
        ]
    ],
    # --- resuming training ---------------------------------------------------------------------
    Case("train-resume-nothing-to-resume", "train", ["--resume"], r"no checkpoint at .*checkpoint.pt"),
    Case("train-resume-corrupt-checkpoint", "train", ["--resume"], r"checkpoint.pt is not a readable checkpoint", out="train-run-corrupt"),
    Case("train-resume-truncated-checkpoint", "train", ["--resume"], r"checkpoint.pt is not a readable checkpoint", out="train-run-truncated"),
    Case("train-resume-other-width", "train", ["--resume", "--width", "0.5"], r"--width: 0.25 in the run being resumed, 0.5 now", out="train-run"),
    Case("train-resume-changed-timesteps", "train", ["--resume", "--direct-timesteps", "3"], r"--direct-timesteps: 2 in the run being resumed, 3 now", out="train-run"),
    Case("train-resume-changed-simulated-timesteps", "train", ["--resume", "--timesteps", "3"], r"--timesteps: 2 in the run being resumed, 3 now", out="train-run"),
    Case("train-resume-changed-lr", "train", ["--resume", "--lr", "0.01"], r"--direct-lr: 0.1 in the run being resumed, 0.01 now", out="train-run"),
    Case("train-resume-changed-seed", "train", ["--resume", "--seed", "1"], r"--seed: 0 in the run being resumed, 1 now", out="train-run"),
    Case("train-resume-changed-batch-size", "train", ["--resume", "--batch-size", "16"], r"--batch-size: 32 in the run being resumed, 16 now", out="train-run"),
    Case("train-resume-changed-optimizer", "train", ["--resume", "--optimizer", "adam"], r"--direct-optimizer: 'sgd' in the run being resumed, 'adam' now", out="train-run"),
    Case("train-resume-changed-schedule", "train", ["--resume", "--schedule", "step"], r"--direct-schedule: 'cosine' in the run being resumed, 'step' now", out="train-run"),
    Case("train-resume-changed-data", "train", ["--resume", "--train-limit", "48"], r"--train-limit: 64 in the run being resumed, 48 now", out="train-run"),
    Case("train-resume-fewer-epochs", "train", ["--resume", "--epochs", "1"], r"--direct-epochs: 1 now, fewer than the 2", out="train-run-2-epochs"),
    Case("train-resume-several-changes-named", "train", ["--resume", "--direct-timesteps", "3", "--seed", "2"], r"--direct-timesteps: 2 .*--seed: 0 ", out="train-run"),
    Case("train-resume-compare-directory", "train", ["--resume"], r"`spikebridge compare`", out="compare-run"),
    # --- configuration files -------------------------------------------------------------------
    Case("compare-config-missing", "compare", ["--config", "{data}/absent.toml"], r"config file .*absent.toml.* does not exist"),
    Case("compare-config-not-toml", "compare", ["--config", "{data}/broken.toml"], r"broken.toml: not valid TOML"),
    Case("compare-config-unknown-key", "compare", ["--config", "{data}/unknown.toml"], r"unknown.toml.*unknown key 'timestep'"),
    Case("compare-config-wrong-type", "compare", ["--config", "{data}/wrong_type.toml"], r"wrong_type.toml.*timesteps"),
    Case("compare-config-bad-value", "compare", ["--config", "{data}/bad_value.toml"], r"bad_value.toml.*percentile"),
    Case("compare-config-directory", "compare", ["--config", "{data}"], r"config file .*bad-files.* is a directory"),
    Case("compare-config-not-utf8", "compare", ["--config", "{data}/latin1.toml"], r"latin1.toml: not a UTF-8 text file"),
    # --- output directories --------------------------------------------------------------------
    *[
        Case(f"{command}-out-{kind}", command, [], expect, out=kind)
        for command in ("convert", "train", "compare", "demo")
        for kind, expect in [
            ("is-a-file", r"--out .*is-a-file.* is an existing file"),
            ("read-only", r"--out .*read-only.* is not writable"),
            ("read-only-parent", r"--out .*read-only/run.* is not writable"),
            ("busy", rf"--out .* is in use by another spikebridge run \(pid {os.getpid()}\b"),
        ]
    ],
    Case("train-into-finished-run-without-resume", "train", ["--epochs", "2"], r"--out .*holds the results of an earlier|--direct-epochs: 1 in DIR, 2 now", out="train-run"),
    Case("convert-into-compare-directory", "convert", [], r"--out .*holds the results of `spikebridge compare`", out="compare-run"),
    Case("train-into-convert-directory", "train", [], r"--out .*holds the results of `spikebridge convert`", out="convert-run"),
    Case("compare-into-convert-directory", "compare", [], r"`spikebridge convert`|not empty", out="convert-run"),
    Case("compare-other-experiment", "compare", ["--seed", "1"], r"--seed: 0 in DIR, 1 now", out="compare-run"),
    Case("convert-other-experiment", "convert", ["--timesteps", "8"], r"--timesteps: 4 in DIR, 8 now", out="convert-run"),
    Case("demo-into-train-directory", "demo", [], r"`spikebridge train`|not empty", out="train-run"),
    Case("convert-into-unrecorded-files", "convert", [], r"--out .* is not empty \(notes.txt\)", out="foreign"),
    # --- every number bounded when parsed, naming the flag (issue 19, items 10 and 14) ----------
    *_numbers(
        "convert",
        [
            ("timesteps-huge", ["--timesteps", HUGE], r"argument --timesteps: expected a positive integer <= 100000, got 9999"),
            ("timesteps-past-maximum", ["--timesteps", "100001"], r"argument --timesteps: .*<= 100000"),
            ("targets-huge", ["--targets", f"2,{HUGE}"], r"argument --targets: must be at most 100000"),
            ("targets-zero", ["--targets", "0,2"], r"argument --targets: must be positive integers"),
            ("levels-huge", ["--levels", HUGE], r"argument --levels: expected a positive integer <= 1024"),
            ("batch-size-float-notation", ["--batch-size", "1e20"], r"argument --batch-size: expected a positive integer <= 65536, got '1e20'"),
            ("batch-size-huge", ["--batch-size", "100000"], r"argument --batch-size: .*<= 65536"),
            ("width-huge", ["--width", "1e9"], r"argument --width: must be at most 64"),
            ("width-inf", ["--width", "inf"], r"argument --width: must be finite"),
            ("seed-2-to-the-70", ["--seed", str(2**70)], r"argument --seed: expected an integer >= 0 and <= 9223372036854775807"),
            ("seed-negative", ["--seed", "-1"], r"argument --seed: expected an integer >= 0"),
            ("lr-huge", ["--lr", "1e30"], r"argument --lr: must be at most 10"),
            ("epochs-huge", ["--epochs", "1000000000"], r"argument --epochs(/--train-epochs)?: .*<= 100000"),
            ("limit-huge", ["--limit", HUGE], r"argument --limit: .*<= 10000000"),
            ("train-limit-huge", ["--train-limit", HUGE], r"argument --train-limit: .*<= 10000000"),
            ("calibration-huge", ["--calibration-samples", HUGE], r"argument --calibration-samples: .*<= 10000000"),
            ("selection-timesteps-huge", ["--selection-timesteps", HUGE], r"argument --selection-timesteps: .*<= 100000"),
            ("spike-norm-window-huge", ["--spike-norm-window", HUGE], r"argument --spike-norm-window: .*<= 100000"),
            ("alpha-huge", ["--alpha", "5"], r"argument --alpha: must be at most 1"),
            ("e-ac-huge", ["--e-ac", "1e300"], r"argument --e-ac: must be at most 1e\+06"),
            ("initial-potential-1", ["--initial-potential", "1"], r"argument --initial-potential: must be a fraction in \[0, 1\)"),
            ("digits-past-python-limit", ["--timesteps", "9" * 5000], r"argument --timesteps: expected a positive integer <= 100000, got '9999"),
        ],
    ),
    *_numbers(
        "train",
        [
            ("direct-timesteps-huge", ["--direct-timesteps", HUGE], r"argument --direct-timesteps: expected a positive integer <= 1000"),
            ("timesteps-huge", ["--timesteps", HUGE], r"argument --timesteps: expected a positive integer <= 100000"),
            ("momentum-2", ["--momentum", "2"], r"argument --direct-momentum/--momentum: must be below 1, got 2.0"),
            ("momentum-1", ["--momentum", "1"], r"--momentum: must be below 1"),
            ("lr-huge", ["--lr", "1e30"], r"argument --lr: must be at most 10"),
            ("batch-size-float-notation", ["--batch-size", "1e20"], r"argument --batch-size: expected a positive integer <= 65536"),
            ("width-huge", ["--width", "1e9"], r"argument --width: must be at most 64"),
            ("seed-2-to-the-70", ["--seed", str(2**70)], r"argument --seed: expected an integer >= 0 and <= 9223372036854775807"),
            ("epochs-huge", ["--epochs", "1000000000"], r"argument --epochs/--train-epochs: .*<= 100000"),
            ("threshold-huge", ["--threshold", "1e9"], r"--threshold: must be at most 1000"),
            ("tau-decay-above-1", ["--tau-decay", "2"], r"--tau-decay: must be at most 1"),
            ("weight-decay-huge", ["--weight-decay", "1e9"], r"--weight-decay: must be at most 1"),
            ("surrogate-width-nan", ["--surrogate-width", "nan"], r"--surrogate-width: must be finite"),
            ("workers-huge", ["--workers", "100000"], r"argument --workers: expected an integer from 0 to 256"),
            ("stdp-timesteps-huge", ["--route", "stdp", "--stdp-timesteps", HUGE], r"argument --stdp-timesteps: .*<= 10000"),
            ("stdp-channels-huge", ["--route", "stdp", "--stdp-feature-channels", "100000"], r"argument --stdp-feature-channels: .*<= 4096"),
            ("stdp-epochs-huge", ["--route", "stdp", "--stdp-epochs", HUGE], r"argument --stdp-epochs: .*<= 100000"),
        ],
    ),
    *_numbers(
        "compare",
        [
            ("timesteps-huge", ["--timesteps", HUGE], r"argument --timesteps: expected a positive integer <= 100000"),
            ("targets-huge", ["--targets", f"2,{HUGE}"], r"argument --targets: must be at most 100000"),
            ("levels-huge", ["--levels", HUGE], r"argument --levels: .*<= 1024"),
            ("direct-momentum-2", ["--direct-momentum", "2"], r"argument --direct-momentum: must be below 1"),
            ("direct-lr-huge", ["--direct-lr", "1e30"], r"argument --direct-lr: must be at most 10"),
            ("direct-timesteps-huge", ["--direct-timesteps", HUGE], r"argument --direct-timesteps: .*<= 1000"),
            ("seed-2-to-the-70", ["--seed", str(2**70)], r"argument --seed: .*<= 9223372036854775807"),
            ("noise-level-inf", ["--noise", "gaussian:inf"], r"noise gaussian: level inf is out of range"),
            ("config-dev-zero", ["--config", "/dev/zero"], r"config file '/dev/zero' is not a regular file"),
            ("config-too-big", ["--config", "{data}/big.toml"], r"config file .*big.toml' is larger than 1 MiB"),
            ("config-huge-timesteps", ["--config", "{data}/huge.toml"], r"huge.toml, line 1: key 'timesteps': timesteps must be at most 100000"),
            ("config-epochs-10-to-the-9", ["--config", "{data}/epochs.toml"], r"epochs.toml, line 1: key 'epochs': epochs must be at most 100000"),
            ("config-momentum-2", ["--config", "{data}/momentum.toml"], r"momentum.toml, line 1: key 'direct_momentum': direct_momentum must be below 1"),
            ("config-width-past-float", ["--config", "{data}/wide.toml"], r"wide.toml, line 1: key 'width': width must be at most 64, got 1000"),
            ("config-seed-negative", ["--config", "{data}/seed.toml"], r"seed.toml, line 1: key 'seed': seed must be >= 0"),
        ],
    ),
    # --- checks that need the data or the ANN, made before it trains ---------------------------
    Case("convert-methods-none-fits-the-ann", "convert", ["--methods", "qcfs"], r"--methods qcfs: method 'qcfs' needs an ANN trained with QCFS activations \(this ANN has ReLU activations\); train with --activation qcfs"),
    Case("compare-methods-none-fits-the-ann", "compare", ["--methods", "qcfs"], r"--methods qcfs: .*--activation qcfs"),
    Case("convert-percentile-auto-no-held-out-images", "convert", ["--percentile", "auto", "--calibration-samples", "128"], r"--percentile auto .*--calibration-samples 128 takes all \d+ training images; lower --calibration-samples"),
    Case("convert-percentile-auto-defaults-on-digits", "convert", ["--percentile", "auto", "--calibration-samples", "2000", "--train-limit", "1438"], r"--calibration-samples 2000 takes all 1294 training images"),
    Case("compare-percentile-auto-no-held-out-images", "compare", ["--percentile", "auto", "--calibration-samples", "64"], r"--percentile auto .*--calibration-samples 64 takes all \d+"),
    Case("convert-one-training-image", "convert", ["--train-limit", "1"], r"training the ANN needs at least 2 training images, got 1 \(raise --train-limit"),
    Case("compare-one-training-image", "compare", ["--train-limit", "1"], r"at least 2 training images"),
    Case("convert-batch-size-1-with-batch-norm", "convert", ["--batch-size", "1"], r"--batch-size 1: the ANN has batch normalisation"),
    *[
        Case(f"{command}-mnist-empty-{split}-split", command, ["--dataset", "mnist", "--data-root", f"{{data}}/mnist-no-{split}"], rf"mnist: the {split} split in .*mnist-no-{split} holds no samples")
        for command in ("convert", "train", "compare")
        for split in ("training", "test")
    ],
    # --- export ----------------------------------------------------------------------------------
    Case("export-empty-file", "export", ["{data}/empty.pt", "{out}/net.nir"], r"empty.pt: not a readable model file .* corrupt, truncated"),
    Case("export-empty-file-trusted", "export", ["{data}/empty.pt", "{out}/net.nir", "--trust-checkpoint"], r"empty.pt: not a readable model file"),
    Case("export-missing-file", "export", ["{data}/absent.pt", "{out}/net.nir"], r"absent.pt'?: no such file"),
    Case("export-dt-nan", "export", ["{data}/empty.pt", "{out}/net.nir", "--dt", "nan"], r"argument --dt: expected a number in \(0, 1\]"),
    Case("export-dt-0", "export", ["{data}/empty.pt", "{out}/net.nir", "--dt", "0"], r"argument --dt: expected a number in \(0, 1\]"),
    Case("export-input-shape-huge", "export", ["{data}/empty.pt", "{out}/net.nir", "--input-shape", f"1,{HUGE},3"], r"argument --input-shape: expected at most 4 sizes, each at most 65536"),
]  # fmt: skip


# ----------------------------------------------------------------------------------------------
# the bad files


def _idx(array_shape: tuple[int, ...], data: bytes, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, len(array_shape)]) + b"".join(
        struct.pack(">I", d) for d in array_shape
    )
    return header + data


def _write_mnist(folder: Path, images: bytes, labels: bytes) -> None:
    folder.mkdir(parents=True)
    for split in ("train", "t10k"):
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(images)
        (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(labels)


class VanishedNet(torch.nn.Module):
    """A module class that exists when its checkpoint is saved and not when it is loaded."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("bad-files")
    n = 4
    labels = gzip.compress(_idx((n,), bytes(range(n))))
    good_images = gzip.compress(_idx((n, 28, 28), bytes(n * 28 * 28)))
    (data / "mnist-empty").mkdir()
    _write_mnist(data / "mnist-corrupt", os.urandom(2000), labels)
    _write_mnist(data / "mnist-truncated", good_images[: len(good_images) // 2], labels)
    _write_mnist(data / "mnist-not-idx", gzip.compress(b"PK\x03\x04" + bytes(3000)), labels)
    _write_mnist(data / "mnist-short", gzip.compress(_idx((n, 28, 28), bytes(100))), labels)
    bad_list = data / "nmnist-bad-list"
    bad_list.mkdir()
    (bad_list / "train1K.txt").write_text("1 5\n2 five\n")
    (bad_list / "test100.txt").write_text("60001 7\n")
    missing_file = data / "nmnist-missing-file"
    missing_file.mkdir()
    (missing_file / "train1K.txt").write_text("7 3\n")
    (missing_file / "test100.txt").write_text("60001 7\n")

    model = build_model("cnn", 10, 1, 8, width=0.25)
    torch.save(model.state_dict(), data / "state.pt")
    torch.save(build_model("cnn", 10, 1, 8, width=0.5).state_dict(), data / "wide.pt")
    torch.save(torch.zeros(3), data / "tensor.pt")
    torch.save(model, data / "module.pt")
    (data / "empty.pt").write_bytes(b"")
    (data / "random.pt").write_bytes(os.urandom(4096))
    whole = (data / "state.pt").read_bytes()
    (data / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    (data / "corrupt.pt2").write_bytes(os.urandom(1024))
    # a trusted pickle whose class is gone: from an existing module, and a whole module gone
    VanishedNet.__module__ = "spikebridge.models"
    import spikebridge.models as models_module

    models_module.VanishedNet = VanishedNet
    try:
        torch.save(VanishedNet(), data / "vanished.pt")
    finally:
        del models_module.VanishedNet
        VanishedNet.__module__ = __name__
    gone = type(sys)("spikebridge_vanished")
    exec("import torch\nclass Net(torch.nn.Module):\n    pass\n", gone.__dict__)
    sys.modules["spikebridge_vanished"] = gone
    try:
        torch.save(gone.Net(), data / "module_gone.pt")
    finally:
        del sys.modules["spikebridge_vanished"]

    (data / "broken.toml").write_text("timesteps = [1,\n")
    (data / "unknown.toml").write_text("timestep = 4\n")
    (data / "wrong_type.toml").write_text('timesteps = "four"\n')
    (data / "bad_value.toml").write_text("percentile = 150.0\n")
    (data / "latin1.toml").write_bytes("arch = 'caf\xe9'\n".encode("latin-1"))
    (data / "big.toml").write_bytes(b"# padding\n" * 200_000)  # 2 MB of comments
    (data / "huge.toml").write_text("timesteps = 99999999999999\n")
    (data / "epochs.toml").write_text("epochs = 1000000000\n")
    (data / "momentum.toml").write_text("direct_momentum = 2.0\n")
    (data / "wide.toml").write_text(f"width = {'1' + '0' * 400}\n")
    (data / "seed.toml").write_text("seed = -5\n")
    for split in ("training", "test"):  # one split of no samples, the other of 4
        folder = data / f"mnist-no-{split}"
        folder.mkdir()
        for prefix in ("train", "t10k"):
            empty = (prefix == "train") == (split == "training")
            count = 0 if empty else n
            (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
                gzip.compress(_idx((count, 28, 28), bytes(count * 28 * 28)))
            )
            (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(
                gzip.compress(_idx((count,), bytes(count)))
            )
    return data


# ----------------------------------------------------------------------------------------------
# output directories


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory) -> dict[str, Path]:
    """A finished tiny run of train (1 and 2 epochs), convert and compare, to copy from."""
    runs = tmp_path_factory.mktemp("finished-runs")
    made = {}
    for name, argv in [
        ("train-run", TRAIN),
        ("train-run-2-epochs", [*TRAIN, "--epochs", "2"]),
        ("convert-run", CONVERT),
        ("compare-run", COMPARE),
    ]:
        out = runs / name
        assert main([*argv, "--out", str(out)]) == 0, name
        made[name] = out
    return made


def _prepare_out(kind: str, tmp: Path, finished: Callable[[], dict[str, Path]], read_only) -> Path:
    """The output directory of a case:

    ``empty``: an existing empty directory; ``new``: no directory yet; ``is-a-file``: a file;
    ``read-only``: an existing read-only directory holding a file; ``read-only-parent``: a
    directory to create in a read-only one; ``busy``: a directory another run holds (its lock);
    ``foreign``: a directory of the user's own files; ``train-run``, ``convert-run``,
    ``compare-run``, ``train-run-2-epochs``: a copy of a finished run; ``train-run-corrupt`` /
    ``-truncated``: a finished train run whose checkpoint was then damaged.
    """
    out = tmp / "out"
    if kind == "empty":
        out.mkdir()
    elif kind == "new":
        pass
    elif kind == "is-a-file":
        out = tmp / "is-a-file"
        out.write_text("a file\n")
    elif kind in ("read-only", "read-only-parent"):
        ro = tmp / "read-only"
        ro.mkdir()
        (ro / "keep.txt").write_text("earlier results\n")
        read_only(ro)
        out = ro if kind == "read-only" else ro / "run"
    elif kind == "busy":
        out.mkdir()
    elif kind == "foreign":
        out.mkdir()
        (out / "notes.txt").write_text("the user's notes\n")
    elif kind.startswith("train-run-") and kind != "train-run-2-epochs":
        shutil.copytree(finished()["train-run"], out)
        checkpoint = out / "checkpoint.pt"
        whole = checkpoint.read_bytes()
        checkpoint.write_bytes(
            os.urandom(len(whole)) if kind.endswith("corrupt") else whole[: len(whole) // 2]
        )
    else:
        shutil.copytree(finished()[kind], out)
    return out


def _snapshot(path: Path) -> dict[str, str] | None:
    """sha256 of every file under ``path`` (hidden ones too); None when ``path`` is absent."""
    if not path.exists():
        return None
    if path.is_file():
        return {"": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else "dir"
        for p in sorted(path.rglob("*"))
    }


class TrainingStarted(Exception):
    """A bad input reached training: it should have been refused before."""


def _training_started(*_args, **_kwargs):
    raise TrainingStarted("training started: the bad input was not refused before it")


def _run(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse
        return exit_.code if isinstance(exit_.code, int) else 1


def test_the_table_covers_every_command_and_kind():
    assert len(CASES) >= 175
    assert len({c.id for c in CASES}) == len(CASES)
    commands = {c.command for c in CASES}
    assert commands == set(BASE)


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input_is_one_named_message_with_status_2_and_no_file_touched(
    case: Case, bad_files, request, tmp_path, capsys, read_only, monkeypatch
):
    out = _prepare_out(
        case.out, tmp_path, lambda: request.getfixturevalue("finished_runs"), read_only
    )
    args = [a.format(data=bad_files, out=out) for a in case.args]
    argv = [*BASE[case.command], *args] + ([] if case.command == "export" else ["--out", str(out)])
    holder = claim(out, "other", {}) if case.out == "busy" else None
    for module, name in TRAINING_FUNCTIONS:  # refused before any training, or the test fails
        monkeypatch.setattr(f"{module}.{name}", _training_started)
    capsys.readouterr()
    before = _snapshot(out)
    try:
        status = _run(argv)
    finally:
        after = _snapshot(out)
        if holder is not None:
            holder.release()
    captured = capsys.readouterr()
    err = captured.err
    assert status == 2, f"exit status {status}; stderr: {err[-2000:]}"
    assert "Traceback" not in err + captured.out
    lines = [line for line in err.splitlines() if line.strip()]
    message = lines[-1] if lines else ""
    assert re.search(r"(error|spikebridge \w+): ", message), err
    assert re.search(case.expect, message), f"{message!r} does not match {case.expect!r}"
    assert after == before, "the output directory was changed by a run that failed"


def test_debug_shows_the_traceback(tmp_path, bad_files, capsys, monkeypatch):
    argv = [*CONVERT, "--checkpoint", str(bad_files / "random.pt"), "--out", str(tmp_path / "o")]
    monkeypatch.setenv("SPIKEBRIDGE_DEBUG", "1")
    with pytest.raises(Exception):  # noqa: B017 - whichever error the bad file raises
        main(argv)
    monkeypatch.delenv("SPIKEBRIDGE_DEBUG")
    with pytest.raises(Exception):  # noqa: B017
        main([*argv, "--debug"])
    assert _run(argv) == 2


def test_unexpected_errors_keep_their_traceback(monkeypatch, tmp_path):
    """A bug is not turned into a one-line message: the traceback reaches the user."""
    import spikebridge.direct.experiment as training_experiment

    def broken(*_args, **_kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(training_experiment, "dataset_info", broken)
    with pytest.raises(KeyError):
        main([*TRAIN, "--out", str(tmp_path / "o")])


def test_every_number_setting_has_an_upper_bound_that_is_itself_accepted():
    """Each int or float setting (flags and config keys alike) takes its bound and refuses the
    next value up, by name; percentile and the fractions in [0, 1) (initial_potential,
    validation_fraction) have their own ranges."""
    from spikebridge.compare.config import Settings
    from spikebridge.settings import SettingsError, check_value, setting_fields

    checked = 0
    for name, f in setting_fields(Settings).items():
        kind = f.type.replace(" | None", "")
        if kind not in ("int", "float") or name == "percentile" or f.metadata.get("fraction"):
            continue
        maximum, below = f.metadata.get("maximum"), f.metadata.get("below")
        assert (maximum is None) != (below is None), f"{name} has no upper bound"
        if maximum is not None:
            assert check_value(f, maximum) == maximum
            over = maximum + 1 if kind == "int" else maximum * 1.5
        else:
            assert check_value(f, below * 0.99) == below * 0.99
            over = below
        with pytest.raises(SettingsError, match=rf"^{name} must be (at most|below) "):
            check_value(f, over)
        checked += 1
    assert checked >= 30


def test_a_last_training_batch_of_one_image_is_left_out_so_batch_norm_trains(tmp_path, capsys):
    """--train-limit 129 with --batch-size 128 once failed after training started ("Expected more
    than 1 value per channel"): the lone last image is left out of each epoch instead."""
    from spikebridge.data import make_loaders

    train, _ = make_loaders("digits", batch_size=128, train_limit=129, seed=0)
    sizes = [len(y) for _, y in train]
    assert sizes == [128]  # a different image is left out each epoch (reshuffled)
    train, _ = make_loaders("digits", batch_size=128, train_limit=130, seed=0)
    assert [len(y) for _, y in train] == [128, 2]  # nothing left out otherwise
    out = tmp_path / "out"
    argv = [*CONVERT, "--train-limit", "129", "--batch-size", "128", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert "ANN accuracy" in capsys.readouterr().out
