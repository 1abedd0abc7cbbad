"""Which layers the operation counters know, and the modules that stand for functional calls.

Functional calls that matter for counting (``x + y``, ``F.avg_pool2d``, ``x.mean(...)``) become
the modules below in an instrumented copy of a network (:mod:`.instrument`), so one hook
mechanism counts everything (SPEC 3.2).
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.graph import (
    ADAPTIVE_AVG_POOLS_ND,
    ADAPTIVE_MAX_POOLS_ND,
    AVG_POOLS_ND,
    CONVS,
    MAX_POOLS_ND,
)

MAX_POOLS = (*MAX_POOLS_ND, *ADAPTIVE_MAX_POOLS_ND)
"""Max pooling routes spikes without accumulating: counted as nothing, passes spikes on."""
MEAN_FUNCTIONS = {torch.mean}
POOL_FUNCTIONS = {
    F.avg_pool1d: nn.AvgPool1d,
    F.avg_pool2d: nn.AvgPool2d,
    F.avg_pool3d: nn.AvgPool3d,
    F.adaptive_avg_pool1d: nn.AdaptiveAvgPool1d,
    F.adaptive_avg_pool2d: nn.AdaptiveAvgPool2d,
    F.adaptive_avg_pool3d: nn.AdaptiveAvgPool3d,
}
SHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, operator.getitem}
SHAPE_METHODS = {
    "view",
    "reshape",
    "flatten",
    "contiguous",
    "squeeze",
    "unsqueeze",
    "permute",
    "transpose",
}
SHAPE_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)


class Add(nn.Module):
    """``a + b`` as a module, so a forward hook sees a residual junction.

    ``spike_inputs`` are the positions of the operands that carry spikes straight from a neuron.
    """

    def __init__(self, spike_inputs: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.spike_inputs = tuple(spike_inputs)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b

    def extra_repr(self) -> str:
        return f"spike_inputs={self.spike_inputs}"


class Mean(nn.Module):
    """``x.mean(dim, keepdim)`` as a module (global average pooling written as a mean)."""

    def __init__(self, dim=None, keepdim: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim

    def forward(self, x: Tensor) -> Tensor:
        if self.dim is None:
            return x.mean()
        return x.mean(self.dim, keepdim=self.keepdim)


class CallSite(nn.Module):
    """Another call site of a shared layer (weight sharing): runs the layer without its hooks, so
    each call site is counted once, under its own name."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, *args, **kwargs):
        return self.layer.forward(*args, **kwargs)


def counted_module(module: nn.Module) -> nn.Module:
    """The layer behind a :class:`CallSite` (the module itself otherwise)."""
    return module.layer if isinstance(module, CallSite) else module


def layer_kind(module: nn.Module) -> str | None:
    """``conv``, ``linear``, ``avgpool``, ``mean`` or ``add`` for a counted layer, else None."""
    module = counted_module(module)
    if isinstance(module, CONVS):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, AVG_POOLS_ND + ADAPTIVE_AVG_POOLS_ND):
        return "avgpool"
    if isinstance(module, Mean):
        return "mean"
    if isinstance(module, Add):
        return "add"
    return None
