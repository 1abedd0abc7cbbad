"""Command-line flags generated from the settings dataclasses (:mod:`spikebridge.settings`)."""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, fields
from typing import Any

from ..settings import (
    SettingsError,
    bound_text,
    check_percentile,
    check_value,
    scalar_type,
    shown,
)


def _int_description(f) -> str:
    """What an integer flag takes, e.g. ``"a positive integer <= 100000"``."""
    meta = f.metadata
    if meta.get("positive"):
        what = "a positive integer"
    elif meta.get("non_negative"):
        what = "an integer >= 0"
        if bound_text(f):
            what += " and"
    else:
        what = "an integer"
    bound = bound_text(f)
    if bound:
        what += " " + bound.replace("at most ", "<= ").replace("below ", "< ")
    return what


def _checked_int(f):
    """An integer flag checked as its setting is (sign, upper bound) when parsed, so argparse
    names the flag in the error and nothing runs with a bad value."""

    def number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # also a number in another notation (1e3) or past Python's digits
            raise argparse.ArgumentTypeError(
                f"expected {_int_description(f)}, got {shown(text)}"
            ) from None
        try:
            return check_value(f, value)
        except SettingsError:
            raise argparse.ArgumentTypeError(
                f"expected {_int_description(f)}, got {shown(value)}"
            ) from None

    return number


def _number_or_auto(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number in (0, 100] or 'auto', got {text!r}"
        ) from None
    try:
        return check_percentile(value)
    except SettingsError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _checked_number(f):
    """A float flag checked as its setting is (finite, positive, ...) when parsed, so argparse
    names the flag in the error and nothing runs with a bad value."""

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {shown(text)}") from None
        try:
            return check_value(f, value)
        except SettingsError as err:
            raise argparse.ArgumentTypeError(_without_name(f, err)) from None

    return number


def _checked_text(f):
    """A text flag checked as its setting is (e.g. ``--targets``' values), when parsed."""

    def text(value: str) -> str:
        try:
            return check_value(f, value)
        except SettingsError as err:
            raise argparse.ArgumentTypeError(_without_name(f, err)) from None

    return text


def _without_name(f, err: SettingsError) -> str:
    """``"lr must be ..."`` -> ``"must be ..."`` (argparse names the flag: "argument --lr: ")."""
    text = str(err)
    return text[len(f.name) + 1 :] if text.startswith(f"{f.name} ") else text


def bounded_int(minimum: int, maximum: int):
    """The argparse ``type`` of a command's own integer flag (one that is no setting, e.g.
    ``--workers``): ``minimum <= value <= maximum``, checked when parsed."""

    def number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"expected an integer from {minimum} to {maximum}, got {shown(text)}"
            )
        return value

    return number


def bounded_float(minimum: float, maximum: float, *, open_minimum: bool = False):
    """The argparse ``type`` of a command's own number flag: finite, ``minimum <= value``
    (``<`` with ``open_minimum``) and ``value <= maximum``, checked when parsed."""
    low = "(" if open_minimum else "["

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        above = value > minimum if open_minimum else value >= minimum
        if not (math.isfinite(value) and above and value <= maximum):
            raise argparse.ArgumentTypeError(
                f"expected a number in {low}{minimum:g}, {maximum:g}], got {shown(text)}"
            )
        return value

    return number


def flag_type(f):
    """The argparse ``type`` of a field's flag (None for a boolean switch)."""
    kind = scalar_type(f)
    if kind is bool:
        return None
    if f.name == "percentile":
        return _number_or_auto
    if kind is int:
        return _checked_int(f)
    if kind is float:
        return _checked_number(f)
    if kind is str and not f.metadata.get("choices") and f.name != "methods":
        return _checked_text(f)  # (methods: checked with the settings, its message names it)
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
        notes = []
        has_default = f.default is not None and f.default is not MISSING and kind is not None
        if has_default and "(default" not in text:  # a help text naming its own default
            notes.append(f"default {f.default}")
        if kind is not None and bound_text(f):
            notes.append(bound_text(f))
        if notes:
            text += f" ({', '.join(notes)})"
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
