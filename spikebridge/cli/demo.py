"""``spikebridge demo``: the whole toolkit on the offline digits data in a few minutes."""

from __future__ import annotations

import argparse
import time

from ..convert.experiment import run_conversion
from ..io import output_dir
from .common import resolve_device
from .convert import prepare_ann, print_table, write_outputs


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="train a small CNN on the embedded digits data, convert it with every method")
    p.add_argument("--out", default="spikebridge-demo", help="output directory (default ./spikebridge-demo)")
    p.add_argument("--timesteps", type=int, default=64)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=run)


def demo_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """The convert settings the demo uses: digits, the small CNN, 15 epochs, every method."""
    return argparse.Namespace(
        dataset="digits", data_root=None, download=False, batch_size=64, limit=None, seed=0,
        device=args.device, quiet=args.quiet, arch="cnn", width=1.0, checkpoint=None,
        trust_checkpoint=False, train_epochs=15, lr=2e-3, activation="relu", alpha=0.1, levels=4,
        pool="avg", method="all", percentile=99.9, timesteps=args.timesteps, encoding="analog",
        reset="subtract", maxpool="spiking", calibration_samples=1000, out=args.out,
    )


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    settings = demo_arguments(args)
    device = resolve_device(settings.device)
    out = output_dir(settings.out)
    print("spikebridge demo: small CNN on scikit-learn's 8x8 digits, converted with every method")
    _, model, _, test_loader, calib, history = prepare_ann(settings, device)
    result = run_conversion(
        model, calib, test_loader, settings.method, settings.timesteps, settings.reset,
        settings.encoding, settings.percentile, settings.maxpool, device, settings.seed,
        not settings.quiet,
    )
    write_outputs(settings, out, result, history, time.perf_counter() - start)
    print_table(result)
    print(f"results in {out}/ ({time.perf_counter() - start:.0f} s)")
    return 0
