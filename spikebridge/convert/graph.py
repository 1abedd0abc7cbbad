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
from ..neurons import TimeAware

SYNAPTIC = (nn.Conv1d, nn.Conv2d, nn.Linear)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
RELU_LIKE = (nn.ReLU, nn.ReLU6)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Hardtanh, QCFS)
AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
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


class ConvertTracer(fx.Tracer):
    """fx tracer that keeps activations and neurons as leaves, so each can be swapped for a neuron."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, (QCFS, TimeAware)):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module) -> fx.GraphModule:
    """Symbolically trace ``model`` (a copy is not made; the GraphModule shares its parameters)."""
    if isinstance(model, fx.GraphModule):
        return model
    tracer = ConvertTracer()
    try:
        graph = tracer.trace(model)
    except Exception as err:  # fx reports data-dependent control flow and the like
        raise ConversionError(
            f"could not trace {type(model).__name__} with torch.fx: {err}. Conversion needs a "
            "model whose forward has no data-dependent control flow; rewrite that part, or "
            "export the model with torch.export and pass the exported program's module"
        ) from err
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


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
