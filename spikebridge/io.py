"""Writing results: every file goes to a temporary name in its directory, then is renamed into
place, so an interrupted run never leaves a half-written file behind.

The temporary file is ``.<name>.spikebridge-<pid>-<token>.tmp`` next to the target ``<name>``. It
is created with mode 0666 minus the process umask, so results get the permissions any other file
the user writes gets (``tempfile.mkstemp``'s 0600 would survive the rename). A run killed during a
write leaves its temporary file behind; the next write of the same ``<name>`` removes the
temporaries of that name whose writer is no longer running, and only those: a file is removed only
when its whole name matches that pattern (the ``spikebridge`` mark included), it is a regular
file and it belongs to this user. Nothing else in the directory is ever deleted (other programs'
``.x.tmp`` files, and the unmarked temporaries of versions before 0.9, stay).

A JSON file is strict JSON: a non-finite number (NaN, infinity) is written as ``null``.

A torch file (:func:`save_torch`) gets a checksum file beside it, ``<name>.sha256`` (the format
``sha256sum -c`` reads), and :func:`verify_checksum` checks a file against it before use. The
checksum file is written before the rename, listing the new and the previous digest, and then
rewritten with the new one only, so a process killed at any point leaves a file and a checksum
that agree.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import secrets
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

TEMP_SUFFIX = ".tmp"
TEMP_MARK = "spikebridge"
CHECKSUM_SUFFIX = ".sha256"


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
    """The temporary name :func:`atomic_write` writes ``path`` under (mark, pid, random token)."""
    path = Path(path)
    token = secrets.token_hex(4)
    return path.with_name(f".{path.name}.{TEMP_MARK}-{os.getpid()}-{token}{TEMP_SUFFIX}")


def _temp_pattern(name: str) -> re.Pattern[str]:
    """Exactly the temporary names :func:`temp_path` makes for a file called ``name``."""
    return re.compile(
        rf"^\.{re.escape(name)}\.{TEMP_MARK}-(?P<pid>[1-9][0-9]{{0,9}})-[0-9a-f]{{8}}"
        rf"{re.escape(TEMP_SUFFIX)}$"
    )


def _process_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's process
        return True
    return True


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed writers of ``target`` left beside it; returns them.

    Only names :func:`temp_path` makes for ``target``'s name are considered, and of those only
    regular files of this user whose writer (the pid in the name) is no longer running.
    """
    target = Path(target)
    pattern = _temp_pattern(target.name)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or _process_running(int(match["pid"])):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or (uid is not None and info.st_uid != uid):
            continue
        try:
            os.unlink(entry.path)
        except OSError:  # another run removed it first, or it cannot be removed
            continue
        removed.append(Path(entry.path))
    return removed


def _create_temp(tmp: Path) -> None:
    """Create the empty temporary file (mode 0666 minus the umask; never an existing name)."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    os.close(fd)


def _named(err: BaseException, path: Path, tmp: Path) -> BaseException:
    """``err`` naming ``path`` (the file being written) instead of its temporary name."""
    if isinstance(err, OSError) and err.errno is not None:
        if err.filename is None or str(err.filename) == str(tmp):
            named = OSError(err.errno, err.strerror or os.strerror(err.errno), str(path))
            return named
        return err
    text = str(err)
    torch_io = ("write failed", "PytorchStreamWriter", "inline_container")
    if isinstance(err, RuntimeError) and any(m in text for m in torch_io):  # torch.save's writer
        code = errno.ENOSPC if _nearly_full(path.parent) else errno.EIO
        reason = (text.splitlines() or [""])[0][:200]
        return OSError(code, f"{os.strerror(code)} (while writing: {reason})", str(path))
    return err


def _nearly_full(directory: Path) -> bool:
    try:
        info = os.statvfs(directory)
    except (OSError, AttributeError):
        return False
    return info.f_bavail * info.f_frsize < 1 << 20


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[str], None],
    before_rename: Callable[[Path], None] | None = None,
) -> Path:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path``.

    The temporary file is created (mode 0666 minus the umask) in ``path``'s directory, flushed to
    disk, passed to ``before_rename`` (if given), then renamed over ``path``; on any error it is
    removed, ``path`` is untouched and an OSError names ``path`` (not the temporary name).
    Stale temporaries of killed writers of ``path`` are removed first (see the module docstring).
    """
    path = Path(path)
    remove_stale_temporaries(path)
    tmp = temp_path(path)
    created = False
    try:
        _create_temp(tmp)
        created = True
        write(str(tmp))
        with open(tmp, "rb+") as fh:  # on disk before the rename makes it visible
            os.fsync(fh.fileno())
        if before_rename is not None:
            before_rename(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        if created and os.path.lexists(tmp):
            os.unlink(tmp)
        named = _named(err, path, tmp)
        if named is err:
            raise
        raise named from err
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


def strict_json(data: Any) -> str:
    """``data`` as strict JSON text (indented, sorted keys): tensors, NumPy values and paths
    converted, and every non-finite number (NaN, infinity) written as ``null``."""
    return json.dumps(finite(data), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as strict JSON (:func:`strict_json`: no bare NaN or Infinity)."""
    return write_text(path, strict_json(data))


def write_csv(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame as CSV without the index."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def checksum_path(path: str | os.PathLike) -> Path:
    """The checksum file beside ``path``: ``<name>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 digest of the file at ``path`` (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_CHECKSUM_LINE = re.compile(r"^(?P<digest>[0-9a-f]{64}) [ *](?P<name>.+)$")


def recorded_checksums(path: str | os.PathLike) -> list[str] | None:
    """The digests the checksum file of ``path`` lists; None when it has none (or it is not a
    regular file); ``[]`` when it lists none that reads."""
    sidecar = checksum_path(path)
    try:
        if not stat.S_ISREG(os.lstat(sidecar).st_mode) or sidecar.stat().st_size > 4096:
            return []
        text = sidecar.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return []
    found = (_CHECKSUM_LINE.match(line) for line in text.splitlines())
    return [m["digest"] for m in found if m is not None]


def save_torch(path: str | os.PathLike, obj, checksum: bool = True) -> Path:
    """``torch.save(obj)`` to ``path`` atomically; with ``checksum``, ``<name>.sha256`` beside
    it (see the module docstring), which :func:`verify_checksum` checks."""
    path = Path(path)
    if not checksum:
        return atomic_write(path, lambda tmp: torch.save(obj, tmp))
    sidecar = checksum_path(path)
    digest: list[str] = []

    def record(tmp: Path) -> None:  # both digests listed while the rename is pending
        digest.append(file_sha256(tmp))
        previous = (recorded_checksums(path) or [])[:2] if path.is_file() else []
        lines = [f"{d}  {path.name}\n" for d in (*digest, *previous)]
        write_text(sidecar, "".join(lines))

    atomic_write(path, lambda tmp: torch.save(obj, tmp), before_rename=record)
    write_text(sidecar, f"{digest[0]}  {path.name}\n")
    return path


class ChecksumMismatch(ValueError):
    """A file does not match the checksum recorded beside it: it is damaged or was changed."""


class ChecksumWarning(UserWarning):
    """A file has no checksum beside it (written by a version before checksums): used unverified."""


def verify_checksum(path: str | os.PathLike, remedy: str) -> bool:
    """Check ``path`` against its ``<name>.sha256`` before it is used.

    Returns True when it matches; warns (:class:`ChecksumWarning`) and returns False when there
    is no checksum file (a file of a version before checksums is used unverified). Raises
    :class:`ChecksumMismatch` naming the file, the expected and the found digest and ``remedy``
    (what to do) when it does not match or the checksum file does not read.
    """
    path = Path(path)
    expected = recorded_checksums(path)
    if expected is None:
        warnings.warn(
            f"{path} has no checksum file ({checksum_path(path).name}; written by a spikebridge "
            "version before checksums): it is used without verification",
            ChecksumWarning,
            stacklevel=2,
        )
        return False
    found = file_sha256(path)
    if found in expected:
        return True
    wanted = expected[0][:16] + "..." if expected else "none readable"
    raise ChecksumMismatch(
        f"{path} is damaged or was changed: its SHA-256 is {found[:16]}..., the checksum "
        f"recorded in {checksum_path(path).name} is {wanted}; {remedy}"
    )


def save_figure(path: str | os.PathLike, figure, **kwargs) -> Path:
    """Save a matplotlib figure (format from the suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format=fmt, **kwargs))


def finite(value: Any) -> Any:
    """``value`` made of JSON types only: tensors and NumPy values as numbers and lists, paths as
    strings, tuples as lists, and every non-finite float as None."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, torch.Tensor):
        return finite(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return finite(value.tolist())
    if hasattr(value, "item"):
        return finite(value.item())
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
