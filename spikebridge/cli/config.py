"""``--config FILE`` of ``convert``, ``train`` and ``compare``: settings from a TOML file or from a
run's own record, merged with the flags (docs/cli.md).

A file is either

- TOML, its keys the setting names of the records (``direct_epochs``) or the command's flag names
  without ``--`` (``ann-epochs``, ``ann_epochs``, ``epochs``); a key that is a flag of this command
  means what the flag means (``epochs`` in compare: every network's epochs), or
- a run's record, JSON: ``DIR/run.json`` (any command) or ``DIR/experiment.json`` (compare),
  whose ``settings`` are fed back as they were recorded, so the same settings run again.

Precedence, lowest first: the file's ``--epochs``-like keys (every network), the file's keys for
one network, the command line's ``--epochs``-like flags, the command line's own flags. A key that
is unknown, belongs to another command, or must be given on the command line (``overwrite``,
``resume``, ``trust_checkpoint``), and a record of another command, are refused with one line
naming the file and the key.
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config_file import ConfigError, key_line, read_config_text, read_toml
from ..settings import check_value, setting_fields
from .flags import GENERIC_PREFIX

CONFIG_HELP = (
    "settings from FILE: TOML (keys: setting or flag names) or a run's own record "
    "(DIR/run.json; compare: DIR/experiment.json too); flags given here win (docs/cli.md)"
)
FILE_OPTIONS: dict[str, Any] = {
    "out": str,
    "workers": int,
    "route": ("direct", "stdp"),
    "save_pickle": bool,
}
"""A command's options that are not settings but may be given in a file."""
COMMAND_LINE_ONLY = {
    "overwrite": "replacing results needs your word each time",
    "resume": "continuing a run needs your word each time",
    "trust_checkpoint": "running code from a file needs your word each time",
}
"""Keys refused in a file: each takes the user's word on the command line."""
DERIVED_KEYS = ("checkpoint_sha256",)
"""Record keys computed from the settings (the checkpoint file's digest), not settings."""
RECORD_FORMATS = {"spikebridge-run": None, "spikebridge-comparison": "compare"}
"""A record's ``format`` -> the command that writes it (None: the record names it)."""


def add_config(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``; call :func:`finish` after the parser's last flag."""
    parser.add_argument("--config", default=None, metavar="FILE", help=CONFIG_HELP)


def finish(parser: argparse.ArgumentParser) -> None:
    """Record the parser's keys (each flag name without ``--``, ``_`` for ``-``, -> its dest)
    for :func:`resolve`."""
    keys: dict[str, str] = {}
    for action in parser._actions:
        negative = isinstance(action, argparse.BooleanOptionalAction)
        for option in action.option_strings:
            if option.startswith("--") and not (negative and option.startswith("--no-")):
                keys[option[2:].replace("-", "_")] = action.dest  # (--no-X: key X = false)
    parser.set_defaults(config_keys=keys)


@lru_cache(maxsize=1)
def _fields() -> dict[str, Any]:
    from ..compare.config import Settings

    return setting_fields(Settings)


@lru_cache(maxsize=1)
def _every_command_key() -> dict[str, tuple[str, ...]]:
    """Every key some command takes -> the commands that take it (for "does not apply")."""
    from . import build_parser

    found: dict[str, list[str]] = {}
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, subparser in sub.choices.items():
        keys = subparser.get_default("config_keys") or {}
        for key in (*keys, *(subparser.get_default("settings") or ())):
            found.setdefault(key, []).append(command)
    return {k: tuple(dict.fromkeys(v)) for k, v in found.items()}


def _check(dest: str, value: Any, where: str, raw: str) -> Any:
    """``value`` checked for ``dest`` (a setting, an every-network flag or a file option)."""
    name = dest[len(GENERIC_PREFIX) :] if dest.startswith(GENERIC_PREFIX) else dest
    try:
        if name in FILE_OPTIONS:
            return _check_option(name, value)
        return check_value(_fields()[name], value)
    except ConfigError as err:
        raise ConfigError(f"{where}: key {raw!r}: {err}") from None


def _check_option(name: str, value: Any) -> Any:
    kind = FILE_OPTIONS[name]
    if isinstance(kind, tuple):
        if value not in kind:
            raise ConfigError(f"{name} must be one of {', '.join(kind)}, got {value!r}")
    elif kind is int:
        from .common import MAX_WORKERS

        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WORKERS:
            raise ConfigError(f"{name} must be an integer from 0 to {MAX_WORKERS}, got {value!r}")
    elif not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{name} must be a {kind.__name__}, got {value!r}")
    return value


def _dest(key: str, raw: str, command: str, keys: dict[str, str], args, where: str) -> str:
    """The dest a file's key sets in this command, or ConfigError naming the file and key."""
    refused = args.refused if getattr(args, "refused", None) else {}
    if key in COMMAND_LINE_ONLY:
        raise ConfigError(
            f"{where}: key {raw!r} is not allowed in a config file ({COMMAND_LINE_ONLY[key]}); "
            f"remove it and pass --{key.replace('_', '-')} on the command line"
        )
    settings = set(args.settings)
    dest = keys.get(key) if key not in refused else None
    if dest is None and key in settings:
        dest = key  # a setting's own name (as records have it), e.g. ``epochs`` for --ann-epochs
    if dest is not None and (dest in settings or dest in FILE_OPTIONS or dest in _generics(args)):
        return dest
    if key in refused:
        raise ConfigError(f"{where}: key {raw!r}: {refused[key]}")
    if dest is not None:  # a flag of this command that is no setting (--quiet, --config)
        raise ConfigError(
            f"{where}: key {raw!r} is not a setting; give --{key.replace('_', '-')} on the "
            "command line"
        )
    others = _every_command_key().get(key, ())
    if others or key in _fields():
        which = ", ".join(f"`spikebridge {c}`" for c in others) or "another command"
        raise ConfigError(
            f"{where}: key {raw!r} does not apply to `spikebridge {command}` (it is a setting "
            f"of {which}); remove it"
        )
    if key.startswith("no_") and key[3:] in settings:
        raise ConfigError(f"{where}: unknown key {raw!r}; write {key[3:]} = false instead")
    raise ConfigError(
        f"{where}: unknown key {raw!r}; the keys are the settings and flags of `spikebridge "
        f"{command} --help` without '--' (docs/cli.md)"
    )


def _generics(args: argparse.Namespace) -> dict[str, tuple[str, ...]]:
    return getattr(args, "generics", None) or {}


def _record_settings(path: Path, data: Any, command: str) -> dict[str, Any]:
    """The settings of a run's record ``data`` read from ``path``, for ``command``."""
    where = str(path)
    form = data.get("format") if isinstance(data, dict) else None
    if form not in RECORD_FORMATS or not isinstance(data.get("settings"), dict):
        raise ConfigError(
            f"{where}: not a spikebridge run record (DIR/run.json, or a comparison's "
            "DIR/experiment.json) nor a TOML file; give a TOML config or a run's record"
        )
    writer = RECORD_FORMATS[form] or data.get("command")
    if writer != command:
        raise ConfigError(
            f"{where}: key 'command': a record of `spikebridge {writer}`, not of `spikebridge "
            f"{command}`; give a record of a {command} run (or a TOML file)"
        )
    settings = dict(data["settings"])
    if command == "train":
        from ..direct.experiment import upgrade_record

        settings = upgrade_record(settings)
    for key in DERIVED_KEYS:
        settings.pop(key, None)
    checkpoint = settings.get("checkpoint")
    if isinstance(checkpoint, str) and checkpoint:
        from ..loading import is_graph_file
        from ..model_files import ARCHITECTURE_SETTINGS

        if is_graph_file(checkpoint):  # the file's graph was the model: its record's
            for key in ARCHITECTURE_SETTINGS:  # architecture entries are defaults, unused
                settings.pop(key, None)
    return settings


def load(path: str, args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(generic values, own values) of the file ``path`` for the command of ``args``, keyed by
    dest: TOML or a run's record (JSON). Raises ConfigError (or FileNotFoundError) naming the
    file and the key."""
    file = Path(path)
    command = args.command
    keys = args.config_keys
    text = None
    if file.suffix == ".json":
        raw_text = read_config_text(file)
        try:
            data = json.loads(raw_text)
        except ValueError as err:
            raise ConfigError(f"{file}: not valid JSON: {err}") from None
        items = _record_settings(file, data, command)
        record = True
    else:
        items, text = read_toml(file)
        record = False
    generic: dict[str, Any] = {}
    own: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for raw, value in items.items():
        key = raw.replace("-", "_")
        line = key_line(text, raw) if text is not None else None
        where = f"{file}, line {line}" if line else str(file)
        if key in spelled:
            raise ConfigError(
                f"{where}: key {raw!r} is given twice (as {spelled[key]!r} and {raw!r}); keep one"
            )
        spelled[key] = raw
        if record:
            if value is None:  # a setting left to its default
                continue
            dest = key if key in args.settings or key in FILE_OPTIONS else None
            if dest is None:
                dest = _dest(key, raw, command, keys, args, where)
        else:
            dest = _dest(key, raw, command, keys, args, where)
        target = generic if dest in _generics(args) else own
        if dest in target:
            raise ConfigError(
                f"{where}: key {raw!r} sets what another key of the file sets "
                f"({spelled_of(spelled, keys, dest, key)!r}); keep one"
            )
        target[dest] = _check(dest, value, where, raw)
    return generic, own


def spelled_of(spelled: dict[str, str], keys: dict[str, str], dest: str, skip: str) -> str:
    """How the file spelled the other key that sets ``dest``."""
    for key, raw in spelled.items():
        if key != skip and (keys.get(key) == dest or key == dest):
            return raw
    return dest


def resolve(args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> None:
    """Merge ``--config``'s file into ``args`` in place: each setting (and file option) takes,
    in order of precedence, the command line's own flag, the command line's every-network flag
    (``--epochs``), the file's own key, the file's every-network key; every-network dests are
    expanded into their settings and cleared. ``defaults`` (and ``out_default``) fill file
    options still unset."""
    generics: dict[str, tuple[str, ...]] = getattr(args, "generics", None) or {}
    file_generic: dict[str, Any] = {}
    file_own: dict[str, Any] = {}
    if getattr(args, "config", None):
        file_generic, file_own = load(args.config, args)
    layers = []
    for generic_values, own_values in (
        (file_generic, file_own),
        ({g: getattr(args, g) for g in generics if getattr(args, g) is not None}, {}),
    ):
        expanded = {t: v for g, v in generic_values.items() for t in generics[g]}
        layers.append({**expanded, **own_values})
    for dest in (*args.settings, *FILE_OPTIONS):
        if not hasattr(args, dest) or getattr(args, dest) is not None:
            continue  # given on the command line (or not an option of this command)
        for layer in reversed(layers):
            if dest in layer:
                setattr(args, dest, layer[dest])
                break
    for g in generics:
        setattr(args, g, None)
    defaults = {"out": getattr(args, "out_default", None), **(defaults or {})}
    for dest, value in defaults.items():
        if getattr(args, dest, None) is None:
            setattr(args, dest, value)


__all__ = ["CONFIG_HELP", "add_config", "finish", "load", "resolve"]
