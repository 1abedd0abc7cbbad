"""``spikebridge train``: train a direct SNN with STBP-tdBN (Wu et al. 2018; Zheng et al. 2021).

Writes to ``--out``: ``checkpoint.pt`` (after every epoch; ``--resume`` continues from it),
``history.csv`` (epoch, loss, train_accuracy, test_accuracy, seconds),
``accuracy_vs_timesteps.csv`` (route, method, timesteps, accuracy: the test accuracy read out
after every step t <= T of one simulation) and ``summary.json``. Every file is written atomically.
Launch under ``torchrun --nproc_per_node N`` for data-parallel training.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..direct.checkpoint import CheckpointError
from ..direct.experiment import CHECKPOINT_NAME, run_training_experiment
from ..direct.trainer import TrainingDiverged
from ..settings import ExperimentSettings, TrainingSettings
from .common import add_quiet, add_settings, settings_from


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a spiking network directly (STBP with tdBN)")
    names = add_settings(
        p, ExperimentSettings, exclude=("activation", "alpha", "levels"),
        help_overrides={"dataset": "digits (offline default), mnist, fashion-mnist, cifar10, "
                        "nmnist (events)"},
    )  # fmt: skip
    names += add_settings(
        p, TrainingSettings, prefix="direct_",
        help_overrides={"direct_epochs": "training epochs (default 5, as many as an ANN's)",
                        "direct_timesteps": "simulation steps T per sample"},
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--resume", action="store_true", help=f"continue from --out/{CHECKPOINT_NAME}")
    p.add_argument("--out", default="spikebridge-train", help="output directory")
    add_quiet(p)
    p.set_defaults(run=run, settings=names)


def run(args: argparse.Namespace) -> int:
    e = settings_from(args, args.settings, ExperimentSettings)
    t = settings_from(args, args.settings, TrainingSettings)
    epochs, timesteps = t.direct_epoch_count(), t.direct_timesteps
    is_main = int(os.environ.get("RANK", "0")) == 0

    def report(record: dict) -> None:
        if is_main:
            print(
                f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}  train "
                f"{record['train_accuracy']:.4f}  test {record['test_accuracy']:.4f}  "
                f"({record['seconds']:.1f} s)",
                flush=True,
            )

    try:
        result = run_training_experiment(
            e, t, args.out, resume=args.resume, workers=args.workers,
            progress=not args.quiet, on_epoch=report, write=is_main,
        )  # fmt: skip
    except (CheckpointError, TrainingDiverged) as err:
        print(f"spikebridge train: error: {err}", file=sys.stderr)
        return 2
    if not is_main:
        return 0
    accuracy = result.evaluation.accuracy.tolist() if result.evaluation is not None else []
    final = f"{accuracy[-1]:.4f}" if accuracy else "n/a"
    print(f"test accuracy at T={timesteps}: {final}; results in {args.out}")
    return 0
