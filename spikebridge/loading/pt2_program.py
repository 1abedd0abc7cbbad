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

from .aten_calls import Weight
from .errors import ModelLoadError, UnsafeModelError
from .program_ir import Program, ProgramNode, SymSize, TensorMeta, Unreadable, model_name
from .pt2_archive import Pt2Archive
from .sym_expr import ExpressionError, check_expression

MAX_JSON_BYTES = 1 << 28
MAX_DIMS = 16
MAX_NUMEL = 1 << 34

TRUST_HINT = (
    "only if you trust the file's source, load it with trust=True (--trust-checkpoint): that "
    "unpickles these entries, which can run any code"
)

# torch._export.serde.schema.ScalarType -> dtype (the enum is part of the file format)
DTYPES: dict[int, torch.dtype] = {
    1: torch.uint8, 2: torch.int8, 3: torch.int16, 4: torch.int32, 5: torch.int64,
    6: torch.float16, 7: torch.float32, 8: torch.float64, 9: torch.complex32,
    10: torch.complex64, 11: torch.complex128, 12: torch.bool, 13: torch.bfloat16,
    28: torch.uint16, 34: torch.uint32, 35: torch.uint64,
}  # fmt: skip
STRIDED = 7  # torch._export.serde.schema.Layout.Strided
POSITIONAL, KEYWORD = 1, 2  # torch._export.serde.schema.ArgumentKind
_TARGET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,6}\Z")
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
        return _GraphReader(self, path, graph, signature, tensor_values, tensors).read()

    def _check_symbols(self, doc: dict, graph: dict) -> None:
        """Every symbolic expression of the top graph and its range constraints: in the
        grammar of :mod:`.sym_expr`, or refused (naming where it is); none is evaluated."""
        makers: dict[str, str] = {}
        for node in graph.get("nodes") or []:
            if isinstance(node, dict):
                for out in _output_names(node.get("outputs")):
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


def _output_names(outputs: Any) -> list[str]:
    names: list[str] = []
    for out in outputs or []:
        if not isinstance(out, dict):
            continue
        for kind, value in out.items():
            if kind == "as_tensors" and isinstance(value, list):
                names += [v.get("name") for v in value if isinstance(v, dict) and v.get("name")]
            elif isinstance(value, dict):
                name = value.get("name") or value.get("as_name")
                if isinstance(name, str):
                    names.append(name)
    return names


class _GraphReader:
    """The top graph of a serialized program -> :class:`~.program_ir.Program`."""

    def __init__(self, reader: _Reader, path, graph, signature, tensor_values, tensors) -> None:
        self.r = reader
        self.path = path
        self.graph = graph
        self.signature = signature
        self.tensor_values = tensor_values
        self.tensors = tensors
        self.made: dict[str, ProgramNode] = {}
        self.pending: dict[str, tuple[ProgramNode, int, dict]] = {}
        self.nodes: list[ProgramNode] = []

    def error(self, problem: str) -> ModelLoadError:
        return self.r.error(f"{self.path}: {problem}")

    # -- values -----------------------------------------------------------------------------

    def meta(self, name: str) -> TensorMeta | None:
        value = self.tensor_values.get(name)
        if not isinstance(value, dict):
            return None
        dtype = DTYPES.get(value.get("dtype"), torch.float32)  # type: ignore[arg-type]
        sizes = value.get("sizes")
        if not isinstance(sizes, list) or len(sizes) > MAX_DIMS:
            raise self.error(f"the sizes of {name!r} are not a list of at most {MAX_DIMS}")
        shape: list[int | SymSize] = []
        for size in sizes:
            size = size if isinstance(size, dict) else {}
            if type(size.get("as_int")) is int:
                shape.append(size["as_int"])
            elif isinstance(size.get("as_expr"), dict):
                expr = size["as_expr"]
                hint = expr.get("hint")
                hint = hint.get("as_int") if isinstance(hint, dict) else None
                shape.append(
                    SymSize(str(expr.get("expr_str")), hint if type(hint) is int else None)
                )
            else:
                raise self.error(f"a size of {name!r} is {size!r}")
        return TensorMeta(tuple(shape), dtype)

    def ref(self, name: Any, node: str) -> ProgramNode:
        if isinstance(name, str) and name in self.pending:
            source, index, common = self.pending.pop(name)
            getter = ProgramNode(
                name, "call_function", "getitem", "getitem", (source, index), {},
                self.meta(name), **common,
            )  # fmt: skip
            self.nodes.append(getter)
            self.made[name] = getter
        if not isinstance(name, str) or name not in self.made:
            raise self.error(f"node {node!r} reads {name!r}, which no earlier node makes")
        return self.made[name]

    def argument(self, arg: Any, node: str) -> Any:
        """A serialized argument (a one-key tagged union) as a plain value or earlier node."""
        if not isinstance(arg, dict) or len(arg) != 1:
            raise self.error(f"node {node!r} has an argument {str(arg)[:80]!r}")
        ((kind, value),) = arg.items()
        if kind == "as_none":
            return None
        if kind in ("as_tensor", "as_sym_int", "as_sym_bool", "as_sym_float", "as_optional_tensor"):
            return self._scalar_or_ref(kind, value, node)
        if kind in (
            "as_tensors",
            "as_sym_ints",
            "as_sym_bools",
            "as_sym_floats",
            "as_optional_tensors",
        ):
            if not isinstance(value, list):
                raise self.error(f"node {node!r}: {kind} is not a list")
            return [self._scalar_or_ref(kind, v, node) for v in value]
        if kind in ("as_int", "as_float", "as_bool", "as_string"):
            if not isinstance(value, (int, float, str)) or isinstance(value, bool) != (
                kind == "as_bool"
            ):
                raise self.error(f"node {node!r}: {kind} holds {value!r}")
            return value
        if kind in ("as_ints", "as_floats", "as_bools", "as_strings"):
            if not isinstance(value, list) or not all(
                isinstance(v, (int, float, str)) for v in value
            ):
                raise self.error(f"node {node!r}: {kind} holds {str(value)[:80]!r}")
            return list(value)
        if kind in ("as_scalar_type", "as_memory_format", "as_layout"):
            return Unreadable(kind) if not isinstance(value, int) else value
        if kind == "as_device" and isinstance(value, dict):
            return str(value.get("type"))  # options of copies, never read by the handlers
        return Unreadable(kind)

    def _scalar_or_ref(self, kind: str, value: Any, node: str) -> Any:
        if value is None:
            return None
        if isinstance(value, dict) and len(value) == 1:
            ((sub, inner),) = value.items()
            if sub == "name" and "tensor" in kind:
                return self.ref(inner, node)
            if sub == "as_name":
                return self.ref(inner, node)
            if sub in ("as_int", "as_float", "as_bool") and isinstance(inner, (int, float)):
                return inner
            if sub == "as_tensor" and isinstance(inner, dict):
                return self.ref(inner.get("name"), node)
            if sub == "as_none":
                return None
        raise self.error(f"node {node!r}: {kind} holds {str(value)[:80]!r}")

    # -- signature and nodes ----------------------------------------------------------------

    def inputs(self) -> tuple[dict[str, Weight], list[str]]:
        weights: dict[str, Weight] = {}
        user: list[str] = []
        specs = self.signature.get("input_specs") if isinstance(self.signature, dict) else None
        if not isinstance(specs, list):
            raise self.error("the graph signature lists no inputs")
        for spec in specs:
            if not isinstance(spec, dict) or len(spec) != 1:
                raise self.error(f"an input spec {str(spec)[:80]!r}")
            ((kind, body),) = spec.items()
            body = body if isinstance(body, dict) else {}
            arg = body.get("arg") if isinstance(body.get("arg"), dict) else {}
            if kind == "user_input":
                inner = arg.get("as_tensor") if isinstance(arg.get("as_tensor"), dict) else arg
                user.append(str(inner.get("name") or next(iter(arg), "a non-tensor input")))
                continue
            key = {
                "parameter": "parameter_name",
                "buffer": "buffer_name",
                "tensor_constant": "tensor_constant_name",
            }.get(kind)
            if key is None:
                continue  # tokens, constant inputs: no value the handlers read
            target = body.get(key)
            tensor = self.tensors.get(target) if isinstance(target, str) else None
            if tensor is None:
                raise self.error(f"the {kind} {target!r} has no stored tensor")
            weights[str(arg.get("name"))] = Weight(tensor, target)
        return weights, user

    def placeholders(self) -> None:
        for arg in self.graph.get("inputs") or []:
            names = _output_names([arg])
            if len(names) != 1:
                raise self.error(f"a graph input {str(arg)[:80]!r}")
            name = names[0]
            if name in self.made:
                raise self.error(f"two values are named {name!r}")
            node = ProgramNode(name, "placeholder", val=self.meta(name))
            self.made[name] = node
            self.nodes.append(node)

    def call(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise self.error(f"a node {str(data)[:80]!r}")
        target = data.get("target")
        outputs = data.get("outputs") if isinstance(data.get("outputs"), list) else []
        names = _output_names(outputs)
        name = str(data.get("name") or (names[0] if names else target))
        if not isinstance(target, str) or not _TARGET.match(target):
            raise self.error(f"node {name!r} has the target {str(target)[:80]!r}")
        op, qualified = _op_names(target)
        meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
        args, kwargs = self.call_arguments(op, qualified, data.get("inputs"), name)
        common = {"module_stack": _module_stack(meta.get("nn_module_stack")), "stack_trace": None}
        trace = meta.get("stack_trace")
        common["stack_trace"] = trace if isinstance(trace, str) else None
        single = len(outputs) == 1 and "as_tensors" not in outputs[0]
        node = ProgramNode(
            name,
            "call_function",
            op,
            qualified,
            tuple(args),
            kwargs,
            self.meta(names[0]) if single and names else None,
            **common,
        )
        self.nodes.append(node)
        if single:
            for out in names:
                self._bind(out, node)
            return
        items = outputs[0]["as_tensors"] if len(outputs) == 1 else outputs
        for index, item in enumerate(items):
            item_names = _output_names([item if len(outputs) != 1 else {"as_tensor": item}])
            for out in item_names:  # a getitem node is made when the value is read
                if out in self.made or out in self.pending:
                    raise self.error(f"two values are named {out!r}")
                self.pending[out] = (node, index, common)

    def _bind(self, name: str, node: ProgramNode) -> None:
        if name in self.made or name in self.pending:
            raise self.error(f"two values are named {name!r}")
        self.made[name] = node

    def call_arguments(self, op: str, qualified: str, inputs: Any, node: str):
        if not isinstance(inputs, list):
            raise self.error(f"node {node!r} has no argument list")
        named: list[tuple[str, int, Any]] = []
        for item in inputs:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise self.error(f"node {node!r} has an argument {str(item)[:80]!r}")
            kind = item.get("kind")
            named.append(
                (
                    item["name"],
                    kind if type(kind) is int else 0,
                    self.argument(item.get("arg"), node),
                )
            )
        if any(kind not in (POSITIONAL, KEYWORD) for _, kind, _ in named):
            named = _kinds_from_schema(qualified, named)
        args = [value for _, kind, value in named if kind == POSITIONAL]
        kwargs = {name: value for name, kind, value in named if kind == KEYWORD}
        return args, kwargs

    def read(self) -> Program:
        weights, user = self.inputs()
        self.placeholders()
        for data in self.graph.get("nodes") or []:
            self.call(data)
        specs = self.signature.get("output_specs") or []
        results = self.graph.get("outputs") or []
        if len(specs) != len(results):
            raise self.error(f"{len(results)} graph outputs but {len(specs)} output specs")
        outputs: list[ProgramNode] = []
        for spec, result in zip(specs, results):
            if isinstance(spec, dict) and "user_output" in spec:
                names = _output_names([result])
                if len(names) != 1:
                    raise self.error(f"the output {str(result)[:80]!r} is not one tensor")
                outputs.append(self.ref(names[0], "output"))
        return Program(self.nodes, weights, user, outputs, model_name(self.nodes))


def _op_names(target: str) -> tuple[str, str]:
    """(operator name, qualified name): ``torch.ops.aten.conv2d.default`` -> (``conv2d``,
    ``aten.conv2d.default``); targets outside ``aten`` keep their full name (unsupported)."""
    parts = target.split(".")
    if parts[:2] == ["torch", "ops"] and len(parts) >= 4:
        qualified = ".".join(parts[2:])
        return (parts[3] if parts[2] == "aten" else qualified), qualified
    return parts[-1], target


def _module_stack(text: Any) -> list[tuple[str, str]]:
    """``key,path,type;key,path,type`` (torch's serialized nn_module_stack) -> [(path, type)]."""
    if not isinstance(text, str):
        return []
    stack = []
    for item in text.split(";")[:64]:
        key_rest = item.split(",", 1)
        if len(key_rest) == 2 and "," in key_rest[1]:
            path, type_name = key_rest[1].rsplit(",", 1)
            stack.append((path[:200], type_name[:200]))
    return stack


def _kinds_from_schema(qualified: str, named: list[tuple[str, int, Any]]):
    """Arguments without a kind (files from torch before 2.6): positional while they follow the
    operator's schema in order and are not keyword-only, keywords after."""
    parts = qualified.split(".")
    schema = None
    if len(parts) == 3 and parts[0] == "aten":
        packet = getattr(torch.ops.aten, parts[1], None)
        overload = getattr(packet, parts[2], None) if packet is not None else None
        schema = getattr(overload, "_schema", None)
    order = [a.name for a in schema.arguments if not a.kwarg_only] if schema else []
    out = []
    position = 0
    for name, _, value in named:
        if position < len(order) and order[position] == name:
            out.append((name, POSITIONAL, value))
            position += 1
        else:
            out.append((name, KEYWORD, value))
    return out


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
