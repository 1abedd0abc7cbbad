"""Reading a settings file: a TOML file of at most :data:`MAX_CONFIG_BYTES`, each key's line for
messages (the commands' ``--config``: :mod:`spikebridge.cli.config`; the library's
:func:`spikebridge.compare.load_config`).

TOML is read with ``tomllib`` (Python 3.11+) or, on 3.10, the ``tomli`` package.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from .settings import SettingsError as ConfigError

MAX_CONFIG_BYTES = 1 << 20
"""The largest config file read (1 MiB; a config is a few lines of TOML)."""


def read_config_text(path: Path) -> str:
    """The text of config file ``path``: a regular UTF-8 file of at most
    :data:`MAX_CONFIG_BYTES` (at most that much is read); else an error naming the file."""
    name = repr(str(path))
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError(f"config file {name} is a directory, not a TOML file")
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"config file {name} is not a regular file (a device, pipe or socket); "
                "give a TOML file"
            )
        with path.open("rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # replaced since stat()
                raise ConfigError(f"config file {name} is not a regular file; give a TOML file")
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {name} does not exist") from None
    except OSError as err:
        raise ConfigError(f"config file {name} cannot be read: {err.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"config file {name} is larger than {MAX_CONFIG_BYTES >> 20} MiB; a config is a "
            "few lines of TOML"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file ({err})") from None


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """The table in TOML file ``path`` and its text; ConfigError naming the file if it is not
    TOML (or no TOML parser is installed)."""
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
    text = read_config_text(path)
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
