"""``spikebridge compare``: both routes on one dataset; tables, plots and an HTML report in DIR.

Settings come from ``--config FILE`` (TOML or a comparison's own record; :mod:`.config`) and the
flags; a flag given on the command line wins over the file. ``--epochs`` sets the ANN's and the
direct SNN's epochs, ``--ann-epochs`` / ``--direct-epochs`` one each; ``--lr`` is refused (two
optimisers): ``--ann-lr`` / ``--direct-lr``.
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from ..compare.config import ConfigError, Settings
from ..compare.pipeline import run_settings
from ..compare.report import accuracy_pivot, summary_frame
from ..convert.methods import methods_help
from ..model_files import refuse_architecture_for_graph
from ..settings import TrainingSettings
from ..tables import terminal_table
from .common import add_settings, add_workers
from .config import add_config, finish, resolve
from .flags import add_generic, add_refused, given
from .outdir import add_output_flags

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
    add_config(p)
    add_output_flags(p, DEFAULT_OUT, overwrite_help="replace another experiment's results in DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bars or stage messages")
    add_workers(p)
    names = add_settings(
        p, Settings, help_overrides={
            "methods": f"conversion methods: 'all' (every applicable one) or comma-separated: "
            f"{methods_help()}",
            "epochs": "training epochs of the ANN (default: --epochs, else 5; unused with "
            "--checkpoint)",
        },
    )  # fmt: skip
    add_generic(
        p, TrainingSettings, "epochs", ("epochs", "direct_epochs"), aliases=("--train-epochs",),
        text="training epochs of every network this command trains: the ANN and the direct SNN, "
        "each unless --ann-epochs / --direct-epochs is given (default 5)",
    )  # fmt: skip
    add_refused(p, "--lr", LR_REFUSAL)
    p.set_defaults(run=run, settings=names)
    finish(p)


LR_REFUSAL = (
    "compare trains two networks with two optimisers: give --ann-lr (the ANN's, Adam) and/or "
    "--direct-lr (the direct SNN's)"
)


def settings_from_args(args: argparse.Namespace) -> tuple[Settings, str, bool]:
    """(settings, output directory, overwrite) from the config file and the flags."""
    resolve(args, {"workers": 0})
    values = given(args, args.settings)
    if "direct_epochs" not in values:  # --ann-epochs alone leaves the direct SNN's default
        values["direct_epochs"] = TrainingSettings().epochs
    refuse_architecture_for_graph(values.get("checkpoint"), list(given(args, args.settings)))
    try:
        settings = Settings(**values)
    except ConfigError as err:
        raise ConfigError(
            f"{err} (from {'--config ' + args.config + ' or ' if args.config else ''}the flags)"
        ) from None
    return settings, args.out, bool(args.overwrite)


def run(args: argparse.Namespace) -> int:
    settings, out, overwrite = settings_from_args(args)
    main_process = int(os.environ.get("RANK", "0")) == 0
    verbose = not args.quiet and main_process
    progress = verbose and sys.stderr.isatty()

    def log(message: str) -> None:
        print(f"[compare] {message}", file=sys.stderr, flush=True)

    result = run_settings(
        settings, out, progress=progress, overwrite=overwrite, log=log if verbose else None,
        workers=args.workers,
    )  # fmt: skip
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
