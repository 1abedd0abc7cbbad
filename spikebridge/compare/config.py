"""Settings of a comparison experiment, from keyword arguments or a TOML file.

A TOML config holds the same settings as :func:`spikebridge.compare.run`'s keyword arguments
(``data_root`` or ``data-root`` alike), at the top level::

    arch = "cnn"
    dataset = "mnist"
    data_root = "/data/mnist"
    methods = ["max", "channel"]     # or "all", or "max,channel"
    timesteps = 32
    epochs = 5

The keys are the fields of :class:`Settings`, which gathers the four settings groups of
:mod:`spikebridge.settings`. An unknown key or a value of the wrong type is a
:class:`ConfigError` naming the file, the line and the key. TOML is read with ``tomllib``
(Python 3.11+) or, on 3.10, the ``tomli`` package.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config_file import MAX_CONFIG_BYTES, key_line, read_config_text, read_toml
from ..convert.methods import method_list, method_settings_class
from ..settings import (
    TYPE_NAMES,
    ConversionSettings,
    ExperimentSettings,
    ModelFileSettings,
    RobustnessSettings,
    SettingsError,
    SimulationSettings,
    StdpSettings,
    TrainingSettings,
    runtime_keys,
    setting_fields,
)
from ..settings import check_value as check_field
from ..settings import defaults as settings_defaults

ConfigError = SettingsError
"""A config file or a setting is wrong; the message names the key (and the file and line)."""


MethodSettingsFlags = method_settings_class()
"""The threshold methods' own settings (``spike_norm_window``, ``calibrated_samples``, ...), as
flat keys (:func:`spikebridge.convert.methods.method_settings_class`)."""


@dataclass
class Settings(
    MethodSettingsFlags,
    ModelFileSettings,
    RobustnessSettings,
    StdpSettings,
    SimulationSettings,
    ConversionSettings,
    TrainingSettings,
    ExperimentSettings,
):
    """Every setting of :func:`spikebridge.compare.run`: the settings groups of
    :mod:`spikebridge.settings` and the threshold methods' settings in one flat namespace (their
    field names are unique)."""

    def model_label(self) -> str:
        """How reports name the network: the architecture, or the user's graph file."""
        from ..loading import is_graph_file

        if self.checkpoint and is_graph_file(self.checkpoint):
            return Path(self.checkpoint).name
        return self.arch

    def ann_method(self) -> str:
        """The ANN's ``method`` in the tables: its activation, or the user's graph file."""
        label = self.model_label()
        return label if label != self.arch else self.activation

    def experiment(self) -> dict[str, Any]:
        """The settings that define the results (not where data lives or which device runs it)."""
        data = asdict(self)
        for key in RUNTIME_KEYS:
            data.pop(key, None)
        data["methods"] = method_list(self.methods)
        data["direct_epochs"] = self.direct_epoch_count()
        data["direct_lr"] = self.direct_learning_rate()
        # the file's content, not only its name, defines the results
        data["checkpoint_sha256"] = None
        if self.checkpoint:
            from ..loading import file_digest

            data["checkpoint_sha256"] = file_digest(self.checkpoint)
        return data


RUNTIME_KEYS = runtime_keys(Settings)
"""Settings that do not change the results; a re-run may change them freely."""
_FIELDS = setting_fields(Settings)
KEYS: tuple[str, ...] = tuple(_FIELDS)
FILE_ONLY_KEYS: dict[str, type] = {"out": str}
"""Keys a config file may hold besides the settings: where to write."""
COMMAND_LINE_ONLY_KEYS: tuple[str, ...] = ("overwrite",)
"""Keys a config file may not hold: replacing results takes the user's word on the command line."""


def check_value(name: str, value: Any) -> Any:
    """``value`` checked (and normalised) for setting ``name``; ConfigError names the setting."""
    if name not in _FIELDS:
        raise ConfigError(f"unknown setting {name!r}; known settings: {', '.join(KEYS)}")
    return check_field(_FIELDS[name], value)


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """The settings in TOML file ``path`` as a dict keyed like :class:`Settings` (underscores),
    plus ``out`` when the file gives it. ``overwrite`` is refused: results are replaced only
    when ``--overwrite`` is given on the command line.

    Raises:
        FileNotFoundError: no such file.
        ConfigError: invalid TOML, an unknown key or a wrong type/value (names file, line, key).
    """
    path = Path(path)
    data, text = read_toml(path)
    settings: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        line = key_line(text, raw_key)
        where = f"{path}, line {line}" if line else str(path)
        if key in settings:
            raise ConfigError(f"{where}: key {raw_key!r} is given twice (as '-' and '_' spellings)")
        if key in COMMAND_LINE_ONLY_KEYS:
            raise ConfigError(
                f"{where}: key {raw_key!r} is not allowed in a config file (replacing results "
                f"needs your word each time); remove it and pass --{key} on the command line"
            )
        if key in FILE_ONLY_KEYS:
            kind = FILE_ONLY_KEYS[key]
            if not isinstance(value, kind):
                raise ConfigError(
                    f"{where}: key {raw_key!r} must be {TYPE_NAMES[kind]}, got {type(value).__name__} {value!r}"
                )
            settings[key] = value
            continue
        if key not in _FIELDS:
            known = ", ".join((*KEYS, *FILE_ONLY_KEYS))
            raise ConfigError(f"{where}: unknown key {raw_key!r}; known keys: {known}")
        try:
            settings[key] = check_value(key, value)
        except ConfigError as err:
            raise ConfigError(f"{where}: key {raw_key!r}: {err}") from None
    return settings


def defaults() -> dict[str, Any]:
    """The default value of every setting."""
    return settings_defaults(Settings)


__all__ = [
    "COMMAND_LINE_ONLY_KEYS",
    "MAX_CONFIG_BYTES",
    "FILE_ONLY_KEYS",
    "KEYS",
    "RUNTIME_KEYS",
    "ConfigError",
    "Settings",
    "check_value",
    "defaults",
    "key_line",
    "load_config",
    "read_config_text",
]
