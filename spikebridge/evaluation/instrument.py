"""An instrumented copy of a network: functional additions, pooling and means as modules.

The copy shares every submodule and parameter with the original; a layer called at several
places gets one :class:`~.layers.CallSite` per call, so each call site is counted once.
"""

from __future__ import annotations

from torch import fx, nn

from ..engine.graph import ADD_FUNCTIONS, ADD_METHODS, lookup, trace_spiking
from ..engine.neurons import SpikingMaxPool, SpikingNeuron
from .layers import (
    MAX_POOLS,
    MEAN_FUNCTIONS,
    POOL_FUNCTIONS,
    SHAPE_FUNCTIONS,
    SHAPE_METHODS,
    SHAPE_MODULES,
    Add,
    CallSite,
    Mean,
    layer_kind,
)


def _is_spike_node(
    node: fx.Node, modules: dict[str, nn.Module], known: dict[fx.Node, bool]
) -> bool:
    """True when ``node`` carries spikes: a neuron's output, possibly reshaped or max-pooled."""
    if node in known:
        return known[node]
    result = False
    if node.op == "call_module":
        mod = modules[node.target]
        if isinstance(mod, SpikingNeuron):
            result = True
        elif isinstance(mod, SHAPE_MODULES + MAX_POOLS + (SpikingMaxPool,)):
            result = _first_node_is_spike(node, modules, known)
    elif node.op == "call_function" and node.target in SHAPE_FUNCTIONS:
        result = _first_node_is_spike(node, modules, known)
    elif node.op == "call_method" and node.target in SHAPE_METHODS:
        result = _first_node_is_spike(node, modules, known)
    known[node] = result
    return result


def _first_node_is_spike(
    node: fx.Node, modules: dict[str, nn.Module], known: dict[fx.Node, bool]
) -> bool:
    first = node.args[0] if node.args else None
    return isinstance(first, fx.Node) and _is_spike_node(first, modules, known)


def _unique(root: dict[str, nn.Module], base: str) -> str:
    name, i = base, 0
    while name in root:
        i += 1
        name = f"{base}_{i}"
    return name


def instrument(module: nn.Module) -> fx.GraphModule:
    """A traced copy of ``module`` with additions, functional pooling and means as modules.

    The copy shares every submodule and parameter with ``module`` (nothing is duplicated); ANNs
    and spiking networks alike are traced with neurons and activations kept as leaves. Raises
    whatever ``torch.fx`` raises for an untraceable module.
    """
    source = trace_spiking(module)
    graph = fx.Graph()
    value_map: dict[fx.Node, fx.Node] = {}
    out = graph.graph_copy(source.graph, value_map)
    graph.output(out)
    modules: dict[str, nn.Module] = {}
    for node in graph.nodes:
        if node.op in ("call_module", "get_attr") and node.target not in modules:
            modules[node.target] = lookup(source, node.target)
    called: set[str] = set()
    for node in graph.nodes:  # a counted layer called at several places: one name per call site
        if node.op == "call_module" and layer_kind(modules[node.target]) is not None:
            if node.target in called:
                name = _unique(modules, f"{node.target.replace('.', '_')}_call")
                modules[name] = CallSite(modules[node.target])
                node.target = name
            called.add(node.target)
    known: dict[fx.Node, bool] = {}
    for node in list(graph.nodes):
        replacement: nn.Module | None = None
        args = node.args
        if _is_tensor_add(node):
            spikes = tuple(
                i
                for i, a in enumerate(node.args[:2])
                if isinstance(a, fx.Node) and _is_spike_node(a, modules, known)
            )
            replacement, args = Add(spikes), tuple(node.args[:2])
        elif node.op == "call_function" and node.target in POOL_FUNCTIONS and _constant_tail(node):
            replacement = POOL_FUNCTIONS[node.target](*node.args[1:], **node.kwargs)
            args = (node.args[0],)
        elif _is_mean(node) and _constant_tail(node):
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
            if "dtype" not in node.kwargs:
                replacement, args = Mean(dim, keepdim), (node.args[0],)
        if replacement is None:
            continue
        name = _unique(modules, f"_count_{type(replacement).__name__.lower()}")
        modules[name] = replacement
        with graph.inserting_after(node):
            new = graph.call_module(name, args)
        node.replace_all_uses_with(new)
        graph.erase_node(node)
    graph.lint()
    return fx.GraphModule(modules, graph, "Counted" + type(module).__name__)


def _is_tensor_add(node: fx.Node) -> bool:
    is_add = (node.op == "call_function" and node.target in ADD_FUNCTIONS) or (
        node.op == "call_method" and node.target in ADD_METHODS
    )
    return (
        is_add
        and len(node.args) == 2
        and not node.kwargs
        and all(isinstance(a, fx.Node) for a in node.args)
    )


def _is_mean(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in MEAN_FUNCTIONS) or (
        node.op == "call_method" and node.target == "mean"
    )


def _constant_tail(node: fx.Node) -> bool:
    rest = list(node.args[1:]) + list(node.kwargs.values())
    return isinstance(node.args[0], fx.Node) and not any(isinstance(a, fx.Node) for a in rest)
