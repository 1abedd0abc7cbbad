"""The graph of an untrusted ``.pt2``'s serialized program (the torch._export.serde schema, as
JSON) -> the neutral :class:`~.program_ir.Program`: nodes with their targets as names (never
imported), arguments from their tagged unions (placed by torch's op schema where an older file
gives no argument kind), tensor metadata and the graph signature. The archive and the weights'
bytes are :mod:`.pt2_program`'s; this module reads only the parsed JSON it is given."""

from __future__ import annotations

import re
from typing import Any

import torch

from .aten_calls import Weight
from .errors import ModelLoadError
from .program_ir import Program, ProgramNode, SymSize, TensorMeta, Unreadable, model_name

MAX_DIMS = 16
# torch._export.serde.schema.ScalarType -> dtype (the enum is part of the file format)
DTYPES: dict[int, torch.dtype] = {
    1: torch.uint8, 2: torch.int8, 3: torch.int16, 4: torch.int32, 5: torch.int64,
    6: torch.float16, 7: torch.float32, 8: torch.float64, 9: torch.complex32,
    10: torch.complex64, 11: torch.complex128, 12: torch.bool, 13: torch.bfloat16,
    28: torch.uint16, 34: torch.uint32, 35: torch.uint64,
}  # fmt: skip
POSITIONAL, KEYWORD = 1, 2  # torch._export.serde.schema.ArgumentKind
_TARGET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,6}\Z")


def output_names(outputs: Any) -> list[str]:
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


class GraphReader:
    """The top graph of a serialized program -> :class:`~.program_ir.Program`; ``reader`` is the
    archive's reader (:mod:`.pt2_program`), whose ``error`` names the file."""

    def __init__(self, reader: Any, path, graph, signature, tensor_values, tensors) -> None:
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
            names = output_names([arg])
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
        names = output_names(outputs)
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
            item_names = output_names([item if len(outputs) != 1 else {"as_tensor": item}])
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
                names = output_names([result])
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


__all__ = ["DTYPES", "MAX_DIMS", "GraphReader", "output_names"]
