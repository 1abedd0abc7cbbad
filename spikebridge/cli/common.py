"""Helpers shared by the subcommands: flags generated from the settings dataclasses."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..settings import build
from .flags import add_flags, bounded_int, given

MAX_WORKERS = 256
"""The most data loader worker processes ``--workers`` takes."""


def add_settings(parser: argparse.ArgumentParser, *groups: type, **options: Any) -> list[str]:
    """Flags for every field of the settings ``groups`` (see :func:`spikebridge.settings.add_flags`);
    returns the settings' names, for :func:`settings_from`."""
    names: list[str] = []
    for cls in groups:
        names += add_flags(parser, cls, **options)
    return names


def settings_from(args: argparse.Namespace, names: list[str], cls: type, **values: Any):
    """An instance of settings class ``cls`` from the flags given (and ``values``, which win)."""
    return build(cls, {**given(args, names), **values})


def add_quiet(parser: argparse.ArgumentParser, text: str = "no progress bars") -> None:
    parser.add_argument("--quiet", action="store_true", help=text)


def progress_enabled(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def add_workers(parser: argparse.ArgumentParser) -> None:
    """``--workers N``: data loader worker processes (None until resolved; 0 by default)."""
    parser.add_argument(
        "--workers", type=bounded_int(0, MAX_WORKERS), default=None, metavar="N",
        help=f"data loader worker processes (default 0: load in the main process; at most "
        f"{MAX_WORKERS}); the results do not depend on it",
    )  # fmt: skip
