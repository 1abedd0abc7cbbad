"""The direct route on a user's own graph (Wu et al. 2018 STBP; Zheng et al. 2021 tdBN).

:func:`build_direct_snn` (in :mod:`.snn`) builds the direct SNN of a named architecture.
:func:`direct_from_graph` does the same for any model that :func:`spikebridge.engine.graph.trace`
can trace, e.g. one loaded with :func:`spikebridge.load_model` from a .pt2 or ONNX file: the same
graph with

- every ReLU-like activation (ReLU, ReLU6, Hardtanh(0, max), ``F.relu``...) -> a LIF neuron
  (SPEC 2.1-2.2);
- every BatchNorm -> tdBN (SPEC 2.3), with alpha = 1/sqrt(2) where it feeds a residual addition,
  as in the tdBN residual block;
- max-pooling kept (as the direct route keeps ``pool="max"``), average pooling, flatten,
  reshape, addition, concatenation, spatial mean and dropout unchanged;
- conv and linear layers freshly initialised (the direct route trains from scratch, so the two
  routes compare as they do for the built-in architectures);
- a final activation or softmax dropped: the last layer is the decoding layer, its outputs
  averaged over T.

A node that cannot be trained directly raises :class:`NotDirectlyTrainable` naming it and why
(e.g. LeakyReLU: a LIF neuron fires non-negative spikes only, so a signed activation has no
direct-route counterpart).

The result is a :class:`~spikebridge.direct.snn.DirectSNN` taking [T, B, C, H, W] and returning
[T, B, K], trainable by :func:`spikebridge.direct.train_direct`.
"""

from __future__ import annotations

import copy

import torch
from torch import fx, nn

from ..engine import graph as g
from ..engine.encoding import ENCODINGS, make_encoder
from ..engine.lif import LIFNeuron
from ..models import JUNCTION_ALPHA
from .snn import DirectSNN
from .tdbn import tdbn

KEPT_MODULES = (
    *g.SYNAPTIC,
    *g.AVG_POOLS,
    *g.MAX_POOLS,
    *g.DROPOUTS,
    *g.SHAPE_MODULES,
    nn.Identity,
)
KEPT_FUNCTIONS = (
    (g.ADD_FUNCTIONS | g.SHAPE_FUNCTIONS | g.LINEAR_FUNCTIONS | g.MAX_POOL_FUNCTIONS)
    | g.DROPOUT_FUNCTIONS
    | {torch.mean}
)
KEPT_METHODS = g.SHAPE_METHODS | {"mean", "add", "add_"}


class NotDirectlyTrainable(ValueError):
    """A graph node that the direct route cannot train; ``node`` and ``reason`` name it."""

    def __init__(self, model: str, node: str, reason: str, fix: str) -> None:
        self.node = node
        self.reason = reason
        super().__init__(f"{model} cannot be trained directly: {node}: {reason}. Fix: {fix}")


def _is_relu_like(module: nn.Module) -> bool:
    if isinstance(module, (nn.ReLU, nn.ReLU6)):
        return True
    if isinstance(module, nn.Hardtanh):
        return module.min_val == 0
    from ..activations import QCFS

    return isinstance(module, QCFS)


def _feeds_addition(node: fx.Node) -> bool:
    if len(node.users) != 1:
        return False
    user = next(iter(node.users))
    return (user.op == "call_function" and user.target in g.ADD_FUNCTIONS) or (
        user.op == "call_method" and user.target in ("add", "add_")
    )


def _drop_output_tail(gm: fx.GraphModule) -> None:
    output = next(n for n in gm.graph.nodes if n.op == "output")
    while True:
        last = output.args[0]
        if isinstance(last, (tuple, list)) and len(last) == 1:
            last = last[0]
        if not isinstance(last, fx.Node) or len(last.users) != 1 or not last.args:
            return
        mod = g.module_of(gm, last)
        tail = (
            isinstance(mod, (*g.OUTPUT_ONLY, *g.ACTIVATIONS, *g.DROPOUTS, nn.Identity))
            or (last.op == "call_function" and last.target in g.OUTPUT_FUNCTIONS | g.RELU_FUNCTIONS)
            or (last.op == "call_method" and last.target in ("softmax", "log_softmax", "relu"))
        )
        if not tail:
            return
        last.replace_all_uses_with(last.args[0])
        gm.graph.erase_node(last)


def _swap(gm: fx.GraphModule, node: fx.Node, module: nn.Module) -> None:
    """Put ``module`` in place of the module that ``node`` calls (same name)."""
    parent, _, attr = str(node.target).rpartition(".")
    setattr(gm.get_submodule(parent) if parent else gm, attr, module)


def _replace(gm: fx.GraphModule, node: fx.Node, module: nn.Module, name: str) -> None:
    """Call a new ``module`` in place of the function or method call ``node``."""
    target = name.replace(".", "_")
    base, i = target, 0
    while hasattr(gm, target):
        i += 1
        target = f"{base}_{i}"
    gm.add_submodule(target, module)
    with gm.graph.inserting_after(node):
        new = gm.graph.call_module(target, (node.args[0],))
    node.replace_all_uses_with(new)
    gm.graph.erase_node(node)


def direct_from_graph(
    model: nn.Module,
    threshold: float = 0.5,
    tau_decay: float = 0.25,
    surrogate: str = "rectangular",
    surrogate_width: float = 1.0,
    detach_reset: bool = False,
    norm: bool = True,
    encoding: str = "analog",
    chunk_size: int | None = None,
    seed: int = 0,
    name: str | None = None,
) -> DirectSNN:
    """A directly trainable SNN with the graph of ``model`` (see the module docstring).

    Args:
        model: any fx-traceable model (e.g. from :func:`spikebridge.load_model`); left untouched.
        threshold, tau_decay, surrogate, surrogate_width, detach_reset: the LIF neurons' settings
            (as :func:`spikebridge.direct.build_direct_snn`).
        norm: BatchNorm -> tdBN (``False``: BatchNorm layers become identities, an ablation).
        encoding: ``analog``, ``poisson`` or ``events``.
        seed: seeds the fresh initialisation of the conv and linear layers.
        name: the network's name in its spec (default: the model's class name).

    Input [T, B, C, H, W] -> output [T, B, K]. Raises :class:`NotDirectlyTrainable` naming the
    node that cannot be trained directly and why.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}: choose one of {', '.join(ENCODINGS)}")
    LIFNeuron(threshold, tau_decay, surrogate, surrogate_width, detach_reset)  # validate
    label = name or type(model).__name__
    gm = g.trace(copy.deepcopy(model).eval())
    _drop_output_tail(gm)

    def neuron() -> LIFNeuron:
        return LIFNeuron(threshold, tau_decay, surrogate, surrogate_width, detach_reset)

    def refuse(node: fx.Node, reason: str, fix: str) -> NotDirectlyTrainable:
        return NotDirectlyTrainable(label, g.describe(node), reason, fix)

    neurons = 0
    swapped: set[str] = set()
    torch.manual_seed(seed)
    originals = {n: g.module_of(gm, n) for n in gm.graph.nodes if n.op == "call_module"}
    for node in list(gm.graph.nodes):
        if node.op == "call_module":
            mod = originals[node]
            if isinstance(mod, g.ACTIVATIONS):
                if not _is_relu_like(mod):
                    raise refuse(
                        node,
                        f"{type(mod).__name__} is a signed activation; LIF neurons fire "
                        "non-negative spikes only, so the direct route has no counterpart",
                        "use ReLU for a direct-route comparison (the conversion route handles "
                        "it with signed neurons)",
                    )
                if node.target in swapped:  # a module called at several sites: one neuron each
                    _replace(gm, node, neuron(), str(node.target))
                else:
                    _swap(gm, node, neuron())
                swapped.add(node.target)
                neurons += 1
            elif isinstance(mod, g.NORMS):
                if not mod.track_running_stats:
                    raise refuse(
                        node,
                        "BatchNorm without running statistics",
                        "use BatchNorm with track_running_stats=True",
                    )
                alpha = JUNCTION_ALPHA if _feeds_addition(node) else 1.0
                dims = 2 if isinstance(mod, nn.BatchNorm2d) else 1
                new = tdbn(mod.num_features, dims, alpha, threshold) if norm else nn.Identity()
                if node.target in swapped:
                    _replace(gm, node, new, str(node.target))
                else:
                    _swap(gm, node, new)
                swapped.add(node.target)
            elif isinstance(mod, KEPT_MODULES):
                if hasattr(mod, "reset_parameters"):
                    mod.reset_parameters()
            elif isinstance(mod, g.OUTPUT_ONLY):
                raise refuse(
                    node, f"{type(mod).__name__} inside the network", "move it to the loss"
                )
            else:
                raise refuse(
                    node,
                    f"{type(mod).__name__} has no direct-route counterpart",
                    "use conv/linear layers, BatchNorm, ReLU, pooling, flatten, add and cat",
                )
        elif node.op == "call_function":
            if node.target in g.RELU_FUNCTIONS:
                _replace(gm, node, neuron(), node.name)
                neurons += 1
            elif node.target not in KEPT_FUNCTIONS:
                raise refuse(
                    node,
                    "an operation the direct route does not train",
                    "express it with supported layers",
                )
        elif node.op == "call_method":
            if node.target in g.RELU_METHODS:
                _replace(gm, node, neuron(), node.name)
                neurons += 1
            elif node.target not in KEPT_METHODS:
                raise refuse(
                    node,
                    f"the tensor method {node.target!r} is not trained by the direct route",
                    "express it with supported layers",
                )
    if neurons == 0:
        raise NotDirectlyTrainable(
            label,
            "the whole graph",
            "no activation to turn into LIF neurons",
            "the network needs ReLU-like activations between its layers",
        )
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    encoder = make_encoder(encoding, seed=seed)
    spec = dict(
        arch=f"graph:{label}",
        threshold=threshold,
        tau_decay=tau_decay,
        surrogate=surrogate,
        surrogate_width=surrogate_width,
        detach_reset=detach_reset,
        norm=norm,
        encoding=encoding,
        seed=seed,
    )
    return DirectSNN(gm.train(), encoder, chunk_size, spec)


__all__ = ["NotDirectlyTrainable", "direct_from_graph"]
