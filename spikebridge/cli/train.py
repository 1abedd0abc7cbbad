"""``spikebridge train``: train a spiking network directly, by one of two routes.

``--route direct`` (default): STBP with tdBN (Wu et al. 2018; Zheng et al. 2021).
``--route stdp``: the unsupervised spiking CNN of Tavanaei & Maida 2017 (auto-encoder kernels,
probabilistic STDP, then a linear readout; docs/stdp.md), with the ``--stdp-*`` settings; its
``history.csv`` has one row per training phase and its checkpoint is written after each phase.

Writes to ``--out``: ``checkpoint.pt`` (after every epoch; ``--resume`` continues from it),
``history.csv`` (epoch, loss, train_accuracy, test_accuracy, seconds),
``accuracy_vs_timesteps.csv`` (route, method, timesteps, accuracy: the test accuracy read out
after every step t <= T of one simulation, T = ``--timesteps``, by default the training T
``--direct-timesteps``) and ``summary.json`` (``timesteps``: the training T,
``simulated_timesteps``: T). ``--epochs`` and ``--lr`` are the SNN's (``--direct-epochs``,
``--direct-lr``); ``--config FILE`` reads a TOML file or a train run's ``run.json``. Every file is written atomically.
Launch under ``torchrun --nproc_per_node N`` for data-parallel training.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..direct.checkpoint import CheckpointError
from ..direct.experiment import CHECKPOINT_NAME, run_training_experiment, training_settings
from ..direct.trainer import TrainingDiverged
from ..settings import ExperimentSettings, SimulationSettings, StdpSettings, TrainingSettings
from ..stdp import StdpDivergenceError, UnsupportedArchitectureError
from ..stdp.checkpoint import StdpCheckpointError
from ..stdp.run import stdp_run_settings
from .common import MAX_WORKERS, add_quiet, add_settings, add_workers, settings_from
from .config import add_config, finish, resolve
from .flags import add_generic
from .outdir import add_output_flags

__all__ = ["MAX_WORKERS", "add_parser", "run"]

LEGACY_ALIASES = (
    "optimizer", "momentum", "weight_decay", "schedule", "threshold", "tau_decay", "surrogate",
    "surrogate_width",
)  # fmt: skip
"""Direct settings that train also takes without ``direct_`` (each has one meaning here)."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a spiking network directly (STBP-tdBN, or unsupervised STDP)"
    )
    add_config(p)
    p.add_argument(
        "--route",
        default=None,
        choices=("direct", "stdp"),
        help="direct: STBP-tdBN with surrogate gradients; stdp: unsupervised spiking CNN "
        "(Tavanaei & Maida 2017), --stdp-* settings (default direct)",
    )
    names = add_settings(
        p, ExperimentSettings, exclude=("activation", "alpha", "levels"),
        help_overrides={"dataset": "digits (offline default), mnist, fashion-mnist, cifar10, "
                        "nmnist (events)"},
    )  # fmt: skip
    direct = tuple(n for n in vars(TrainingSettings()) if n.startswith("direct_"))
    names += add_settings(
        p, TrainingSettings, only=direct,
        aliases={f"direct_{n}": ("--" + n.replace("_", "-"),) for n in LEGACY_ALIASES},
        help_overrides={"direct_epochs": "training epochs of the SNN (default 5)"},
    )  # fmt: skip
    add_generic(
        p, TrainingSettings, "direct_epochs", ("direct_epochs",), aliases=("--train-epochs",),
        name="epochs", text="training epochs of every network this command trains: here the "
        "SNN (= --direct-epochs)",
    )  # fmt: skip
    add_generic(
        p, TrainingSettings, "direct_lr", ("direct_lr",), name="lr",
        text="learning rate of the SNN (= --direct-lr)",
    )  # fmt: skip
    names += add_settings(p, StdpSettings)
    names += add_settings(
        p, SimulationSettings, exclude=("encoding",),
        help_overrides={"timesteps": "simulate the trained SNN for T steps: accuracy_vs_timesteps"
                        ".csv has every t <= T, energy.csv counts T (default: --direct-timesteps, "
                        "the training T; direct route)"},
    )  # fmt: skip
    add_workers(p)
    add_output_flags(
        p,
        "spikebridge-train",
        resume_help=f"continue from DIR/{CHECKPOINT_NAME} (the same settings; --epochs may grow)",
    )
    add_quiet(p)
    p.set_defaults(run=run, settings=names)
    finish(p)


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


def settings_from_args(args: argparse.Namespace) -> dict:
    """train's settings from ``--config`` and the flags (:func:`.config.resolve`):
    ``experiment``, ``training``, ``simulation`` (its ``timesteps``: the simulated T, default the
    training T), ``stdp`` and ``record``, what ``run.json`` records."""
    resolve(args, {"workers": 0, "route": "direct"})
    e = settings_from(args, args.settings, ExperimentSettings)
    s = settings_from(args, args.settings, StdpSettings)
    if args.route == "stdp":
        if args.timesteps is not None:
            raise ValueError(
                "--timesteps is the direct route's simulated T; the STDP network is simulated "
                "for --stdp-timesteps: give that instead"
            )
        sim = settings_from(args, args.settings, SimulationSettings)
        return dict(experiment=e, stdp=s, simulation=sim, record=stdp_run_settings(e, s))
    t = settings_from(args, args.settings, TrainingSettings)
    simulated = args.timesteps if args.timesteps is not None else t.direct_timesteps
    sim = settings_from(args, args.settings, SimulationSettings, timesteps=simulated)
    record = training_settings(e, t, simulated)
    return dict(experiment=e, training=t, simulation=sim, stdp=s, record=record)


def run(args: argparse.Namespace) -> int:
    chosen = settings_from_args(args)
    if args.route == "stdp":
        return run_stdp(args)
    e, t, sim = chosen["experiment"], chosen["training"], chosen["simulation"]
    simulated = sim.timesteps
    epochs = t.direct_epoch_count()
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
            timesteps=simulated,
        )  # fmt: skip
    except (CheckpointError, TrainingDiverged) as err:
        print(f"spikebridge train: error: {err}", file=sys.stderr)
        return 2
    if not is_main:
        return 0
    accuracy = result.evaluation.accuracy.tolist() if result.evaluation is not None else []
    final = _pct(accuracy[-1]) if accuracy else "–"
    print(f"test accuracy at T={simulated}: {final}; results in {args.out}")
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
