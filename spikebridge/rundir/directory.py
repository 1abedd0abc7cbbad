"""Creating an output directory (and its missing parents) and taking its lock, leaving nothing
behind when either fails: the directories created are removed again.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from .. import dirlock
from .errors import DirectoryBusy, DirectoryNotOwned, DirectoryNotWritable


def timestamp(seconds: float) -> str:
    """``seconds`` since the epoch as UTC ISO 8601 (``2026-11-30T06:01:12Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def remove_directories(created: list[Path]) -> None:
    """Remove the directories in ``created`` (outermost first), innermost first, while empty."""
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            break


def make_directory(path: Path, arg: str) -> list[Path]:
    """Create ``path`` and missing parents; returns the directories created (outermost first)."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(
            f"{arg} {str(path)!r} is an existing file, not a directory; choose another {arg}"
        )
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NotADirectoryError(
            f"{arg} {str(path)!r}: {str(probe)!r} is a file, not a directory; choose another {arg}"
        )
    created = []
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            remove_directories(created)
            raise _not_writable(path, arg, err) from None
        created.append(directory)
    return created


def _not_writable(path: Path, arg: str, err: OSError) -> DirectoryNotWritable:
    reason = err.strerror or type(err).__name__
    where = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
    return DirectoryNotWritable(
        f"{arg} {str(path)!r} is not writable: {reason}{where}; fix its permissions or choose "
        f"another {arg}"
    )


def lock_directory(path: Path, arg: str, command: str, created: list[Path]) -> int:
    """Take the directory's lock (:mod:`spikebridge.dirlock`) for this process."""
    info = {
        "pid": os.getpid(),
        "command": command,
        "host": socket.gethostname(),
        "started": timestamp(time.time()),
    }
    try:
        return dirlock.acquire(path, info)
    except dirlock.LockHeld as held:
        remove_directories(created)
        raise DirectoryBusy(_busy_message(path, arg, held.holder), held.holder.get("pid")) from None
    except dirlock.LockFileRefused as err:
        remove_directories(created)
        raise DirectoryNotOwned(f"{arg}: {err}") from None
    except OSError as err:
        remove_directories(created)
        raise _not_writable(path, arg, err) from None


def _busy_message(path: Path, arg: str, holder: dict[str, Any]) -> str:
    pid = holder.get("pid") if isinstance(holder.get("pid"), int) else None
    who = f"pid {pid}" if pid is not None else "a process that did not record its pid"
    host = holder.get("host")
    on = f" on {host}" if host and host != socket.gethostname() else ""
    what = f", `spikebridge {holder['command']}`" if holder.get("command") else ""
    since = f", since {holder['started']}" if holder.get("started") else ""
    return (
        f"{arg} {str(path)!r} is in use by another spikebridge run ({who}{on}{what}{since}); "
        f"wait for it to finish, or choose another {arg}"
    )


__all__ = ["lock_directory", "make_directory", "remove_directories", "timestamp"]
