"""Writing results: every file goes to a temporary name in its directory, then is renamed into
place, so an interrupted run never leaves a half-written file behind.

The temporary file is ``.<name>.<pid>-<token>.tmp`` next to the target. It is created with mode
0666 minus the process umask, so results get the permissions any other file the user writes gets
(``tempfile.mkstemp``'s 0600 would survive the rename). A run killed during a write leaves its
temporary file behind; the next write to that directory removes the temporary files of writers
that are no longer running (and, from versions that did not record the pid, those over an hour
old).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import torch

TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-(?P<token>[0-9a-f]{8})\.tmp$")
# what tempfile.mkstemp(prefix=".<name>.", suffix=".tmp") made before the pid was recorded
_LEGACY_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<token>[a-z0-9_]{8})\.tmp$")
LEGACY_TEMP_AGE_SECONDS = 3600.0


def output_dir(path: str | os.PathLike) -> Path:
    """Create (if needed) and return the output directory; a clear error when ``path`` is a file."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(
            f"output directory {str(out)!r} is an existing file; choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def temp_path(path: str | os.PathLike) -> Path:
    """The temporary name :func:`atomic_write` writes ``path`` under (pid and a random token)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _process_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed writers left in ``directory``; returns them.

    A file is stale when the process named in it is no longer running, or, for the pid-less
    names of earlier versions, when it is over an hour old. Files of live writers are kept.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
            continue
        match = _TEMP_NAME.match(name)
        if match is not None:
            stale = not _process_running(int(match["pid"]))
        elif _LEGACY_TEMP_NAME.match(name) is not None:
            try:
                stale = now - entry.stat(follow_symlinks=False).st_mtime > LEGACY_TEMP_AGE_SECONDS
            except OSError:
                continue
        else:
            continue
        if not stale or not entry.is_file(follow_symlinks=False):
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:  # another run removed it first
            continue
        except OSError:
            continue
        removed.append(Path(entry.path))
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path``.

    The temporary file is created (mode 0666 minus the umask) in ``path``'s directory, flushed to
    disk, then renamed over ``path``; on any error it is removed and ``path`` is untouched.
    Stale temporary files of killed writers in that directory are removed first.
    """
    path = Path(path)
    remove_stale_temporaries(path.parent)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)
    try:
        write(str(tmp))
        with open(tmp, "rb+") as fh:  # on disk before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every platform opens directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, data: dict) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_csv(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as CSV without the index."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def save_torch(path: str | os.PathLike, obj) -> Path:
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_figure(path: str | os.PathLike, figure, **kwargs) -> Path:
    """Save a matplotlib figure (format from the suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format=fmt, **kwargs))


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
