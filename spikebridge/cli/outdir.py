"""The ``--out``, ``--overwrite`` and ``--resume`` flags and taking the output directory for a
subcommand (see :mod:`spikebridge.rundir`)."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from typing import Any

from ..rundir import RunDirectory, claim


def add_output_flags(
    parser: argparse.ArgumentParser,
    default: str | None,
    *,
    resume_help: str | None = None,
    overwrite_help: str = "replace another command's or another experiment's results in DIR",
) -> None:
    """``--out DIR`` and ``--overwrite`` (and ``--resume`` when ``resume_help`` is given).
    ``--out`` stays None until :func:`spikebridge.cli.config.resolve` gives it the config
    file's ``out`` or ``default``."""
    shown = f" (default {default})" if default else ""
    parser.add_argument("--out", default=None, metavar="DIR", help=f"output directory{shown}")
    parser.set_defaults(out_default=default)
    parser.add_argument("--overwrite", action="store_true", help=overwrite_help)
    if resume_help is not None:
        parser.add_argument("--resume", action="store_true", help=resume_help)


def take_output(
    args: argparse.Namespace,
    command: str,
    settings: Mapping[str, Any],
    *,
    rerun: bool = True,
    may_grow: Iterable[str] = ("epochs",),
) -> RunDirectory:
    """Claim ``args.out`` for this run (lock, ownership, writability) before any compute."""
    return claim(
        args.out,
        command,
        settings,
        overwrite=bool(getattr(args, "overwrite", False)),
        resume=bool(getattr(args, "resume", False)),
        rerun=rerun,
        may_grow=may_grow,
    )
