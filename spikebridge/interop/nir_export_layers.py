"""Layers of a :class:`~spikebridge.engine.network.SpikingNetwork` as NIR nodes: Conv1d/Conv2d, Linear
(Affine), pooling (max-pooling as an AvgPool2d stand-in named in metadata) and Flatten.

Each function adds the node for one layer to the :class:`~.nir_export_graph.ExportGraph`, folds the
spike amplitude of its input into its weights, and returns its output as an
:class:`~.nir_export_graph.ExportValue`. Shapes exclude the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from .nir_export_graph import (
    ExportGraph,
    ExportValue,
    NIRExportError,
    channel_amplitude,
    full_amplitude,
    weights_with_amplitude,
)
from .nir_metadata import node_metadata


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def export_flatten(
    b: ExportGraph,
    name: str,
    value: ExportValue,
    dims: tuple[int, int],
    shape: tuple[int, ...] | None,
) -> ExportValue:
    start, end = dims
    rank = len(value.shape) + 1  # with the batch dimension
    start, end = start % rank, end % rank
    if start == 0:
        raise NIRExportError(f"{name}: a flatten over the batch dimension has no NIR equivalent")
    # NIR's Flatten counts dims without the batch; negative dims read the same to readers that
    # count the batch (nirtorch, snnTorch) and to those that do not (NIR, sinabs)
    node = b.nir.Flatten(
        input_type={"input": np.array(value.shape)},
        start_dim=start - rank,
        end_dim=end - rank,
    )
    b.add(name, node, value.sources)
    amp = value.amplitude
    if amp is not None:
        amp = amp.flatten(start - 1, end - 1)
    return ExportValue([name], tuple(shape) if shape is not None else tuple(amp.shape), amp)


def export_conv(
    b: ExportGraph, name: str, mod: nn.Module, value: ExportValue, shape: tuple[int, ...]
) -> ExportValue:
    nir = b.nir
    if mod.padding_mode != "zeros":
        raise NIRExportError(
            f"{name}: padding_mode={mod.padding_mode!r}; NIR convolutions pad with zeros only"
        )
    weight, folded = weights_with_amplitude(name, mod.weight, value, mod.groups)
    bias = (
        mod.bias.detach().cpu().numpy()
        if mod.bias is not None
        else np.zeros(mod.out_channels, dtype=np.float32)
    )
    facts = dict(has_bias=mod.bias is not None)
    if folded is not None:
        facts["input_amplitude"] = folded
    spatial = value.shape[1:]
    if isinstance(mod, nn.Conv2d):
        padding = mod.padding if isinstance(mod.padding, str) else _pair(mod.padding)
        node = nir.Conv2d(
            input_shape=tuple(int(s) for s in spatial),
            weight=weight,
            stride=_pair(mod.stride),
            padding=padding,
            dilation=_pair(mod.dilation),
            groups=int(mod.groups),
            bias=bias,
            metadata=node_metadata(**facts),
        )
    else:
        padding = mod.padding if isinstance(mod.padding, str) else int(mod.padding[0])
        node = nir.Conv1d(
            input_shape=int(spatial[0]),
            weight=weight,
            stride=int(mod.stride[0]),
            padding=padding,
            dilation=int(mod.dilation[0]),
            groups=int(mod.groups),
            bias=bias,
            metadata=node_metadata(**facts),
        )
    b.add(name, node, value.sources)
    return ExportValue([name], shape)


def export_linear(
    b: ExportGraph, name: str, mod: nn.Linear, value: ExportValue, shape: tuple[int, ...]
) -> ExportValue:
    if len(value.shape) != 1:
        raise NIRExportError(
            f"{name}: Linear applied to a {len(value.shape)}-d input {value.shape}; NIR's Affine "
            "takes vectors: flatten before it"
        )
    weight, folded = weights_with_amplitude(name, mod.weight, value)
    facts = {} if folded is None else {"input_amplitude": folded}
    meta = node_metadata(**facts) if facts else {}
    if mod.bias is not None:
        node = b.nir.Affine(weight=weight, bias=mod.bias.detach().cpu().numpy(), metadata=meta)
    else:
        node = b.nir.Linear(weight=weight, metadata=meta)
    b.add(name, node, value.sources)
    return ExportValue([name], shape)


def export_pool(
    b: ExportGraph,
    name: str,
    pool: nn.Module,
    value: ExportValue,
    shape: tuple[int, ...],
    spiking: bool = False,
    rule: str = "gate",
) -> ExportValue:
    """Average pooling maps exactly; max-pooling (NIR has none) becomes an AvgPool2d stand-in
    whose metadata names the real operation (a spiking max-pool's ``rule`` too)."""
    if len(value.shape) != 3:
        raise NIRExportError(
            f"{name}: NIR pooling nodes are 2-d; got an input of shape {value.shape}"
        )
    h, w = value.shape[1:]
    facts: dict[str, Any] = {}
    if isinstance(pool, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        oh, ow = shape[1:]
        if h % oh or w % ow:
            raise NIRExportError(
                f"{name}: adaptive pooling from {h}x{w} to {oh}x{ow} uses windows of unequal size, "
                "which NIR's pooling cannot express"
            )
        kernel, stride, padding = (h // oh, w // ow), (h // oh, w // ow), (0, 0)
        facts["output_size"] = np.array([oh, ow])
        op = "adaptive_avg_pool" if isinstance(pool, nn.AdaptiveAvgPool2d) else "adaptive_max_pool"
    else:
        kernel, padding = _pair(pool.kernel_size), _pair(pool.padding)
        stride = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
        if pool.ceil_mode:
            raise NIRExportError(f"{name}: ceil_mode=True pooling has no NIR equivalent")
        if isinstance(pool, nn.AvgPool2d):
            if pool.divisor_override or (any(padding) and not pool.count_include_pad):
                raise NIRExportError(
                    f"{name}: this AvgPool2d divides by other than the window size "
                    "(divisor_override or count_include_pad=False with padding); NIR cannot say so"
                )
            op = "avg_pool"
        else:
            if _pair(pool.dilation) != (1, 1):
                raise NIRExportError(f"{name}: dilated max-pooling cannot be exported")
            op = "max_pool"
    if op != "avg_pool" and op != "adaptive_avg_pool":
        op = "spiking_max_pool" if spiking else op
        facts["dilation"] = np.array([1, 1])
        what = "max-pooling"
        if spiking:
            facts["rule"] = rule
            what = (
                "spiking max-pool gate (Rueckauer 2017): passes the spikes of the input with "
                "the highest spike count so far"
                if rule == "gate"
                else "spiking max-pool, running rule: emits the change of the window's largest "
                "running spike count"
            )
        b.lossy.append((name, f"{what}; NIR has no max-pooling, so it is written as AvgPool2d"))
    facts["op"] = op
    facts["kernel_size"] = np.array(kernel)
    facts["stride"] = np.array(stride)
    facts["padding"] = np.array(padding)
    node = b.nir.AvgPool2d(
        kernel_size=np.array(kernel),
        stride=np.array(stride),
        padding=np.array(padding),
        metadata=node_metadata(**facts),
    )
    b.add(name, node, value.sources)
    amp = value.amplitude
    if amp is not None:
        amp = full_amplitude(channel_amplitude(value, name), shape)
    return ExportValue([name], shape, amp)


__all__ = ["export_conv", "export_flatten", "export_linear", "export_pool"]
