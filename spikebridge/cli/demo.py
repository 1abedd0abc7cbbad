"""``spikebridge demo``: both routes compared on the offline digits data in a few minutes.

Trains the small CNN, converts it with every applicable method, trains the same architecture
directly with STBP-tdBN, and writes the comparison's tables, plots and report (see
``spikebridge compare``) to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..compare import DEMO_SETTINGS, run
from ..runtime import DEVICES, resolve_device
from .compare import print_summary


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="compare conversion and direct training on the embedded digits data (< 3 min)"
    )
    p.add_argument(
        "--out", default="spikebridge-demo", help="output directory (default ./spikebridge-demo)"
    )
    p.add_argument(
        "--device", default="auto", choices=DEVICES,
        help="where the networks train and run: auto (cuda when available), cpu or cuda "
        "(default auto)",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true", help="replace another experiment's results in --out"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or stage messages")
    p.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    resolve_device(args.device)  # a clear error for --device cuda without a GPU
    print(
        "spikebridge demo: small CNN on scikit-learn's 8x8 digits, converted with every method and "
        "trained directly (STBP-tdBN)"
    )

    def log(message: str) -> None:
        print(f"[demo] {message}", file=sys.stderr, flush=True)

    result = run(
        **DEMO_SETTINGS, out=args.out, device=args.device, overwrite=args.overwrite,
        progress=not args.quiet and sys.stderr.isatty(), log=None if args.quiet else log,
    )  # fmt: skip
    print_summary(result, DEMO_SETTINGS["timesteps"])
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0
