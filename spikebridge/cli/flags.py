"""Command-line flags generated from the settings dataclasses (:mod:`spikebridge.settings`)."""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import MISSING, fields
from typing import Any

from ..settings import (
    SettingsError,
    bound_text,
    check_percentile,
    check_value,
    primary_flag,
    scalar_type,
    setting_fields,
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


def add_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    exclude: tuple[str, ...] = (),
    only: tuple[str, ...] | None = None,
    help_overrides: dict[str, str] | None = None,
    aliases: dict[str, tuple[str, ...]] | None = None,
) -> list[str]:
    """Add a flag for every setting of ``cls`` (all but ``exclude``; only ``only`` when given)
    and return the settings' names. A flag is the field's :func:`~spikebridge.settings.primary_flag`
    with the field's own aliases and this command's ``aliases[name]``; its ``dest`` is the
    field's name. Every flag defaults to None ("not given"), so the dataclass default, a config
    file or a command's own rule decides."""
    names = []
    for f in fields(cls):
        if f.name in exclude or (only is not None and f.name not in only):
            continue
        if not f.metadata.get("flag", True):
            continue
        text = (help_overrides or {}).get(f.name, f.metadata.get("help", f.name))
        kind = flag_type(f)
        option_strings = [
            primary_flag(f),
            *f.metadata.get("aliases", ()),
            *(aliases or {}).get(f.name, ()),
        ]
        _add(parser, f, option_strings, f.name, text, kind)
        names.append(f.name)
    return names


def help_text(f, text: str, kind) -> str:
    """``text`` with the field's default and bound appended, each once (a text that names its
    own default keeps it)."""
    notes = []
    has_default = f.default is not None and f.default is not MISSING and kind is not None
    if has_default and not re.search(r"[(;,]\s*default\b", text):  # it names its own default
        notes.append(f"default {f.default}")
    bound = bound_text(f)
    if kind is not None and bound and bound not in text:
        notes.append(bound)
    if not notes:
        return text
    if text.endswith(")") and "(default" in text:  # one parenthesis: "(default 5, at most 9)"
        return f"{text[:-1]}, {', '.join(notes)})"
    return f"{text} ({', '.join(notes)})"


def _add(parser, f, option_strings: list[str], dest: str, text: str, kind) -> None:
    text = help_text(f, text, kind)
    if kind is None:
        parser.add_argument(*option_strings, dest=dest, default=None, help=text,
                            action=argparse.BooleanOptionalAction)  # fmt: skip
    elif kind is list:  # a repeatable flag, one item each
        parser.add_argument(*option_strings, dest=dest, default=None, help=text,
                            action="append", metavar="SPEC")  # fmt: skip
    else:
        choices = f.metadata.get("choices")
        metavar = None if choices else option_strings[0][2:].upper().replace("-", "_")
        parser.add_argument(*option_strings, dest=dest, type=kind, default=None,
                            choices=choices, metavar=metavar, help=text)  # fmt: skip


GENERIC_PREFIX = "every_"
"""The ``dest`` of a flag that sets one setting of every network a command trains (``--epochs``:
``every_epochs``), expanded into those settings by :func:`spikebridge.cli.config.resolve`."""


def add_generic(
    parser: argparse.ArgumentParser,
    cls: type,
    field: str,
    targets: tuple[str, ...],
    text: str,
    *,
    aliases: tuple[str, ...] = (),
    name: str | None = None,
) -> str:
    """``--NAME`` (``name``, default ``field``; and ``aliases``), checked as ``field`` of ``cls``
    is, setting each setting in ``targets`` that is not given on its own
    (:func:`spikebridge.cli.config.resolve`). Returns its dest; the parser's ``generics`` maps it
    to ``targets``."""
    f = setting_fields(cls)[field]
    name = name or field
    dest = GENERIC_PREFIX + name
    _add(parser, f, ["--" + name.replace("_", "-"), *aliases], dest, text, flag_type(f))
    generics = dict(parser.get_default("generics") or {})
    generics[dest] = targets
    parser.set_defaults(generics=generics)
    return dest


class _Refused(argparse.Action):
    """A flag refused with one line: what to give instead."""

    def __init__(self, option_strings, dest, message: str = "", **kwargs):
        super().__init__(option_strings, dest, nargs="?", default=argparse.SUPPRESS, **kwargs)
        self.message = message

    def __call__(self, parser, namespace, values, option_string=None):
        parser.exit(2, f"{parser.prog}: error: {option_string}: {self.message}\n")


def add_refused(parser: argparse.ArgumentParser, flag: str, message: str) -> None:
    """``flag`` refused with one line (exit status 2) saying ``message``: a spelling that would
    mean two things in this command."""
    parser.add_argument(
        flag, action=_Refused, message=message, metavar=flag[2:].upper(), help=f"refused: {message}"
    )
    refused = dict(parser.get_default("refused") or {})
    refused[flag[2:].replace("-", "_")] = message
    parser.set_defaults(refused=refused)


def given(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The settings among ``names`` given on the command line (not None)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
