"""A GraphModule under construction: submodules, functions, example values and problems.

:class:`GraphRecorder` adds one node at a time to an ``fx`` graph and runs it on an example input
as it is added, so every value's shape is known (batch axis first). A node that cannot be rebuilt
is recorded with :meth:`GraphRecorder.problem`, which returns :data:`~.problems.BROKEN`;
:meth:`GraphRecorder.build` raises one
:class:`~spikebridge.loading.errors.UnsupportedOperationError` listing every problem. The layers
conversion understands are added by its subclass :class:`~spikebridge.loading.builder.GraphBuilder`.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, fx, nn

from .errors import ModelLoadError, UnsupportedOperationError
from .problems import BROKEN, SUPPORTED, Site, _Broken, fix_for


def module_name(text: str) -> str:
    """A submodule name from a layer path or node name (``features.0`` -> ``features_0``).

    The names come from the user's file and end up in the Python code ``fx`` generates for the
    GraphModule, so only ASCII letters, digits and ``_`` are kept, and never a keyword."""
    name = re.sub(r"[^0-9A-Za-z_]", "_", str(text)[:200]).strip("_") or "layer"
    name = name if not name[0].isdigit() else f"layer_{name}"
    return f"{name}_" if keyword.iskeyword(name) or name in ("self", "torch") else name


class GraphRecorder:
    """Records a GraphModule node by node; every value's shape is known from an example.

    Args:
        name: the class name of the GraphModule (the user's model class or file name).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.root = nn.Module()
        self.graph = fx.Graph()
        self.problems: list[str] = []
        self._examples: dict[fx.Node, Tensor] = {}
        self._input: fx.Node | None = None

    # -- problems ---------------------------------------------------------------------------

    def problem(self, site: Site, reason: str, fix: str | None = None) -> _Broken:
        """Record a node that cannot be rebuilt; returns :data:`BROKEN` for its value."""
        fix = fix or fix_for(site.op)
        self.problems.append(f"- {site}: {reason}. Fix: {fix}")
        return BROKEN

    def constant_input(self, site: Site) -> _Broken:
        """Record a layer applied to a constant instead of a tensor of the network."""
        return self.problem(
            site,
            "its input is a constant, not a tensor of the network",
            "apply layers to the network's input only",
        )

    # -- values -----------------------------------------------------------------------------

    def shape(self, node: fx.Node) -> tuple[int, ...]:
        """The shape of ``node``'s value on the example input (batch axis first)."""
        return tuple(self._examples[node].shape)

    def example(self, node: fx.Node) -> Tensor:
        return self._examples[node]

    def _unique(self, base: str) -> str:
        name, i = module_name(base), 0
        candidate = name
        while hasattr(self.root, candidate):
            i += 1
            candidate = f"{name}_{i}"
        return candidate

    def _run(self, node: fx.Node, fn, args, kwargs) -> fx.Node:
        def example(a):
            if isinstance(a, fx.Node):
                return self._examples[a]
            if isinstance(a, (list, tuple)):
                return type(a)(example(v) for v in a)
            return a

        with torch.no_grad():
            self._examples[node] = fn(*example(args), **example(kwargs or {}))
        return node

    # -- nodes ------------------------------------------------------------------------------

    def input(self, name: str, example: Tensor) -> fx.Node:
        """The network's input placeholder; ``example`` is a tensor of its shape ([B, C, H, W])."""
        node = self.graph.placeholder(module_name(name))
        self._examples[node] = example
        self._input = node
        return node

    def module(self, base: str, module: nn.Module, *args: fx.Node) -> fx.Node:
        """Call a new submodule (named after ``base``, made unique) on ``args``."""
        module.eval()
        target = self._unique(base)
        self.root.add_module(target, module)
        node = self.graph.call_module(target, tuple(args))
        return self._run(node, module, args, None)

    def function(self, fn, *args, **kwargs) -> fx.Node:
        node = self.graph.call_function(fn, tuple(args), kwargs)
        return self._run(node, fn, args, kwargs)

    def output(self, value: fx.Node) -> None:
        self.graph.output(value)

    def output_of(self, values: Sequence[Any], source: str) -> None:
        """The graph's output: the one value in ``values``, the outputs of ``source`` ("the
        program", "the ONNX graph"; for messages). Nothing is added when it is broken."""
        if len(values) != 1:
            raise ModelLoadError(
                f"{self.name}: {source} returns {len(values)} outputs; conversion needs "
                "a model returning one tensor of class scores"
            )
        value = values[0]
        if value is BROKEN:
            return
        if not isinstance(value, fx.Node):
            raise ModelLoadError(f"{self.name}: {source}'s output is a constant")
        self.output(value)

    def build(self) -> fx.GraphModule:
        """The GraphModule (eval mode); raises if any node could not be rebuilt."""
        if self.problems:
            raise UnsupportedOperationError(
                f"{self.name}: {len(self.problems)} operation(s) cannot be converted to a spiking "
                f"network (supported: {SUPPORTED}):\n" + "\n".join(self.problems)
            )
        self.graph.lint()
        gm = fx.GraphModule(self.root, self.graph, module_name(self.name))
        return gm.eval()


__all__ = ["GraphRecorder", "module_name"]
