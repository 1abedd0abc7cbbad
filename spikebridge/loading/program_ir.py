"""The neutral form of an exported program that the operator handlers read.

Two readers produce it: :func:`from_exported` from an in-memory
:class:`torch.export.ExportedProgram` (one the user exported, or one ``torch.export.load`` read
from a trusted file), and :mod:`.pt2_program` from the JSON and raw tensor bytes of an
untrusted ``.pt2`` (nothing evaluated, nothing unpickled). Both give the same :class:`Program`:
nodes in graph order whose arguments are earlier nodes or plain values (ints, floats, bools,
strings, lists, None), each node's output :class:`TensorMeta` (shape with symbolic sizes as
:class:`SymSize`, dtype), the stored tensors by placeholder name, the one user input and the
user outputs. :mod:`.exported` maps it with one set of handlers (:mod:`.aten_ops`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Weight:
    """A constant tensor of the program (parameter, buffer or lifted constant), maybe transposed."""

    tensor: Tensor
    name: str


@dataclass(frozen=True)
class SymSize:
    """A symbolic size: its expression as text (checked, never evaluated) and example value."""

    expr: str
    hint: int | None = None

    def __str__(self) -> str:
        return self.expr


@dataclass(frozen=True)
class TensorMeta:
    """A node's output: shape (ints and :class:`SymSize`) and dtype."""

    shape: tuple[int | SymSize, ...]
    dtype: torch.dtype


@dataclass(frozen=True)
class Unreadable:
    """An argument of a kind the handlers do not read (a subgraph, a custom object, ...)."""

    kind: str


@dataclass(eq=False)
class ProgramNode:
    """One node: ``op`` is ``placeholder``, ``call_function`` or ``output`` (anything else is
    reported); ``target`` the operator's name (``conv2d``), ``qualified`` its full name
    (``aten.conv2d.default``); ``args``/``kwargs`` hold earlier nodes and plain values."""

    name: str
    op: str
    target: str = ""
    qualified: str = ""
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    val: TensorMeta | None = None
    module_stack: list[tuple[str, str]] = field(default_factory=list)
    stack_trace: str | None = None

    @property
    def inputs(self) -> list[ProgramNode]:
        """The earlier nodes this node reads (fx's ``all_input_nodes``)."""
        found: list[ProgramNode] = []

        def walk(value: Any) -> None:
            if isinstance(value, ProgramNode):
                if value not in found:
                    found.append(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)

        walk(self.args)
        walk(list(self.kwargs.values()))
        return found

    def __repr__(self) -> str:
        return f"ProgramNode({self.name!r}, {self.qualified or self.op})"


@dataclass
class Program:
    """A program in neutral form (module docstring)."""

    nodes: list[ProgramNode]
    weights: dict[str, Weight]
    user_inputs: list[str]
    outputs: list[ProgramNode]
    name: str = "ExportedModel"


def model_name(nodes: list[ProgramNode], default: str = "ExportedModel") -> str:
    """The user's model class name, from the module stack of the outermost module."""
    for node in nodes:
        for path, type_name in node.module_stack:
            if path == "":
                return str(type_name).rsplit(".", 1)[-1]
    return default


# -- from an in-memory ExportedProgram ------------------------------------------------------


def _meta(value: Any) -> TensorMeta | None:
    if not isinstance(value, Tensor):
        return None
    shape: list[int | SymSize] = []
    for size in value.shape:
        if isinstance(size, int):
            shape.append(int(size))
        else:
            hint = getattr(getattr(size, "node", None), "hint", None)
            shape.append(SymSize(str(size), int(hint) if hint is not None else None))
    return TensorMeta(tuple(shape), value.dtype)


def _target_names(target: Any) -> tuple[str, str]:
    if isinstance(target, torch._ops.OpOverload):
        return target._opname, str(target)
    name = getattr(target, "__name__", str(target))
    return name, f"{getattr(target, '__module__', '') or ''}.{name}".lstrip(".")


def from_exported(program: Any) -> Program:
    """The neutral form of an in-memory :class:`torch.export.ExportedProgram`."""
    from torch import fx
    from torch.export.graph_signature import InputKind, OutputKind

    sig = program.graph_signature
    state, constants = program.state_dict, program.constants
    weights: dict[str, Weight] = {}
    user_inputs: list[str] = []
    for spec in sig.input_specs:
        if spec.kind == InputKind.USER_INPUT:
            user_inputs.append(spec.arg.name)
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            tensor = state.get(spec.target)
            if tensor is None:
                tensor = constants.get(spec.target)  # non-persistent buffers
            weights[spec.arg.name] = Weight(tensor.detach(), spec.target)
        elif spec.kind == InputKind.CONSTANT_TENSOR:
            weights[spec.arg.name] = Weight(constants[spec.target].detach(), spec.target)
    made: dict[fx.Node, ProgramNode] = {}

    def convert(value: Any) -> Any:
        if isinstance(value, fx.Node):
            return made[value]
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, (int, float, bool, str)) or value is None:
            return value
        if isinstance(value, (torch.dtype, torch.device, torch.memory_format, torch.layout)):
            return str(value)  # options of copies and views, never read by the handlers
        return Unreadable(type(value).__name__)

    nodes: list[ProgramNode] = []
    outputs: list[ProgramNode] = []
    for node in program.graph.nodes:
        stack = [tuple(v) for v in (node.meta.get("nn_module_stack") or {}).values()]
        common = {
            "val": _meta(node.meta.get("val")),
            "module_stack": stack,
            "stack_trace": node.meta.get("stack_trace"),
        }
        if node.op == "output":
            specs = sig.output_specs
            results = node.args[0]
            user = [v for v, s in zip(results, specs) if s.kind == OutputKind.USER_OUTPUT]
            outputs = [convert(v) for v in user]
            continue
        if node.op == "get_attr":
            value = getattr(program.graph_module, node.target, None)
            if isinstance(value, Tensor):
                weights[node.name] = Weight(value, str(node.target))
                made[node] = ProgramNode(node.name, "placeholder", **common)
            else:
                made[node] = ProgramNode(node.name, "get_attr", **common)
            nodes.append(made[node])
            continue
        target, qualified = ("", "")
        if node.op == "call_function":
            target, qualified = _target_names(node.target)
        made[node] = ProgramNode(
            node.name,
            node.op,
            target,
            qualified,
            tuple(convert(list(node.args))),
            {k: convert(v) for k, v in node.kwargs.items()},
            **common,
        )
        nodes.append(made[node])
    return Program(nodes, weights, user_inputs, outputs, model_name(nodes))


__all__ = [
    "Program",
    "ProgramNode",
    "SymSize",
    "TensorMeta",
    "Unreadable",
    "Weight",
    "from_exported",
    "model_name",
]
