"""An untrusted ``.pt2`` read without ``torch.export.load``: JSON and raw bytes, nothing run.

``torch.export.save`` writes (torch 2.6 and later; ``<root>`` is one folder named after the
file)::

    <root>/archive_format                         "pt2"
    <root>/byteorder                              "little"
    <root>/models/<model>.json                    the program (torch._export.serde schema)
    <root>/data/weights/<model>_weights_config.json    per weight: file, dtype, sizes, strides,
    <root>/data/weights/weight_N                        storage offset, use_pickle; raw bytes
    <root>/data/constants/<model>_constants_config.json  the same for constants (non-persistent
    <root>/data/constants/tensor_N                       buffers, lifted tensors)
    <root>/data/sample_inputs/<model>.pt          a pickle of the example inputs (never read)

:func:`read_program` reads that with :class:`~.pt2_archive.Pt2Archive`, ``json`` and
``torch.frombuffer`` only: the graph's nodes (targets as names, arguments from their tagged
unions), every tensor's metadata, the graph signature, and each weight rebuilt from its bytes
with its dtype, sizes, strides and storage offset checked against the bytes present. A weight or
constant stored as a pickle (``use_pickle``, custom or opaque objects) or a legacy pickled
payload is refused (:class:`~.errors.UnsafeModelError`, naming the entry: only
``--trust-checkpoint`` reads it, with torch's loader); every symbolic size must match the grammar
of :mod:`.sym_expr` (never evaluated). The result is the neutral
:class:`~.program_ir.Program` the trusted route also produces, so one set of handlers maps both.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import torch

from .errors import ModelLoadError, UnsafeModelError
from .program_ir import Program
from .pt2_archive import Pt2Archive
from .pt2_graph import DTYPES, MAX_DIMS, GraphReader, output_names
from .sym_expr import ExpressionError, check_expression

MAX_JSON_BYTES = 1 << 28
MAX_NUMEL = 1 << 34

TRUST_HINT = (
    "only if you trust the file's source, load it with trust=True (--trust-checkpoint): that "
    "unpickles these entries, which can run any code"
)

STRIDED = 7  # torch._export.serde.schema.Layout.Strided
_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")


class _Reader:
    """One untrusted archive being read; every error names ``source``."""

    def __init__(self, archive: Pt2Archive) -> None:
        self.archive = archive
        self.source = archive.source
        self.root = self._root()
        self._files: dict[str, torch.Tensor] = {}

    def error(self, problem: str) -> ModelLoadError:
        return ModelLoadError(
            f"{self.source}: {problem}. A program written by torch.export.save does not have "
            "this; the file is damaged or was altered: save the program again"
        )

    # -- layout -----------------------------------------------------------------------------

    def _root(self) -> str:
        names = self.archive.names
        roots = [
            n[: -len("archive_format")] for n in names if n.rsplit("/", 1)[-1] == "archive_format"
        ]
        if not roots:
            legacy = [n for n in names if n.endswith("serialized_exported_program.json")]
            if legacy:
                raise UnsafeModelError(
                    f"{self.source}: a .pt2 in torch's early layout ({legacy[0]}), whose weights "
                    "are a pickle (serialized_state_dict.pt); it is not read without trust. "
                    f"Save the program again with a current torch.export.save, or, {TRUST_HINT}"
                )
            raise self.error("no archive_format entry (not a torch.export archive)")
        if len(roots) != 1 or roots[0] not in ("",) and roots[0].count("/") != 1:
            raise self.error(f"archive_format at {len(roots)} places: {', '.join(roots)}")
        root = roots[0]
        fmt = bytes(self.archive.read(f"{root}archive_format", 64)).strip()
        if fmt != b"pt2":
            raise self.error(f"archive_format is {fmt[:20]!r}, not b'pt2'")
        order_name = f"{root}byteorder"
        if order_name in self.archive.entries:
            order = bytes(self.archive.read(order_name, 64)).strip()
            if order != sys.byteorder.encode():
                raise ModelLoadError(
                    f"{self.source}: the weights are stored {order.decode('ascii', 'replace')}-"
                    f"endian and this machine is {sys.byteorder}-endian; save the program on "
                    "this kind of machine"
                )
        return root

    def json(self, name: str) -> Any:
        data = self.archive.read(name, MAX_JSON_BYTES)
        try:
            return json.loads(bytes(data).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            raise self.error(f"{name} is not valid JSON ({err})") from err

    # -- payloads ---------------------------------------------------------------------------

    def payloads(self, model: str) -> dict[str, torch.Tensor]:
        """Weights and constants by name (the state dict's and constants' names)."""
        root = self.root
        for folder in ("weights", "constants"):
            legacy = f"{root}data/{folder}/{model}.pt"
            if legacy in self.archive.entries:
                raise UnsafeModelError(
                    f"{self.source}: the {folder} are stored as a pickle ({legacy}, torch's "
                    "legacy layout) and are not read without trust. Save the program again with "
                    f"a current torch.export.save, or, {TRUST_HINT}"
                )
        tensors: dict[str, torch.Tensor] = {}
        unsafe: list[str] = []
        for folder, config_name in (
            ("weights", f"{root}data/weights/{model}_weights_config.json"),
            ("constants", f"{root}data/constants/{model}_constants_config.json"),
        ):
            if config_name not in self.archive.entries:
                if folder == "weights":
                    raise self.error(f"{config_name} is missing")
                continue
            config = self.json(config_name)
            entries = config.get("config") if isinstance(config, dict) else None
            if not isinstance(entries, dict):
                raise self.error(f"{config_name} has no 'config' table")
            for fqn, meta in entries.items():
                file = meta.get("path_name") if isinstance(meta, dict) else None
                if not isinstance(file, str) or not _FILE.match(file):
                    raise self.error(f"{config_name}: entry {fqn!r} names no plain file")
                path = f"{root}data/{folder}/{meta['path_name']}"
                kind = "constant" if folder == "constants" else "weight"
                if meta["path_name"].startswith(("custom_obj_", "opaque_obj_")):
                    unsafe.append(f"{path} ({kind} {fqn!r} is a pickled object)")
                elif meta.get("use_pickle") is not False:
                    unsafe.append(f"{path} ({kind} {fqn!r} stored as a pickle)")
                else:
                    tensors[fqn] = self.tensor(path, fqn, meta.get("tensor_meta"))
        if unsafe:
            raise UnsafeModelError(
                f"{self.source}: refused, because loading it would unpickle code-capable data: "
                f"{'; '.join(unsafe)}. A program saved by torch.export.save from ordinary "
                f"tensors has none; {TRUST_HINT}"
            )
        return tensors

    def _ints(self, values: Any, what: str) -> list[int]:
        if not isinstance(values, list) or len(values) > MAX_DIMS:
            raise self.error(f"{what} is not a list of at most {MAX_DIMS} sizes")
        out = []
        for value in values:
            got = value.get("as_int") if isinstance(value, dict) else None
            if type(got) is not int or got < 0 or got > MAX_NUMEL:
                raise self.error(f"{what} holds {value!r}, not a plain size")
            out.append(got)
        return out

    def tensor(self, path: str, fqn: str, meta: Any) -> torch.Tensor:
        """The tensor ``fqn`` rebuilt from the raw bytes of ``path`` and its metadata."""
        what = f"the metadata of {fqn!r} ({path})"
        if not isinstance(meta, dict):
            raise self.error(f"{what} is missing")
        dtype = DTYPES.get(meta.get("dtype"))  # type: ignore[arg-type]
        if dtype is None:
            raise self.error(f"{what}: dtype code {meta.get('dtype')!r} is not a tensor dtype")
        if meta.get("layout", STRIDED) != STRIDED:
            raise self.error(f"{what}: not a dense (strided) tensor")
        sizes = self._ints(meta.get("sizes"), f"{what}: sizes")
        strides = self._ints(meta.get("strides"), f"{what}: strides")
        (offset,) = self._ints([meta.get("storage_offset", {"as_int": 0})], f"{what}: offset")
        if len(strides) != len(sizes):
            raise self.error(f"{what}: {len(sizes)} sizes but {len(strides)} strides")
        flat = self._file(path, dtype)
        if 0 in sizes:
            return torch.zeros(sizes, dtype=dtype)
        if flat.numel() == 0:  # torch.export.save writes no bytes for a tensor without storage
            return torch.zeros(sizes, dtype=dtype)
        extent = offset + sum((s - 1) * st for s, st in zip(sizes, strides)) + 1
        if extent > flat.numel():
            raise self.error(
                f"{what}: sizes {sizes}, strides {strides} and offset {offset} reach element "
                f"{extent} of a file holding {flat.numel()}"
            )
        return torch.as_strided(flat, sizes, strides, offset).clone()

    def _file(self, path: str, dtype: torch.dtype) -> torch.Tensor:
        key = f"{path}\0{dtype}"
        if key not in self._files:
            data = self.archive.read(path)
            size = torch.empty((), dtype=dtype).element_size()
            if len(data) % size:
                raise self.error(f"{path} holds {len(data)} bytes, not whole {dtype} elements")
            if len(data) == 0:
                self._files[key] = torch.empty(0, dtype=dtype)
            else:
                self._files[key] = torch.frombuffer(bytearray(data), dtype=dtype)
        return self._files[key]

    # -- the program ------------------------------------------------------------------------

    def model_file(self) -> tuple[str, str]:
        prefix = f"{self.root}models/"
        models = [n for n in self.archive.names if n.startswith(prefix) and n.endswith(".json")]
        models = [n for n in models if "/" not in n[len(prefix) :]]
        if len(models) != 1:
            raise self.error(f"{len(models)} programs under {prefix} (one is needed)")
        return models[0], models[0][len(prefix) : -len(".json")]

    def program(self) -> Program:
        path, model = self.model_file()
        tensors = self.payloads(model)
        doc = self.json(path)
        try:
            gm = doc["graph_module"]
            graph, signature = gm["graph"], gm["signature"]
            tensor_values = graph["tensor_values"]
        except (KeyError, TypeError) as err:
            raise self.error(f"{path} lacks the program's graph ({err})") from err
        if not isinstance(tensor_values, dict):
            raise self.error(f"{path}: tensor_values is not a table")
        self._check_symbols(doc, graph)
        return GraphReader(self, path, graph, signature, tensor_values, tensors).read()

    def _check_symbols(self, doc: dict, graph: dict) -> None:
        """Every symbolic expression of the top graph and its range constraints: in the
        grammar of :mod:`.sym_expr`, or refused (naming where it is); none is evaluated."""
        makers: dict[str, str] = {}
        for node in graph.get("nodes") or []:
            if isinstance(node, dict):
                for out in output_names(node.get("outputs")):
                    makers[out] = str(node.get("name") or out)

        def check(expr: Any, where: str) -> None:
            try:
                check_expression(expr)
            except ExpressionError as err:
                shown = repr(expr)[:300]
                raise ModelLoadError(
                    f"{self.source}: {where}: the symbolic size {shown} is not a symbolic shape "
                    f"(symbol names and integer arithmetic only: {err}); refused without "
                    "evaluating it. torch.export.save writes only such expressions, so the file "
                    "was altered or written by something else; torch's own loader "
                    "(--trust-checkpoint) would run this text as Python"
                ) from None

        def walk(value: Any, where: str) -> None:
            if isinstance(value, dict):
                if "expr_str" in value:
                    check(value["expr_str"], where)
                for item in value.values():
                    walk(item, where)
            elif isinstance(value, list):
                for item in value:
                    walk(item, where)

        for table in ("tensor_values", "sym_int_values", "sym_bool_values", "sym_float_values"):
            for name, value in (graph.get(table) or {}).items():
                where = f"node {makers.get(name, name)!r}" + (
                    f" (value {name!r})" if makers.get(name, name) != name else ""
                )
                walk(value, where)
        for key in doc.get("range_constraints") or {}:
            check(key, f"the range constraint {str(key)[:60]!r}")


def read_program(archive: Pt2Archive) -> Program:
    """The program of an untrusted ``.pt2`` in neutral form, read without unpickling or
    evaluating anything (module docstring); named errors for anything refused."""
    try:
        return _Reader(archive).program()
    except ModelLoadError:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError) as err:
        text = (str(err).splitlines() or [""])[0][:200]
        raise ModelLoadError(
            f"{archive.source}: a malformed program ({type(err).__name__}: {text}). A program "
            "written by torch.export.save does not have this; the file is damaged or was "
            "altered: save the program again"
        ) from err


__all__ = ["DTYPES", "TRUST_HINT", "read_program"]
