"""``spikebridge compare``: both routes on one dataset; tables, plots and an HTML report in DIR.

Settings come from ``--config FILE`` (TOML, the same keys as the flags with ``_`` or ``-``) and
the flags; a flag given on the command line wins over the file.
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from ..compare.config import KEYS, ConfigError, Settings, defaults, load_config, setting_type
from ..compare.report import accuracy_pivot, summary_frame
from ..compare.runner import run_settings
from ..models import MODEL_NAMES
from .common import positive_int

DEFAULT_OUT = "spikebridge-compare"
_HELP = {
    "arch": f"architecture: {', '.join(MODEL_NAMES)} or torchvision:NAME (conversion only)",
    "dataset": "digits (offline default), mnist, fashion-mnist, cifar10",
    "data_root": "folder holding the dataset files (or torchvision's root)",
    "download": "let torchvision download a missing dataset",
    "methods": "conversion methods: 'all' or comma-separated among model, max, percentile, channel, spike-norm, qcfs",
    "timesteps": "simulate T steps; accuracy is reported after every t <= T",
    "epochs": "ANN training epochs",
    "direct_epochs": "direct SNN training epochs (default: --epochs; 0 skips the direct route)",
    "direct_timesteps": "timesteps per sample when training the direct SNN",
    "width": "channel width multiplier (both routes)",
    "activation": "ANN activation: relu, leaky-relu (signed neurons) or qcfs (Bu 2022)",
    "pool": "pooling of the architecture: avg or max",
    "batch_size": "batch size for training and simulation",
    "limit": "use only the first N test images",
    "train_limit": "train on a fixed random subset of N images",
    "calibration_samples": "training images for the conversion's calibration pass",
    "lr": "ANN learning rate (Adam)",
    "direct_lr": "direct SNN learning rate",
    "direct_optimizer": "direct SNN optimizer: sgd or adam",
    "seed": "random seed (weights, data order, calibration subset)",
    "device": "auto, cpu or cuda",
    "e_mac": "energy per multiply-accumulate, pJ (Horowitz 2014: 4.6)",
    "e_ac": "energy per accumulate / synaptic operation, pJ (Horowitz 2014: 0.9)",
    "reset": "IF reset of converted networks: subtract or zero",
    "encoding": "input encoding for both routes: analog or poisson",
    "percentile": "percentile p of the percentile and channel methods",
    "initial_potential": "initial membrane potential as a fraction of threshold (default: 0.5 for qcfs, else 0)",
    "negative_spikes": "signed IF neurons that take back excess spikes (Wang 2022, Hu 2023; default: on for qcfs, off otherwise)",
    "maxpool": "max-pooling in converted networks: spiking (gate) or avg",
}


def _argument_type(name: str):
    """argparse type of a setting's flag (None: a store_true flag)."""
    kind = setting_type(name)
    if kind is bool:
        return None
    if kind is int:
        return int if name in ("seed", "direct_epochs") else positive_int
    return kind


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare conversion methods with a directly trained SNN: tables, plots, report",
        description=(
            "Train (or reuse) an ANN, convert it with each method, train (or reuse) the direct SNN of the "
            "same architecture, simulate all of them for T steps, and write accuracy_vs_timesteps.csv, "
            "energy.csv, layers.csv, plots (PNG, SVG) and report.html into --out."
        ),
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="TOML file with the settings (flags override it)",
    )
    p.add_argument(
        "--out", default=None, metavar="DIR", help=f"output directory (default {DEFAULT_OUT})"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="replace another experiment's results in DIR",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or stage messages")
    for name in KEYS:
        flag = "--" + name.replace("_", "-")
        kind = _argument_type(name)
        text = _HELP.get(name, name)
        default = defaults()[name]
        if default is not None and kind is not None:
            text += f" (default {default})"
        if kind is None:
            action = argparse.BooleanOptionalAction
            p.add_argument(flag, dest=name, action=action, default=None, help=text)
        else:
            p.add_argument(flag, dest=name, type=kind, default=None, help=text)
    p.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> tuple[Settings, str, bool]:
    """(settings, output directory, overwrite) from the config file and the flags."""
    values: dict = {}
    out = None
    overwrite = False
    if args.config:
        values = load_config(args.config)
        out = values.pop("out", None)
        overwrite = bool(values.pop("overwrite", False))
    for name in KEYS:
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    if args.out is not None:
        out = args.out
    if args.overwrite:
        overwrite = True
    try:
        settings = Settings(**values)
    except ConfigError as err:
        raise ConfigError(
            f"{err} (from {'--config ' + args.config + ' or ' if args.config else ''}the flags)"
        ) from None
    return settings, out or DEFAULT_OUT, overwrite


def run(args: argparse.Namespace) -> int:
    settings, out, overwrite = settings_from_args(args)
    main_process = int(os.environ.get("RANK", "0")) == 0
    verbose = not args.quiet and main_process
    progress = verbose and sys.stderr.isatty()

    def log(message: str) -> None:
        print(f"[compare] {message}", file=sys.stderr, flush=True)

    result = run_settings(
        settings, out, progress=progress, overwrite=overwrite, log=log if verbose else None
    )
    if main_process:
        print_summary(result, settings.timesteps)
    return 0


def print_summary(result, timesteps: int) -> None:
    """Print the accuracy at T = 1, 2, 4, ..., the per-inference costs, the notes and the files."""
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3g}".format
    ):
        print(f"ANN accuracy: {100 * result.ann_accuracy:.2f}%")
        print("\nAccuracy (%) after T steps:")
        pivot = accuracy_pivot(result.accuracy)
        print(pivot.to_string(index=False) if len(pivot) else "(no spiking network ran)")
        print(f"\nPer inference at T = {timesteps}:")
        summary = summary_frame(result.energy)
        cols = [
            "network",
            "accuracy (%)",
            "MACs (M)",
            "SOPs (M)",
            "energy (µJ)",
            "energy / ANN",
            "firing rate (%)",
        ]
        print(summary[cols].to_string(index=False))
    for note in result.notes:
        print(f"note: {note}")
    print(f"\nresults in {result.out}/: " + ", ".join(p.name for p in result.files))
