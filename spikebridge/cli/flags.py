"""Command-line flags generated from the settings dataclasses (:mod:`spikebridge.settings`)."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from typing import Any

from ..settings import SettingsError, check_value, scalar_type


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _number_or_auto(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number in (0, 100] or 'auto', got {text!r}"
        ) from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"percentile must be in (0, 100], got {text}")
    return value


def _checked_number(f):
    """A float flag checked as its setting is (finite, positive, ...) when parsed, so argparse
    names the flag in the error and nothing runs with a bad value."""

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        try:
            return check_value(f, value)
        except SettingsError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    return number


def flag_type(f):
    """The argparse ``type`` of a field's flag (None for a boolean switch)."""
    kind = scalar_type(f)
    if kind is bool:
        return None
    if f.name == "percentile":
        return _number_or_auto
    if kind is int:
        if f.metadata.get("positive"):
            return _positive_int
        return _non_negative_int if f.metadata.get("non_negative") else int
    if kind is float:
        return _checked_number(f)
    return kind


def flag_name(name: str, prefix: str = "") -> str:
    """``direct_lr`` -> ``--lr`` under prefix ``direct_``; ``data_root`` -> ``--data-root``."""
    return "--" + name[len(prefix) :].replace("_", "-")


def add_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    prefix: str = "",
    exclude: tuple[str, ...] = (),
    help_overrides: dict[str, str] | None = None,
) -> list[str]:
    """Add a flag for every setting of ``cls`` (those starting with ``prefix``, which the flag
    drops) and return the settings' names. Every flag defaults to None ("not given"), so the
    dataclass default, a config file or a command's own rule decides."""
    names = []
    for f in fields(cls):
        if not f.name.startswith(prefix) or f.name in exclude or not f.metadata.get("flag", True):
            continue
        text = (help_overrides or {}).get(f.name, f.metadata.get("help", f.name))
        kind = flag_type(f)
        has_default = f.default is not None and f.default is not MISSING and kind is not None
        if has_default and "(default" not in text:  # a help text naming its own default
            text += f" (default {f.default})"
        option_strings = [flag_name(f.name, prefix), *f.metadata.get("aliases", ())]
        if kind is None:
            parser.add_argument(*option_strings, dest=f.name, default=None, help=text,
                                action=argparse.BooleanOptionalAction)  # fmt: skip
        elif kind is list:  # a repeatable flag, one item each
            parser.add_argument(*option_strings, dest=f.name, default=None, help=text,
                                action="append", metavar="SPEC")  # fmt: skip
        else:
            choices = f.metadata.get("choices")
            metavar = None if choices else option_strings[0][2:].upper().replace("-", "_")
            parser.add_argument(*option_strings, dest=f.name, type=kind, default=None,
                                choices=choices, metavar=metavar, help=text)  # fmt: skip
        names.append(f.name)
    return names


def given(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The settings among ``names`` given on the command line (not None)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
