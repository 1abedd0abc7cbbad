"""Tracing an ANN with torch.fx and classifying its nodes for conversion.

Every node of a traced ANN falls in one of a few roles: a synaptic layer (conv, linear), an
activation (becomes a neuron), a linear non-synaptic op that works unchanged on spike trains
(pooling, flatten, addition, concatenation), something removed for inference (dropout, identity,
a final softmax), something replaced (max-pooling, BatchNorm folded into its conv), or something
that blocks conversion.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..activations import QCFS
from .neurons import TimeAware

# layer families in every dimensionality torch has (what the operation counters know)
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
AVG_POOLS_ND = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
ADAPTIVE_AVG_POOLS_ND = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
MAX_POOLS_ND = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
ADAPTIVE_MAX_POOLS_ND = (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)

# what conversion supports: 1-d and 2-d layers
SYNAPTIC = (*CONVS[:2], nn.Linear)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
RELU_LIKE = (nn.ReLU, nn.ReLU6)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh, QCFS)
AVG_POOLS = (*AVG_POOLS_ND[:2], *ADAPTIVE_AVG_POOLS_ND[:2])
MAX_POOLS = (*MAX_POOLS_ND[:2], *ADAPTIVE_MAX_POOLS_ND[:2])
DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
SHAPE_MODULES = (nn.Flatten, nn.Unflatten)
OUTPUT_ONLY = (nn.Softmax, nn.LogSoftmax)
BLOCKING_NORMS = (
    nn.LocalResponseNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
)

RELU_FUNCTIONS = {F.relu, torch.relu, torch.relu_, F.relu_}
ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
ADD_METHODS = {"add", "add_"}
SHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze}
LINEAR_FUNCTIONS = {
    torch.cat,
    torch.concat,
    F.avg_pool1d,
    F.avg_pool2d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
    operator.getitem,
    getattr,
}
MAX_POOL_FUNCTIONS = {F.max_pool1d, F.max_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d}
DROPOUT_FUNCTIONS = {F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout}
OUTPUT_FUNCTIONS = {F.softmax, F.log_softmax, torch.softmax, torch.log_softmax}
SHAPE_METHODS = {"view", "reshape", "flatten", "size", "contiguous", "squeeze", "unsqueeze", "dim"}
RELU_METHODS = {"relu", "relu_"}


class ConversionError(ValueError):
    """The model cannot be converted as it is; the message names the layer and what to do."""


class MethodNotApplicable(ConversionError):
    """A normalisation method or neuron type does not apply to a layer; the message names both."""


def lookup(root: nn.Module, target: str):
    """The submodule or attribute at dotted path ``target`` of ``root`` (``root`` for "")."""
    obj = root
    for part in target.split(".") if target else ():
        obj = getattr(obj, part)
    return obj


def set_submodule(root: nn.Module, target: str, module: nn.Module) -> None:
    """Replace the submodule at dotted path ``target`` of ``root`` by ``module``."""
    parent, _, name = target.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


class SpikingTracer(fx.Tracer):
    """The one fx tracer of spikebridge: torch's leaves plus neurons and other time-aware modules
    and QCFS activations, so each stays one module (swapped for a neuron, counted, stepped)."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, (QCFS, TimeAware)):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def trace_spiking(module: nn.Module) -> fx.GraphModule:
    """``module`` traced with :class:`SpikingTracer` (a GraphModule is returned as it is).

    Raises whatever ``torch.fx`` raises for an untraceable module; the GraphModule shares the
    module's parameters.
    """
    if isinstance(module, fx.GraphModule):
        return module
    tracer = SpikingTracer()
    graph = tracer.trace(module)
    return fx.GraphModule(tracer.root, graph, type(module).__name__)


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolically trace ``model`` (a copy is not made; the GraphModule shares its parameters)."""
    try:
        return trace_spiking(model)
    except Exception as err:  # fx reports data-dependent control flow and the like
        raise ConversionError(
            f"could not trace {type(model).__name__} with torch.fx: {err}. Conversion needs a "
            "model whose forward has no data-dependent control flow; rewrite that part, or "
            "export the model with torch.export and pass the exported program's module"
        ) from err


def module_of(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    if node.op != "call_module":
        return None
    return gm.get_submodule(node.target)


def is_activation_node(gm: fx.GraphModule, node: fx.Node) -> bool:
    """Whether ``node`` applies a hidden-layer activation (module, function or method form)."""
    if node.op == "call_module":
        return isinstance(module_of(gm, node), ACTIVATIONS)
    if node.op == "call_function":
        return node.target in RELU_FUNCTIONS
    if node.op == "call_method":
        return node.target in RELU_METHODS
    return False


def describe(node: fx.Node) -> str:
    """A human-readable name for a node: its module path or its function."""
    if node.op == "call_module":
        return str(node.target)
    target = getattr(node.target, "__name__", str(node.target))
    return f"{node.name} ({node.op} {target})"


def feeding_synaptic_layers(gm: fx.GraphModule, node: fx.Node) -> list[str]:
    """Names of the conv/linear layers whose outputs reach ``node`` without crossing an activation.

    Walks back through linear non-synaptic ops (pooling, flatten, addition, concatenation).
    """
    found: list[str] = []
    stack, seen = list(node.all_input_nodes), set()
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        mod = module_of(gm, cur)
        if isinstance(mod, SYNAPTIC):
            found.append(cur.target)
        elif not is_activation_node(gm, cur) and cur.op != "placeholder":
            stack.extend(cur.all_input_nodes)
    return found


def static_nodes(gm: nn.Module, graph: fx.Graph | None = None) -> tuple[set[fx.Node], set[fx.Node]]:
    """(static, constant) nodes of ``graph`` (default ``gm.graph``).

    Static nodes depend only on the input (and parameters), never on a time-aware module: under
    analog input they are the same at every step. Constant nodes depend on parameters alone
    (``get_attr`` and what is computed from them): they are never broadcast over time.
    """
    graph = gm.graph if graph is None else graph
    static: set[fx.Node] = set()
    constant: set[fx.Node] = set()
    for node in graph.nodes:
        if node.op == "placeholder":
            static.add(node)
        elif node.op == "output":
            continue
        elif node.op == "call_module" and isinstance(lookup(gm, node.target), TimeAware):
            continue
        elif node.op == "get_attr" or all(arg in constant for arg in node.all_input_nodes):
            constant.add(node)
        elif all(arg in static or arg in constant for arg in node.all_input_nodes):
            static.add(node)
    return static, constant


def static_modules(gm: fx.GraphModule) -> set[str]:
    """Names of the modules whose input depends only on the network input (no neuron upstream):
    under an analog encoder they see the same input at every step (SPEC 3.2 charges them MACs)."""
    static, constant = static_nodes(gm)
    return {str(n.target) for n in static | constant if n.op == "call_module"}
