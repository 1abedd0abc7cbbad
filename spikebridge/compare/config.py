"""Settings of a comparison experiment, from keyword arguments or a TOML file.

A TOML config holds the same settings as :func:`spikebridge.compare.run`'s keyword arguments
(``data_root`` or ``data-root`` alike), at the top level::

    arch = "cnn"
    dataset = "mnist"
    data_root = "/data/mnist"
    methods = ["max", "channel"]     # or "all", or "max,channel"
    timesteps = 32
    epochs = 5

An unknown key or a value of the wrong type is a :class:`ConfigError` naming the file, the line
and the key. TOML is read with ``tomllib`` (Python 3.11+) or, on 3.10, the ``tomli`` package.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..convert import METHODS

ENCODINGS = ("analog", "poisson")
RESETS = ("subtract", "zero")
MAXPOOLS = ("spiking", "avg")
ACTIVATIONS = ("relu", "leaky-relu", "qcfs")
POOLS = ("avg", "max")
OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")


class ConfigError(ValueError):
    """A config file or a setting is wrong; the message names the key (and the file and line)."""


@dataclass
class Settings:
    """Every setting of :func:`spikebridge.compare.run` (see there for their meaning)."""

    arch: str = "cnn"
    dataset: str = "digits"
    data_root: str | None = None
    download: bool = False
    methods: str | list[str] = "all"
    timesteps: int = 32
    epochs: int = 5
    direct_epochs: int | None = None
    direct_timesteps: int = 4
    width: float = 1.0
    activation: str = "relu"
    pool: str = "avg"
    batch_size: int = 128
    limit: int | None = None
    train_limit: int | None = None
    calibration_samples: int = 512
    lr: float = 1e-3
    direct_lr: float = 0.1
    direct_optimizer: str = "sgd"
    seed: int = 0
    device: str = "auto"
    e_mac: float = 4.6
    e_ac: float = 0.9
    reset: str = "subtract"
    encoding: str = "analog"
    percentile: float = 99.9
    initial_potential: float | None = None
    negative_spikes: bool | None = None
    maxpool: str = "spiking"

    def __post_init__(self) -> None:
        for f in fields(self):
            setattr(self, f.name, check_value(f.name, getattr(self, f.name)))

    def experiment(self) -> dict[str, Any]:
        """The settings that define the results (not where data lives or which device runs it)."""
        data = asdict(self)
        for key in RUNTIME_KEYS:
            data.pop(key, None)
        data["methods"] = method_list(self.methods)
        data["direct_epochs"] = (
            self.direct_epochs if self.direct_epochs is not None else self.epochs
        )
        return data


RUNTIME_KEYS = ("data_root", "download", "device")
"""Settings that do not change the results; a re-run may change them freely."""

_TYPES: dict[str, tuple[type, ...]] = {}
_OPTIONAL: set[str] = set()
_DEFAULTS: dict[str, Any] = {}
for _f in fields(Settings):
    annotation = str(_f.type)
    _OPTIONAL.update({_f.name} if "None" in annotation else set())
    if _f.name == "methods":
        _TYPES[_f.name] = (str, list)
    elif annotation.startswith("int"):
        _TYPES[_f.name] = (int,)
    elif annotation.startswith("float"):
        _TYPES[_f.name] = (int, float)
    elif annotation.startswith("bool"):
        _TYPES[_f.name] = (bool,)
    else:
        _TYPES[_f.name] = (str,)
    _DEFAULTS[_f.name] = _f.default if _f.default is not MISSING else None

KEYS: tuple[str, ...] = tuple(_TYPES)
FILE_ONLY_KEYS: dict[str, type] = {"out": str, "overwrite": bool}
"""Keys a config file may hold besides the settings: where to write and whether to replace."""


def setting_type(name: str) -> type:
    """The scalar type of setting ``name`` (``bool``, ``int``, ``float`` or ``str``)."""
    types = _TYPES[name]
    for t in (bool, float, int):
        if t in types:
            return t
    return str


_CHOICES = {
    "encoding": ENCODINGS,
    "reset": RESETS,
    "maxpool": MAXPOOLS,
    "activation": ACTIVATIONS,
    "pool": POOLS,
    "direct_optimizer": OPTIMIZERS,
    "device": DEVICES,
}
_POSITIVE_INTS = {
    "timesteps",
    "epochs",
    "direct_timesteps",
    "batch_size",
    "limit",
    "train_limit",
    "calibration_samples",
}
_POSITIVE_FLOATS = {"width", "lr", "direct_lr"}
_NON_NEGATIVE_FLOATS = {"e_mac", "e_ac"}
_TYPE_NAMES = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    list: "a list",
}


def _type_name(name: str) -> str:
    if name == "methods":
        return "a string ('all' or comma-separated names) or a list of method names"
    names = [_TYPE_NAMES[t] for t in _TYPES[name] if not (t is int and float in _TYPES[name])]
    return " or ".join(names)


def method_list(methods: str | list[str]) -> list[str]:
    """``"all"`` -> every method name; ``"max,channel"`` or a list -> those names, in order."""
    if isinstance(methods, str):
        if methods.strip() == "all":
            return list(METHODS)
        methods = [m.strip() for m in methods.split(",")]
    return list(dict.fromkeys(m for m in methods if m))  # in order, each once


def check_value(name: str, value: Any) -> Any:
    """``value`` checked (and normalised) for setting ``name``; ValueError names the setting."""
    if name not in _TYPES:
        raise ConfigError(f"unknown setting {name!r}; known settings: {', '.join(KEYS)}")
    if value is None:
        if name in _OPTIONAL:
            return None
        raise ConfigError(f"{name} must be {_type_name(name)}, got None")
    types = _TYPES[name]
    bad_bool = isinstance(value, bool) and bool not in types
    if bad_bool or not isinstance(value, types):
        raise ConfigError(
            f"{name} must be {_type_name(name)}, got {type(value).__name__} {value!r}"
        )
    if float in types and not isinstance(value, bool):
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be finite, got {value!r}")
    if name in _POSITIVE_INTS and value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if name == "direct_epochs" and value < 0:
        raise ConfigError(f"direct_epochs must be >= 0 (0 skips the direct route), got {value!r}")
    if name in _POSITIVE_FLOATS and value <= 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")
    if name in _NON_NEGATIVE_FLOATS and value < 0:
        raise ConfigError(f"{name} (energy per operation, pJ) must be >= 0, got {value!r}")
    if name == "percentile" and not 0 < value <= 100:
        raise ConfigError(f"percentile must be in (0, 100], got {value!r}")
    if name == "initial_potential" and not 0 <= value < 1:
        raise ConfigError(
            f"initial_potential is a fraction of the threshold in [0, 1), got {value!r}"
        )
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ConfigError(f"{name} must be one of {', '.join(_CHOICES[name])}, got {value!r}")
    if name == "methods":
        if isinstance(value, list) and not all(isinstance(m, str) for m in value):
            raise ConfigError(f"methods must be a list of method names (strings), got {value!r}")
        names = method_list(value)
        unknown = [m for m in names if m not in METHODS]
        if unknown:
            raise ConfigError(
                f"methods: unknown method(s) {', '.join(map(repr, unknown))}; choose from "
                f"{', '.join(METHODS)} or 'all'"
            )
        if not names:
            raise ConfigError(f"methods names no method; choose from {', '.join(METHODS)} or 'all'")
        value = value.strip() if isinstance(value, str) else list(value)
    return value


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[import-not-found,no-redef]
        except ModuleNotFoundError:
            raise ConfigError(
                f"reading {path} needs a TOML parser: Python 3.11+ has one built in; on Python "
                "3.10 install the 'tomli' package (pip install tomli)"
            ) from None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {str(path)!r} does not exist") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file ({err})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None


def key_line(text: str, key: str) -> int | None:
    """1-based line of the first top-level assignment (or table header) of ``key`` in TOML text."""
    quoted = re.escape(key)
    assign = re.compile(rf"""^\s*(?:{quoted}|"{quoted}"|'{quoted}')\s*(=|\.)""")
    header = re.compile(rf"""^\s*\[+\s*(?:{quoted}|"{quoted}"|'{quoted}')\s*[\].]""")
    for number, line in enumerate(text.splitlines(), start=1):
        if assign.match(line) or header.match(line):
            return number
    return None


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """The settings in TOML file ``path`` as a dict keyed like :class:`Settings` (underscores),
    plus ``out`` and ``overwrite`` when the file gives them.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: invalid TOML, an unknown key or a wrong type/value (names file, line, key).
    """
    path = Path(path)
    data, text = _read_toml(path)
    settings: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        line = key_line(text, raw_key)
        where = f"{path}, line {line}" if line else str(path)
        if key in settings:
            raise ConfigError(f"{where}: key {raw_key!r} is given twice (as '-' and '_' spellings)")
        if key in FILE_ONLY_KEYS:
            kind = FILE_ONLY_KEYS[key]
            if not isinstance(value, kind):
                raise ConfigError(
                    f"{where}: key {raw_key!r} must be {_TYPE_NAMES[kind]}, got {type(value).__name__} {value!r}"
                )
            settings[key] = value
            continue
        if key not in _TYPES:
            known = ", ".join((*KEYS, *FILE_ONLY_KEYS))
            raise ConfigError(f"{where}: unknown key {raw_key!r}; known keys: {known}")
        try:
            settings[key] = check_value(key, value)
        except ConfigError as err:
            raise ConfigError(f"{where}: key {raw_key!r}: {err}") from None
    return settings


def defaults() -> dict[str, Any]:
    """The default value of every setting."""
    return dict(_DEFAULTS)


__all__ = [
    "FILE_ONLY_KEYS",
    "KEYS",
    "RUNTIME_KEYS",
    "ConfigError",
    "Settings",
    "check_value",
    "defaults",
    "key_line",
    "load_config",
    "method_list",
    "setting_type",
]
