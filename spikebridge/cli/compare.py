"""``spikebridge compare``: both routes on one dataset; tables, plots and an HTML report in DIR.

Settings come from ``--config FILE`` (TOML, the same keys as the flags with ``_`` or ``-``) and
the flags; a flag given on the command line wins over the file.
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from ..compare.config import ConfigError, Settings, load_config
from ..compare.pipeline import run_settings
from ..compare.report import accuracy_pivot, summary_frame
from ..convert.methods import methods_help
from ..model_files import refuse_architecture_for_graph
from ..tables import terminal_table
from .common import add_settings
from .flags import given

DEFAULT_OUT = "spikebridge-compare"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare conversion methods, a directly trained SNN and an unsupervised STDP "
        "network: tables, plots, report",
        description=(
            "Train (or reuse) an ANN, convert it with each method, train (or reuse) the direct SNN of the "
            "same architecture and the unsupervised STDP network (Tavanaei & Maida 2017; cnn only), "
            "simulate all of them for T steps, and write accuracy_vs_timesteps.csv, energy.csv, "
            "layers.csv, plots (PNG, SVG) and report.html into --out; with --noise also "
            "robustness.csv and accuracy_vs_noise.png, every network on the same noisy images."
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
    names = add_settings(
        p, Settings, help_overrides={"methods": f"conversion methods: 'all' (every applicable "
                                     f"one) or comma-separated: {methods_help()}"}
    )  # fmt: skip
    p.set_defaults(run=run, settings=names)


def settings_from_args(args: argparse.Namespace) -> tuple[Settings, str, bool]:
    """(settings, output directory, overwrite) from the config file and the flags."""
    values: dict = {}
    out = None
    overwrite = False
    if args.config:
        values = load_config(args.config)
        out = values.pop("out", None)
        overwrite = bool(values.pop("overwrite", False))
    values.update(given(args, args.settings))
    refuse_architecture_for_graph(values.get("checkpoint"), list(values))
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
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        weak = result.flags.get(("ann", result.energy["method"].iloc[0], None))
        print(
            f"ANN accuracy: {100 * result.ann_accuracy:.2f}%"
            + (f"  (WEAK: {weak})" if weak else "")
        )
        print("\nAccuracy (%) after T steps:")
        pivot = accuracy_pivot(result.accuracy)
        print(terminal_table(pivot) if len(pivot) else "(no spiking network ran)")
        print(f"\nPer inference, each network at its T (T = {timesteps}, or its own target T):")
        summary = summary_frame(result.energy, result.flags)
        cols = [
            "network",
            "T",
            "accuracy (%)",
            "MACs (M)",
            "SOPs (M)",
            "energy (µJ)",
            "energy / ANN",
            "firing rate (%)",
        ]
        cols += ["warning"] if "warning" in summary.columns else []
        print(terminal_table(summary[cols]))
    for note in result.notes:
        print(note if note.startswith("warning: ") else f"note: {note}")
    print(f"\nresults in {result.out}/: " + ", ".join(p.name for p in result.files))
