"""A torch.export program's ATen graph -> a GraphModule of standard ``torch.nn`` modules.

An :class:`torch.export.ExportedProgram` is an fx graph of ATen operators whose weights are inputs
(placeholders) named in its graph signature. :func:`program_to_module` maps the operators a CNN
uses onto the modules :func:`spikebridge.convert.prepare` works with (see
:mod:`spikebridge.loading.builder`), in both forms a program comes in: the default one
(``aten.conv2d``, ``aten.linear``, ``aten.batch_norm``) and the core-ATen one after
``run_decompositions()`` (``aten.convolution``, ``aten.addmm`` of a transposed weight,
``aten._native_batch_norm_legit_no_training``, ``aten.max_pool2d_with_indices``). This module
reads the program (its weights, its one input and output) and walks its graph; the operators
themselves are mapped in :mod:`spikebridge.loading.aten_layers` and
:mod:`spikebridge.loading.aten_ops`.

An operator outside that set is an error naming it and the user's source line (the node's
``stack_trace``), never converted into something else.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, fx
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind

from .aten_calls import Weight, arg, hint, op_name
from .aten_ops import HANDLERS, IGNORED
from .builder import BROKEN, GraphBuilder, Site
from .errors import ModelLoadError
from .problems import user_source_line


def _layer_name(node: fx.Node, kinds: tuple[type, ...] = ()) -> str | None:
    """The user's module path for a node inside a module of one of ``kinds`` (e.g. ``features.0``)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return None
    path, type_name = list(stack.values())[-1]
    if not path:
        return None
    if kinds and not any(type_name.endswith(k.__name__) for k in kinds):
        return None
    return path


class ProgramMapper:
    """Walks an exported program's graph and rebuilds each node with :data:`.aten_ops.HANDLERS`;
    holds what the handlers read: earlier values, stored weights and the user's layer names."""

    def __init__(self, program: ExportedProgram, name: str) -> None:
        self.program = program
        self.builder = GraphBuilder(name)
        self.env: dict[fx.Node, Any] = {}

    # -- inputs -----------------------------------------------------------------------------

    def weights(self) -> None:
        sig = self.program.graph_signature
        state = self.program.state_dict
        constants = self.program.constants
        user_inputs = []
        for spec in sig.input_specs:
            if spec.kind == InputKind.USER_INPUT:
                user_inputs.append(spec.arg.name)
            elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
                tensor = state.get(spec.target)
                if tensor is None:
                    tensor = constants.get(spec.target)  # non-persistent buffers
                self._weights[spec.arg.name] = Weight(tensor.detach(), spec.target)
            elif spec.kind == InputKind.CONSTANT_TENSOR:
                self._weights[spec.arg.name] = Weight(constants[spec.target].detach(), spec.target)
        if len(user_inputs) != 1:
            raise ModelLoadError(
                f"{self.builder.name}: the program takes {len(user_inputs)} inputs "
                f"({', '.join(user_inputs) or 'none'}); conversion needs a model of one image "
                "input [B, C, H, W]"
            )
        self._user_input = user_inputs[0]

    def run(self) -> fx.GraphModule:
        self._weights: dict[str, Weight] = {}
        self.weights()
        graph = self.program.graph
        for node in graph.nodes:
            if node.op == "placeholder":
                self.env[node] = self.placeholder(node)
            elif node.op == "call_function":
                self.env[node] = self.call(node)
            elif node.op == "output":
                self.output(node)
            elif node.op == "get_attr":
                self.env[node] = Weight(getattr(self.program.graph_module, node.target), node.name)
            else:
                self.env[node] = self.builder.problem(
                    self.site(node), f"an fx {node.op} node", "export the model with torch.export"
                )
        return self.builder.build()

    def placeholder(self, node: fx.Node) -> Any:
        if node.name in self._weights:
            return self._weights[node.name]
        if node.name != self._user_input:
            return None
        val = node.meta.get("val")
        if not isinstance(val, Tensor):
            raise ModelLoadError(f"{self.builder.name}: the input {node.name!r} is not a tensor")
        shape = [hint(s) for s in val.shape]
        if shape:
            shape[0] = max(shape[0], 2)
        example = torch.rand(shape, dtype=val.dtype if val.dtype.is_floating_point else None)
        return self.builder.input(node.name, example)

    def output(self, node: fx.Node) -> None:
        specs = self.program.graph_signature.output_specs
        user = [v for v, s in zip(node.args[0], specs) if s.kind == OutputKind.USER_OUTPUT]
        self.builder.output_of([self.env[v] for v in user], "the program")

    # -- dispatch ---------------------------------------------------------------------------

    def site(self, node: fx.Node) -> Site:
        op = str(node.target) if node.op == "call_function" else node.op
        return Site(node.name, op, user_source_line(node.meta.get("stack_trace")))

    def call(self, node: fx.Node) -> Any:
        name = op_name(node.target)
        if name in IGNORED:
            return None
        handler = HANDLERS.get(name)
        site = self.site(node)
        if handler is None:  # reported even after a broken input: every such op is listed
            return self.builder.problem(site, f"unsupported operation {name}")
        if any(self.env.get(n) is BROKEN for n in node.all_input_nodes):
            return BROKEN
        return handler(self, node, site)

    def value(self, arg: Any) -> Any:
        if isinstance(arg, fx.Node):
            return self.env[arg]
        if isinstance(arg, (list, tuple)):
            return [self.value(a) for a in arg]
        return arg

    def tensor_input(self, node: fx.Node, site: Site) -> fx.Node | None:
        x = self.value(node.args[0])
        return x if isinstance(x, fx.Node) else None

    def weight(self, arg: Any) -> Tensor | None:
        value = self.value(arg)
        if value is None:
            return None
        if isinstance(value, Weight):
            return value.tensor
        return None

    def need_weight(self, node: fx.Node, site: Site, index: int, name: str, optional=False):
        given = arg(node, index, name)
        if given is None and optional:
            return None, True
        tensor = self.weight(given)
        if tensor is None:
            self.builder.problem(
                site,
                f"its {name} is computed inside the graph, not a stored tensor",
                "keep weights as parameters of the layer (no weight standardisation or "
                "reparametrisation in forward)",
            )
            return None, False
        return tensor, True

    def layer_name(self, node: fx.Node, *kinds: type) -> str:
        return _layer_name(node, kinds) or node.name


def program_to_module(program: ExportedProgram, name: str = "ExportedModel") -> fx.GraphModule:
    """The GraphModule of standard modules that computes what ``program`` computes.

    ``program``'s single input is an image batch [B, C, H, W] (any B: the batch axis of every
    reshape is left free); its output [B, K]. Raises
    :class:`~spikebridge.loading.errors.UnsupportedOperationError` listing every operation that
    cannot be rebuilt, with the user's source line, and
    :class:`~spikebridge.loading.errors.ModelLoadError` for a program of several inputs or outputs.
    """
    return ProgramMapper(program, name).run()


__all__ = ["program_to_module", "user_source_line"]
