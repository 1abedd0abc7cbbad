"""``spikebridge convert``: train or load an ANN, convert it with one or more methods, evaluate."""

from __future__ import annotations

import argparse
import re

from ..compare.report import accuracy_pivot
from ..convert.experiment import run_conversion_experiment, write_conversion_outputs
from ..convert.methods import methods_help
from ..io import output_dir
from ..runtime import resolve_device
from ..settings import (
    ConversionSettings,
    ExperimentSettings,
    SimulationSettings,
    TrainingSettings,
)
from .common import add_quiet, add_settings, progress_enabled, settings_from

GROUPS = (ExperimentSettings, TrainingSettings, ConversionSettings, SimulationSettings)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert a trained CNN into a spiking network and evaluate it"
    )
    names = add_settings(
        p,
        *GROUPS,
        exclude=tuple(n for n in vars(TrainingSettings()) if n.startswith("direct_")),
        help_overrides={
            "methods": f"methods, comma-separated, or 'all': {methods_help()}",
            "epochs": "train the ANN first for N epochs (default 5; 0 with --checkpoint)",
        },
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="state dict (with --arch), .pt2 torch.export program, or pickled module",
    )
    p.add_argument(
        "--trust-checkpoint", action="store_true", help="allow loading a whole pickled module"
    )
    p.add_argument("--out", default="spikebridge-convert", help="output directory")
    add_quiet(p)
    p.set_defaults(run=run, settings=names)


def run(args: argparse.Namespace) -> int:
    names = args.settings
    experiment = settings_from(args, names, ExperimentSettings)
    epochs = {} if args.epochs is not None or not args.checkpoint else {"epochs": 0}
    training = settings_from(args, names, TrainingSettings, **epochs)
    conversion = settings_from(args, names, ConversionSettings)
    simulation = settings_from(args, names, SimulationSettings)
    device = resolve_device(experiment.device)
    output_dir(args.out)  # refuse a bad --out before any training
    done = run_conversion_experiment(
        experiment, training, conversion, simulation, checkpoint=args.checkpoint,
        trust_checkpoint=args.trust_checkpoint, device=device, progress=progress_enabled(args),
    )  # fmt: skip
    out = write_conversion_outputs(args.out, done, experiment, conversion, simulation)
    result = done.result
    if result.percentile is not None:
        choice = result.percentile
        tried = ", ".join(f"p={p:g}: {100 * a:.2f}%" for p, a in choice.accuracy.items())
        print(f"percentile auto ({choice.method}, T={choice.timesteps}, validation): {tried} -> "
              f"p={choice.percentile:g}")  # fmt: skip
    print(f"ANN accuracy: {100 * result.ann_accuracy:.2f}%")
    print("SNN accuracy (%) after T steps:")
    pivot = accuracy_pivot(result.accuracy)
    print(pivot.round(2).to_string(index=False) if len(pivot) else "(no method ran)")
    per_target = {k: v for k, v in result.conversion_seconds.items() if re.search(r"-T\d+$", k)}
    if per_target:
        print("calibration time: " + ", ".join(f"{k} {v:.1f} s" for k, v in per_target.items()))
    for method, why in result.skipped.items():
        print(f"skipped {method}: {why}")
    print(f"results in {out}/")
    return 0
