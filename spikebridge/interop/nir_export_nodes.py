"""One node of a spiking network's fx graph -> NIR nodes: the dispatch of
:func:`~spikebridge.interop.build_nir_graph`.

Identity and dropout pass their input through; flatten, residual additions, functional pooling,
neurons, convolutions, linear layers and pooling modules are written by
:mod:`.nir_export_layers` and :mod:`.nir_export_neurons`; anything else is refused by name.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..engine.lif import LIFNeuron
from ..engine.neurons import IFNeuron, SignedIFNeuron, SpikingMaxPool
from .nir_export_graph import ExportGraph, ExportValue, NIRExportError
from .nir_export_layers import export_conv, export_flatten, export_linear, export_pool
from .nir_export_neurons import export_neuron

SUPPORTED = (
    "Conv1d/Conv2d, Linear, AvgPool2d, AdaptiveAvgPool2d, max-pooling (as metadata), Flatten, "
    "residual additions and IF/signed IF/LIF neurons"
)
_FUNCTIONAL_POOLS = {
    F.avg_pool2d: nn.AvgPool2d,
    F.adaptive_avg_pool2d: nn.AdaptiveAvgPool2d,
    F.max_pool2d: nn.MaxPool2d,
    F.adaptive_max_pool2d: nn.AdaptiveMaxPool2d,
}


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def _is_flatten(gm: fx.GraphModule, node: fx.Node) -> tuple[int, int] | None:
    """(start_dim, end_dim) in batched dims when ``node`` flattens, else None."""
    mod = _module(gm, node)
    if isinstance(mod, nn.Flatten):
        return mod.start_dim, mod.end_dim
    if (node.op == "call_function" and node.target is torch.flatten) or (
        node.op == "call_method" and node.target == "flatten"
    ):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return int(start), int(end)
    return None


def _is_add(node: fx.Node) -> bool:
    return (
        node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add)
    ) or (node.op == "call_method" and node.target in ("add", "add_"))


def _inputs(node: fx.Node, values: dict[fx.Node, ExportValue], what: str) -> list[ExportValue]:
    args = []
    for a in node.args:
        if isinstance(a, fx.Node):
            args.append(values[a])
        elif not isinstance(a, (int, float, tuple, list)) or what not in ("flatten", "pooling"):
            raise NIRExportError(
                f"{node.name}: {what} with a constant argument {a!r} has no NIR equivalent"
            )
    return args


def export_node(
    b: ExportGraph,
    gm: fx.GraphModule,
    node: fx.Node,
    values: dict[fx.Node, ExportValue],
    shapes: dict[fx.Node, tuple[int, ...]],
    dt: float,
    lif_node: str,
) -> ExportValue:
    """Add the NIR nodes of fx ``node`` to ``b`` and return its value; ``values`` holds those of
    the nodes before it, ``shapes`` every node's output shape without the batch."""
    mod = _module(gm, node)
    name = str(node.target) if node.op == "call_module" else node.name
    shape = shapes.get(node)
    if isinstance(mod, (nn.Identity, nn.Dropout)):
        return values[node.args[0]]
    flat = _is_flatten(gm, node)
    if flat is not None:
        (value,) = _inputs(node, values, "flatten")
        return export_flatten(b, name, value, flat, shape)
    if _is_add(node):
        terms = _inputs(node, values, "addition")
        if len(terms) != 2 or node.kwargs:
            raise NIRExportError(
                f"{node.name}: only the sum of two tensors maps to NIR (several edges into a node); "
                f"got {len(terms)} tensor(s) and options {dict(node.kwargs)}"
            )
        left, right = (b.ann_units(t) for t in terms)
        return ExportValue(left.sources + right.sources, shape)
    functional_pool = _FUNCTIONAL_POOLS.get(node.target) if node.op == "call_function" else None
    if functional_pool is not None and shape is not None:
        (value,) = _inputs(node, values, "pooling")
        return export_pool(b, name, functional_pool(*node.args[1:], **node.kwargs), value, shape)
    if node.op != "call_module" or shape is None:
        raise NIRExportError(
            f"{node.name}: {node.op} {node.target!r} has no NIR equivalent; NIR export supports "
            f"{SUPPORTED}"
        )
    (value,) = _inputs(node, values, type(mod).__name__)
    if isinstance(mod, (IFNeuron, SignedIFNeuron, LIFNeuron)):
        return export_neuron(b, name, mod, b.ann_units(value), shape, dt, lif_node)
    if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
        return export_conv(b, name, mod, value, shape)
    if isinstance(mod, nn.Linear):
        return export_linear(b, name, mod, value, shape)
    if isinstance(mod, (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
        return export_pool(b, name, mod, value, shape)
    if isinstance(mod, SpikingMaxPool):
        return export_pool(b, name, mod.pool, value, shape, spiking=True, rule=mod.rule)
    raise NIRExportError(
        f"{name}: {type(mod).__name__} has no NIR equivalent; NIR export supports {SUPPORTED}"
    )


__all__ = ["export_node"]
