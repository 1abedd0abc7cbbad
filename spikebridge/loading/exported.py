"""A torch.export program's ATen graph -> a GraphModule of standard ``torch.nn`` modules.

An :class:`torch.export.ExportedProgram` is an fx graph of ATen operators whose weights are inputs
(placeholders) named in its graph signature. :func:`program_to_module` maps the operators a CNN
uses onto the modules :func:`spikebridge.convert.prepare` works with (see
:mod:`spikebridge.loading.builder`), in both forms a program comes in: the default one
(``aten.conv2d``, ``aten.linear``, ``aten.batch_norm``) and the core-ATen one after
``run_decompositions()`` (``aten.convolution``, ``aten.addmm`` of a transposed weight,
``aten._native_batch_norm_legit_no_training``, ``aten.max_pool2d_with_indices``). Both
readers of a program give it in one neutral form (:mod:`.program_ir`): an in-memory
``ExportedProgram`` and an untrusted .pt2 read without torch's loader (:mod:`.pt2_program`);
this module walks that form's graph; the operators
themselves are mapped in :mod:`spikebridge.loading.aten_layers` and
:mod:`spikebridge.loading.aten_ops`.

An operator outside that set is an error naming it and the user's source line (the node's
``stack_trace``), never converted into something else.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, fx

from .aten_calls import Unreadable, Weight, arg, hint
from .aten_ops import HANDLERS, IGNORED
from .builder import BROKEN, GraphBuilder, Site
from .errors import ModelLoadError
from .problems import user_source_line
from .program_ir import Program, ProgramNode, from_exported

MAX_EXAMPLE_NUMEL = 1 << 27
"""The most values the example input (two images) may hold while the graph is rebuilt."""


def _layer_name(node: ProgramNode, kinds: tuple[type, ...] = ()) -> str | None:
    """The user's module path for a node inside a module of one of ``kinds`` (e.g. ``features.0``)."""
    if not node.module_stack:
        return None
    path, type_name = node.module_stack[-1]
    if not path:
        return None
    if kinds and not any(str(type_name).endswith(k.__name__) for k in kinds):
        return None
    return path


class ProgramMapper:
    """Walks a program's graph (:class:`~spikebridge.loading.program_ir.Program`, from either
    reader) and rebuilds each node with :data:`.aten_ops.HANDLERS`; holds what the handlers
    read: earlier values, stored weights and the user's layer names."""

    def __init__(self, program: Program, name: str | None = None) -> None:
        self.program = program
        self.builder = GraphBuilder(name or program.name)
        self.env: dict[ProgramNode, Any] = {}
        self._weights: dict[str, Weight] = dict(program.weights)

    def run(self) -> fx.GraphModule:
        user_inputs = self.program.user_inputs
        if len(user_inputs) != 1:
            raise ModelLoadError(
                f"{self.builder.name}: the program takes {len(user_inputs)} inputs "
                f"({', '.join(user_inputs) or 'none'}); conversion needs a model of one image "
                "input [B, C, H, W]"
            )
        self._user_input = user_inputs[0]
        for node in self.program.nodes:
            if node.op == "placeholder":
                self.env[node] = self.placeholder(node)
            elif node.op == "call_function":
                self.env[node] = self.call(node)
            else:
                self.env[node] = self.builder.problem(
                    self.site(node), f"an fx {node.op} node", "export the model with torch.export"
                )
        self.builder.output_of([self.env[v] for v in self.program.outputs], "the program")
        return self.builder.build()

    def placeholder(self, node: ProgramNode) -> Any:
        if node.name in self._weights:
            return self._weights[node.name]
        if node.name != self._user_input:
            return None
        val = node.val
        if val is None:
            raise ModelLoadError(f"{self.builder.name}: the input {node.name!r} is not a tensor")
        shape = [hint(s) for s in val.shape]
        if shape:
            shape[0] = max(shape[0], 2)
        if any(s < 0 for s in shape) or math.prod(shape) > MAX_EXAMPLE_NUMEL:
            raise ModelLoadError(
                f"{self.builder.name}: the input {node.name!r} has the shape {shape}; conversion "
                "needs an image batch [B, C, H, W] of at most "
                f"{MAX_EXAMPLE_NUMEL} values for two images"
            )
        example = torch.rand(shape, dtype=val.dtype if val.dtype.is_floating_point else None)
        return self.builder.input(node.name, example)

    # -- dispatch ---------------------------------------------------------------------------

    def site(self, node: ProgramNode) -> Site:
        op = node.qualified if node.op == "call_function" else node.op
        return Site(node.name, op, user_source_line(node.stack_trace))

    def call(self, node: ProgramNode) -> Any:
        name = node.target
        if name in IGNORED:
            return None
        handler = HANDLERS.get(name)
        site = self.site(node)
        if handler is None:  # reported even after a broken input: every such op is listed
            return self.builder.problem(site, f"unsupported operation {name}")
        if any(self.env.get(n) is BROKEN for n in node.inputs):
            return BROKEN
        unreadable = [a for a in [*node.args, *node.kwargs.values()] if isinstance(a, Unreadable)]
        if unreadable:
            return self.builder.problem(site, f"an argument of kind {unreadable[0].kind}")
        return handler(self, node, site)

    def value(self, arg: Any) -> Any:
        if isinstance(arg, ProgramNode):
            return self.env[arg]
        if isinstance(arg, (list, tuple)):
            return [self.value(a) for a in arg]
        return arg

    def tensor_input(self, node: ProgramNode, site: Site) -> fx.Node | None:
        x = self.value(node.args[0])
        return x if isinstance(x, fx.Node) else None

    def weight(self, arg: Any) -> Tensor | None:
        value = self.value(arg)
        if value is None:
            return None
        if isinstance(value, Weight):
            return value.tensor
        return None

    def need_weight(self, node: ProgramNode, site: Site, index: int, name: str, optional=False):
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

    def layer_name(self, node: ProgramNode, *kinds: type) -> str:
        return _layer_name(node, kinds) or node.name


def map_program(program: Program, name: str | None = None) -> fx.GraphModule:
    """The GraphModule of standard modules that computes what ``program`` (neutral form, from
    either reader) computes; see :func:`program_to_module`."""
    return ProgramMapper(program, name).run()


def program_to_module(program: Any, name: str | None = None) -> fx.GraphModule:
    """The GraphModule of standard modules that computes what ``program`` computes.

    ``program`` is a :class:`torch.export.ExportedProgram` (or its neutral form,
    :class:`~spikebridge.loading.program_ir.Program`, which an untrusted .pt2 is read into).
    Its single input is an image batch [B, C, H, W] (any B: the batch axis of every reshape is
    left free); its output [B, K]. Raises
    :class:`~spikebridge.loading.errors.UnsupportedOperationError` listing every operation that
    cannot be rebuilt, with the user's source line, and
    :class:`~spikebridge.loading.errors.ModelLoadError` for a program of several inputs or outputs.
    """
    if not isinstance(program, Program):
        program = from_exported(program)
    return map_program(program, name)


__all__ = ["map_program", "program_to_module", "user_source_line"]
