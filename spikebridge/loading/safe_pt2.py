"""Loading a ``torch.export`` archive (.pt2) without running code from it.

``torch.export.load`` is not safe on a file nobody vouches for: it unpickles weights marked
``use_pickle`` and custom objects with ``weights_only=False``, and it hands every symbolic size's
``expr_str`` to ``sympy.sympify``, which runs the text as Python. And a check made with one zip
reader proves nothing about another: Python's :mod:`zipfile` takes the last of two entries of one
name, torch's reader the first.

So a .pt2 is read once into memory and always checked by one strict reader of our own
(:class:`~.pt2_archive.Pt2Archive`: no duplicate, hidden or inconsistent entries). Without trust
the program is then read from it by :func:`~.pt2_program.read_program` (JSON, raw tensor bytes,
symbolic sizes checked against a grammar and never evaluated); only with ``trust=True``
(``--trust-checkpoint``) is it given to ``torch.export.load`` (:func:`load_program`).
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from torch.export import ExportedProgram

from .errors import ModelLoadError, UnsafeModelError
from .program_ir import Program
from .pt2_archive import Pt2Archive
from .pt2_program import TRUST_HINT, read_program

MAX_FILE_BYTES = 1 << 36


def read_archive(path: str | Path) -> tuple[bytes, Pt2Archive]:
    """The file's bytes and the strict archive over them; named errors for a bad archive."""
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ModelLoadError(f"{path}: {size} bytes, more than a model file holds")
        data = file.read_bytes()
    except OSError as err:
        raise ModelLoadError(f"{path}: cannot be read ({err.strerror or err})") from err
    return data, Pt2Archive(data, str(path))


def read_untrusted(path: str | Path) -> Program:
    """The program in ``path`` in neutral form, read without ``torch.export.load``: nothing in
    the file is unpickled or evaluated (see :mod:`.pt2_program`)."""
    _, archive = read_archive(path)
    return read_program(archive)


def load_program(path: str | Path, trust: bool = False) -> ExportedProgram:
    """The :class:`~torch.export.ExportedProgram` in ``path``, read by ``torch.export.load``.

    Only with ``trust=True``: torch's loader unpickles pickled payloads and evaluates symbolic
    sizes as Python, so it **runs code from the file**. Without trust this raises
    :class:`~spikebridge.loading.errors.UnsafeModelError`; :func:`spikebridge.load_model` reads
    such a file without torch's loader instead. The archive is checked by the strict reader
    first in both cases; a corrupt file is a :class:`~.errors.ModelLoadError`.
    """
    data, _ = read_archive(path)
    if not trust:
        raise UnsafeModelError(
            f"{path}: torch.export.load runs code a .pt2 can carry (pickles, symbolic sizes "
            "evaluated as Python); use spikebridge.load_model, which reads the program without "
            f"it, or, {TRUST_HINT}"
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


__all__ = ["TRUST_HINT", "load_program", "read_archive", "read_untrusted"]
