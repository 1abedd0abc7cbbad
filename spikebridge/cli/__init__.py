"""The ``spikebridge`` command: a thin layer over the library (parse, call, print)."""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("convert", "train", "compare", "demo", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spikebridge",
        description="Convert CNNs to spiking networks, train SNNs directly (STBP-tdBN), and compare both routes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:  # a subcommand whose module is not installed
            if err.name and err.name.startswith(__name__):
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (
        ValueError,
        FileNotFoundError,
        NotADirectoryError,
        FileExistsError,
        RuntimeError,
    ) as err:
        print(f"spikebridge {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
