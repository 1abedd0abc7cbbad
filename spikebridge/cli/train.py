"""``spikebridge train``: train a spiking network directly, by one of two routes.

``--route direct`` (default): STBP with tdBN (Wu et al. 2018; Zheng et al. 2021).
``--route stdp``: the unsupervised spiking CNN of Tavanaei & Maida 2017 (auto-encoder kernels,
probabilistic STDP, then a linear readout; docs/stdp.md), with the ``--stdp-*`` settings; its
``history.csv`` has one row per training phase and its checkpoint is written after each phase.

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
from ..settings import ExperimentSettings, SimulationSettings, StdpSettings, TrainingSettings
from ..stdp import StdpDivergenceError, UnsupportedArchitectureError
from ..stdp.checkpoint import StdpCheckpointError
from .common import add_quiet, add_settings, settings_from
from .flags import bounded_int
from .outdir import add_output_flags

MAX_WORKERS = 256


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a spiking network directly (STBP-tdBN, or unsupervised STDP)"
    )
    p.add_argument(
        "--route",
        default="direct",
        choices=("direct", "stdp"),
        help="direct: STBP-tdBN with surrogate gradients; stdp: unsupervised spiking CNN "
        "(Tavanaei & Maida 2017), --stdp-* settings (default direct)",
    )
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
    names += add_settings(p, StdpSettings)
    names += add_settings(p, SimulationSettings, exclude=("timesteps", "encoding"))  # energy
    p.add_argument(
        "--workers", type=bounded_int(0, MAX_WORKERS), default=0,
        help=f"data loader worker processes (at most {MAX_WORKERS})",
    )  # fmt: skip
    add_output_flags(
        p,
        "spikebridge-train",
        resume_help=f"continue from DIR/{CHECKPOINT_NAME} (the same settings; --epochs may grow)",
    )
    add_quiet(p)
    p.set_defaults(run=run, settings=names)


def run_stdp(args: argparse.Namespace) -> int:
    from ..stdp.run import run_training_experiment as run_stdp_experiment

    e = settings_from(args, args.settings, ExperimentSettings)
    s = settings_from(args, args.settings, StdpSettings)
    sim = settings_from(args, args.settings, SimulationSettings)
    try:
        _, summary = run_stdp_experiment(
            e, s, args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet,
            log=lambda line: print(line, flush=True), energy=sim,
        )  # fmt: skip
    except (
        StdpCheckpointError,
        StdpDivergenceError,
        UnsupportedArchitectureError,
        ValueError,
    ) as err:
        print(f"spikebridge train: error: {err}", file=sys.stderr)
        return 2
    print(f"test accuracy at T={s.stdp_timesteps}: {_pct(summary['test_accuracy'])}; "
          f"results in {args.out}")  # fmt: skip
    return 0


def run(args: argparse.Namespace) -> int:
    if args.route == "stdp":
        return run_stdp(args)
    e = settings_from(args, args.settings, ExperimentSettings)
    t = settings_from(args, args.settings, TrainingSettings)
    sim = settings_from(args, args.settings, SimulationSettings)
    epochs, timesteps = t.direct_epoch_count(), t.direct_timesteps
    is_main = int(os.environ.get("RANK", "0")) == 0

    def report(record: dict) -> None:
        if is_main:
            print(
                f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}  train "
                f"{_pct(record['train_accuracy'])}  validation "
                f"{_pct(record.get('validation_accuracy', float('nan')))}  test "
                f"{_pct(record['test_accuracy'])}  ({record['seconds']:.1f} s)",
                flush=True,
            )

    try:
        result = run_training_experiment(
            e, t, args.out, resume=args.resume, overwrite=args.overwrite, workers=args.workers,
            progress=not args.quiet, on_epoch=report, write=is_main, energy=sim,
        )  # fmt: skip
    except (CheckpointError, TrainingDiverged) as err:
        print(f"spikebridge train: error: {err}", file=sys.stderr)
        return 2
    if not is_main:
        return 0
    accuracy = result.evaluation.accuracy.tolist() if result.evaluation is not None else []
    final = _pct(accuracy[-1]) if accuracy else "–"
    print(f"test accuracy at T={timesteps}: {final}; results in {args.out}")
    if accuracy and result.history:
        from ..data import dataset_info
        from ..health import weak_network_message

        message = weak_network_message(
            "the directly trained SNN", accuracy[-1], dataset_info(e.dataset).num_classes,
            result.history[-1]["train_accuracy"],
        )  # fmt: skip
        if message:
            print(f"warning: {message}")
    return 0


def _pct(value: float) -> str:
    """A fraction as a percentage, a dash when missing."""
    return "–" if value is None or value != value else f"{100 * value:.2f}%"
