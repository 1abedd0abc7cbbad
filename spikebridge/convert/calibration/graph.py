"""Walking and partly executing the prepared ANN's graph for calibration.

Which activations each activation feeds, which conv/linear layer produces an input channel by
channel (for bias correction), the float ANN's inputs of the activations, and the part of a graph
that one layer's threshold changes (so a candidate costs a partial pass).
Shapes: images [N, ...]; captured inputs [N, C, ...] or [N, F].
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import Tensor, fx, nn

from ...engine import graph as g
from ...normalization.calibrate import input_batches

OUTPUT = "<output>"


def calibration_images(data: Iterable | Tensor, samples: int) -> Tensor:
    """The first ``samples`` inputs [N, ...] of a loader of (x, y) batches or a tensor (labels
    are dropped: the method never sees them)."""
    taken: list[Tensor] = []
    count = 0
    for x in input_batches(data):
        taken.append(x[: samples - count])
        count += taken[-1].shape[0]
        if count >= samples:
            break
    if count == 0:
        raise ValueError("the calibration data is empty: give at least one batch of images")
    return torch.cat(taken)


class _Stop(Exception):
    pass


@torch.no_grad()
def capture(
    model: nn.Module, x: Tensor, names: Iterable[str], batch_size: int
) -> dict[str, Tensor]:
    """Inputs of the named modules (and the output for :data:`OUTPUT`) over all of x, batched."""
    names = list(names)
    parts: dict[str, list[Tensor]] = {n: [] for n in names}
    for start in range(0, x.shape[0], batch_size):
        for name, value in _run(model, x[start : start + batch_size], names).items():
            parts[name].append(value)
    return {name: torch.cat(chunks) for name, chunks in parts.items()}


def _run(model: nn.Module, x: Tensor, names: list[str]) -> dict[str, Tensor]:
    """One forward pass that records the inputs of ``names`` and stops once it has them all."""
    found: dict[str, Tensor] = {}
    modules = [n for n in names if n != OUTPUT]

    def record(name: str):
        def hook(_module, args):
            found[name] = args[0]
            if OUTPUT not in names and len(found) == len(modules):
                raise _Stop

        return hook

    handles = [model.get_submodule(n).register_forward_pre_hook(record(n)) for n in modules]
    try:
        out = model(x)
        if OUTPUT in names:
            found[OUTPUT] = out
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return found


class PartialGraph:
    """Run only the part of a graph that one layer's threshold changes.

    The nodes that depend on activation ``start`` and lead to the inputs of ``consumers`` are
    the *suffix*; the prefix values they read (the activation's input, a residual skip) are
    computed once per batch and kept, so each candidate threshold costs a partial pass.
    """

    def __init__(self, gm: fx.GraphModule, start: str, consumers: list[str]) -> None:
        self.gm = gm
        nodes = list(gm.graph.nodes)
        output = nodes[-1]
        by_name = {str(n.target): n for n in nodes if n.op == "call_module"}
        self.targets = {
            c: (output.args[0] if c == OUTPUT else by_name[c].args[0]) for c in consumers
        }
        dependent = {by_name[start]}
        for node in nodes:
            if any(a in dependent for a in node.all_input_nodes):
                dependent.add(node)
        needed: set[fx.Node] = set()
        stack = list(self.targets.values())
        while stack:
            node = stack.pop()
            if node not in needed:
                needed.add(node)
                stack.extend(node.all_input_nodes)
        batched = set()
        for node in nodes:
            if node.op == "placeholder" or any(a in batched for a in node.all_input_nodes):
                batched.add(node)
        self.dependent = dependent
        self.prefix_nodes = [n for n in nodes if n in needed and n not in dependent]
        # constants (parameters and what is computed from them alone) are recomputed, not kept
        self.constant_nodes = [n for n in self.prefix_nodes if n not in batched]
        self.suffix_nodes = [n for n in nodes if n in needed and n in dependent]
        self.boundary = [
            n
            for n in self.prefix_nodes
            if n in batched and any(u in dependent and u in needed for u in n.users)
        ]
        self.start_input = by_name[start].args[0]

    def _execute(self, nodes: list[fx.Node], env: dict[fx.Node, object]) -> None:
        interpreter = fx.Interpreter(self.gm, garbage_collect_values=False)
        interpreter.env = env
        for node in nodes:
            if node.op != "placeholder":
                env[node] = interpreter.run_node(node)

    @torch.no_grad()
    def prefix(self, x: Tensor, batch_size: int) -> list[dict[fx.Node, Tensor]]:
        """Per batch of x: the prefix values the suffix reads."""
        kept = []
        for start in range(0, x.shape[0], batch_size):
            env: dict[fx.Node, object] = {
                n: x[start : start + batch_size] for n in self.prefix_nodes if n.op == "placeholder"
            }
            self._execute(self.prefix_nodes, env)
            kept.append({n: env[n] for n in self.boundary})
        return kept

    def start_inputs(self, kept: list[dict[fx.Node, Tensor]]) -> Tensor:
        """The activation's input [N, ...] (the twin's, upstream layers quantised)."""
        return torch.cat([env[self.start_input] for env in kept])

    @torch.no_grad()
    def suffix(self, kept: list[dict[fx.Node, Tensor]]) -> dict[str, Tensor]:
        """Consumer -> its input [N, ...] under the current parameters of the suffix."""
        parts: dict[str, list[Tensor]] = {c: [] for c in self.targets}
        for values in kept:
            for c, value in self.run(values).items():
                parts[c].append(value)
        return {c: torch.cat(v) for c, v in parts.items()}

    def run(self, values: dict[fx.Node, Tensor]) -> dict[str, Tensor]:
        """The suffix on one batch of prefix values (differentiable)."""
        env: dict[fx.Node, object] = dict(values)
        self._execute(self.constant_nodes, env)
        self._execute(self.suffix_nodes, env)
        return {c: env[node] for c, node in self.targets.items()}


class FloatReference:
    """The float ANN's inputs of named activations (and its logits) on the calibration images:
    all kept from one pass when they fit in ``budget`` bytes, else captured when asked."""

    def __init__(
        self, reference: fx.GraphModule, x: Tensor, names: list[str], batch_size: int, budget: int
    ) -> None:
        self.reference, self.x, self.batch_size = reference, x, batch_size
        self.cache: dict[str, Tensor] | None = None
        wanted = [*names, OUTPUT]
        probe = capture(reference, x[:1], wanted, 1)
        per_image = sum(v.numel() * v.element_size() for v in probe.values())
        if per_image * x.shape[0] <= budget:
            self.cache = capture(reference, x, wanted, batch_size)

    def get(self, names: list[str]) -> dict[str, Tensor]:
        if self.cache is not None:
            return {n: self.cache[n] for n in names}
        return capture(self.reference, self.x, names, self.batch_size)

    def subset(self, count: int) -> FloatReference:
        """The same reference on the first ``count`` images only."""
        part = copy.copy(self)
        part.x = self.x[:count]
        if self.cache is not None:
            part.cache = {n: v[:count] for n, v in self.cache.items()}
        return part


class CalibrationGraph:
    """Which layers each activation feeds, and which conv/linear layer produces each input."""

    def __init__(self, gm: fx.GraphModule, names: list[str]) -> None:
        self.gm = gm
        self.nodes = {str(n.target): n for n in gm.graph.nodes if n.op == "call_module"}
        self.names = names

    def consumers(self, name: str) -> list[str]:
        """Activations (or the output) reached from ``name`` without crossing another one."""
        found: list[str] = []
        stack, seen = list(self.nodes[name].users), set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            if node.op == "output":
                found.append(OUTPUT)
            elif node.op == "call_module" and str(node.target) in self.names:
                found.append(str(node.target))
            else:
                stack.extend(node.users)
        order = {n: i for i, n in enumerate([*self.names, OUTPUT])}
        return sorted(set(found), key=order.__getitem__)

    def producer(self, consumer: str) -> str | None:
        """The conv/linear layer whose bias shifts ``consumer``'s input channel by channel."""
        if consumer == OUTPUT:
            node = next(n for n in self.gm.graph.nodes if n.op == "output").args[0]
        else:
            node = self.nodes[consumer].args[0]
        return self._walk(node) if isinstance(node, fx.Node) else None

    def _walk(self, node: fx.Node) -> str | None:
        mod = g.module_of(self.gm, node)
        if isinstance(mod, g.SYNAPTIC):
            return str(node.target)
        channel_preserving = isinstance(mod, g.AVG_POOLS) or (
            node.op == "call_function" and node.target in g.ADD_FUNCTIONS
        )
        if not channel_preserving:
            return None
        for arg in node.all_input_nodes:
            found = self._walk(arg)
            if found is not None:
                return found
        return None
