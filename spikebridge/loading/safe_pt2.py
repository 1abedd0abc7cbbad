"""Loading a ``torch.export`` archive (.pt2) without running code from it.

A .pt2 file is a zip archive: the program's graph as JSON (``models/<name>.json``), raw tensor
bytes (``data/weights/weight_N``, ``data/constants/tensor_N``) described by JSON configs, and
pickles: weights or constants marked ``use_pickle`` (and custom or opaque objects), which
``torch.export.load`` unpickles with ``weights_only=False``, and the sample inputs
(``data/sample_inputs/<name>.pt``), which it retries with ``weights_only=False`` when the safe
load fails. Unpickling with ``weights_only=False`` runs whatever code the pickle names.

:func:`load_program` reads the file once into memory, lists every entry that would need such
unpickling (:func:`unsafe_entries`) and refuses the file, naming them, unless ``trust=True``;
a file that passes is then loaded from the same bytes, so nothing in it is unpickled unsafely.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.export import ExportedProgram

from .errors import ModelLoadError, UnsafeModelError

TRUST_HINT = (
    "only if you trust the file's source, load it with trust=True (--trust-checkpoint): that "
    "unpickles these entries, which can run any code"
)


@dataclass(frozen=True)
class UnsafeEntry:
    """An archive entry that loading would unpickle with ``weights_only=False``, and why."""

    entry: str
    reason: str

    def __str__(self) -> str:
        return f"{self.entry} ({self.reason})"


def _safe_torch_load(data: bytes) -> bool:
    """Whether ``data`` unpickles with ``weights_only=True`` (tensors and plain containers only)."""
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        return False
    return True


def _archive_root(names: list[str]) -> str | None:
    for name in names:
        if name == "archive_format" or name.endswith("/archive_format"):
            return name[: -len("archive_format")]
    return None


def _config_entries(archive: zipfile.ZipFile, root: str, config_path: str, folder: str):
    try:
        config = json.loads(archive.read(config_path)).get("config", {})
    except (KeyError, ValueError, AttributeError) as err:
        raise ModelLoadError(f"{config_path} is not a valid payload config ({err})") from err
    for fqn, meta in config.items():
        path = f"{root}{folder}{meta.get('path_name', '')}"
        yield fqn, meta, path


def unsafe_entries(archive: zipfile.ZipFile) -> list[UnsafeEntry]:
    """Every entry of a .pt2 archive that ``torch.export.load`` would unpickle unsafely."""
    names = archive.namelist()
    root = _archive_root(names)
    found: list[UnsafeEntry] = []
    if root is None:
        # the pre-2.8 layout: serialized_*.json payloads deserialised with a weights_only retry
        for name in names:
            base = name.rsplit("/", 1)[-1]
            if base.startswith("serialized_") and base != "serialized_exported_program.json":
                if not _safe_torch_load(archive.read(name)):
                    found.append(UnsafeEntry(name, "a pickle that needs full unpickling"))
        return found
    for name in names:
        if not name.startswith(root):
            continue
        rel = name[len(root) :]
        if rel.startswith("data/weights/") and rel.endswith("_weights_config.json"):
            for fqn, meta, path in _config_entries(archive, root, name, "data/weights/"):
                if meta.get("use_pickle"):
                    found.append(UnsafeEntry(path, f"weight {fqn!r} stored as a pickle"))
        elif rel.startswith("data/constants/") and rel.endswith("_constants_config.json"):
            for fqn, meta, path in _config_entries(archive, root, name, "data/constants/"):
                base = str(meta.get("path_name", ""))
                if base.startswith(("custom_obj_", "opaque_obj_")):
                    found.append(UnsafeEntry(path, f"constant {fqn!r} is a pickled object"))
                elif meta.get("use_pickle"):
                    found.append(UnsafeEntry(path, f"constant {fqn!r} stored as a pickle"))
        elif rel.startswith("data/sample_inputs/") or (
            rel.startswith(("data/weights/", "data/constants/")) and rel.endswith(".pt")
        ):
            if not _safe_torch_load(archive.read(name)):
                what = "sample inputs" if "sample_inputs" in rel else "legacy payload"
                found.append(UnsafeEntry(name, f"{what} pickled with more than tensors"))
    return found


def read_archive(path: str | Path) -> tuple[bytes, zipfile.ZipFile]:
    """The file's bytes and the zip archive over them; a named error when it is not a zip."""
    data = Path(path).read_bytes()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as err:
        raise ModelLoadError(
            f"{path}: not a readable .pt2 archive (a zip file): {err}. The file is corrupt or "
            "truncated; save the program again with torch.export.save"
        ) from err
    except Exception as err:  # zlib errors on a damaged member
        raise ModelLoadError(f"{path}: damaged .pt2 archive ({err}); save it again") from err
    if bad is not None:
        raise ModelLoadError(
            f"{path}: the archive entry {bad} is damaged (CRC mismatch); save the program again"
        )
    return data, archive


def load_program(path: str | Path, trust: bool = False) -> ExportedProgram:
    """The :class:`~torch.export.ExportedProgram` saved in ``path`` by ``torch.export.save``.

    Without ``trust``, a file with pickled payloads is refused before anything in it is
    unpickled (:class:`~spikebridge.loading.errors.UnsafeModelError` naming each entry). With
    ``trust=True`` the file is loaded by ``torch.export.load`` as it is: its pickles run code.
    A corrupt file is a :class:`~spikebridge.loading.errors.ModelLoadError`.
    """
    data, archive = read_archive(path)
    with archive:
        if not trust:
            unsafe = unsafe_entries(archive)
            if unsafe:
                listed = "; ".join(str(e) for e in unsafe)
                raise UnsafeModelError(
                    f"{path}: refused, because loading it would unpickle code-capable data: "
                    f"{listed}. A program saved by torch.export.save from ordinary tensors has "
                    f"none; {TRUST_HINT}"
                )
    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as err:
        raise ModelLoadError(
            f"{path}: not a loadable torch.export program ({type(err).__name__}: {err}). Save it "
            "with torch.export.save(torch.export.export(model.eval(), (example,)), path)"
        ) from err
    if not isinstance(program, ExportedProgram):
        raise ModelLoadError(f"{path}: holds a {type(program).__name__}, not an ExportedProgram")
    return program


__all__ = ["TRUST_HINT", "UnsafeEntry", "load_program", "read_archive", "unsafe_entries"]
