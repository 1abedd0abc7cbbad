"""The layers conversion understands, rebuilt from a foreign graph (ATen from torch.export, or ONNX).

Conversion (:func:`spikebridge.convert.prepare`, :func:`~spikebridge.convert.check`, calibration,
every normalisation method), the engine and the operation counters understand an ``fx``
GraphModule whose layers are ``nn.Conv2d``, ``nn.Linear``, ``nn.BatchNorm2d``, ``nn.ReLU``,
``nn.MaxPool2d``... and whose joins are ``operator.add``, ``torch.cat``, ``torch.reshape`` and
``torch.mean``. :class:`GraphBuilder` makes such a GraphModule one operation at a time, on top of
:class:`~spikebridge.loading.recorder.GraphRecorder`, which runs every operation on an example
input as it is added, so each value's shape is known; a reshape is then rewritten to keep the
batch axis free (``[-1, ...]``), because the spiking engine folds the time steps into the batch
(``[T*B, C, H, W]``), and an exporter records the example's batch size.

Problems are collected, not raised one at a time: :meth:`GraphBuilder.problem` records a node that
cannot be rebuilt (its op, the user's source line, the reason and the fix) and returns
:data:`BROKEN`; values computed from a broken value are broken too, and :meth:`GraphBuilder.build`
raises one :class:`~spikebridge.loading.errors.UnsupportedOperationError` listing every problem.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch
from torch import Tensor, fx, nn

from .problems import BROKEN, REPLACE_FIX, SMOOTH_ACTIVATIONS, SUPPORTED, Site, _Broken, fix_for
from .recorder import GraphRecorder, module_name


def _pair(value, dims: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * dims
    values = tuple(int(v) for v in value)
    return values * dims if len(values) == 1 else values


def _window(kernel, stride, dims: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A pooling's kernel and stride per spatial axis; no stride means stride = kernel."""
    kernel = _pair(kernel, dims)
    return kernel, (_pair(stride, dims) if stride else kernel)


class GraphBuilder(GraphRecorder):
    """Builds a GraphModule of standard modules; every value's shape is known from an example.

    Args:
        name: the class name of the GraphModule (the user's model class or file name).
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._bias_free: dict[fx.Node, nn.Module] = {}

    # -- layers -----------------------------------------------------------------------------

    def conv(
        self,
        site: Site,
        x: fx.Node,
        weight: Tensor,
        bias: Tensor | None,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        name: str | None = None,
    ) -> fx.Node | _Broken:
        """Conv1d/Conv2d from its weight [C_out, C_in/groups, *kernel]."""
        dims = weight.dim() - 2
        if dims not in (1, 2):
            return self.problem(
                site, f"{dims}-d convolution", "conversion supports 1-d and 2-d convolutions"
            )
        cls = nn.Conv1d if dims == 1 else nn.Conv2d
        pad = padding if isinstance(padding, str) else _pair(padding, dims)
        conv = cls(
            int(weight.shape[1]) * int(groups),
            int(weight.shape[0]),
            tuple(weight.shape[2:]),
            stride=_pair(stride, dims),
            padding=pad,
            dilation=_pair(dilation, dims),
            groups=int(groups),
            bias=bias is not None,
        )
        return self._synaptic(name or site.node, conv, x, weight, bias)

    def linear(
        self, site: Site, x: fx.Node, weight: Tensor, bias: Tensor | None, name: str | None = None
    ) -> fx.Node | _Broken:
        """Linear from its weight [out, in]."""
        if weight.dim() != 2:
            return self.problem(site, f"a linear weight of shape {tuple(weight.shape)}")
        if len(self.shape(x)) != 2:
            return self.problem(
                site,
                f"a matrix product on a {len(self.shape(x))}-d input (shape {self.shape(x)})",
                "flatten the features to [B, N] before the linear layer",
            )
        linear = nn.Linear(int(weight.shape[1]), int(weight.shape[0]), bias=bias is not None)
        return self._synaptic(name or site.node, linear, x, weight, bias)

    def _synaptic(
        self, name: str, layer: nn.Module, x: fx.Node, weight: Tensor, bias: Tensor | None
    ) -> fx.Node:
        with torch.no_grad():
            layer.weight.copy_(weight)
            if bias is not None:
                layer.bias.copy_(bias.reshape(-1))
        node = self.module(name, layer, x)
        if bias is None:
            self._bias_free[node] = layer
        return node

    def add_bias(self, node: fx.Node, bias: Tensor) -> bool:
        """Give a bias-free conv/linear ``node`` the constant ``bias`` added after it (ONNX
        MatMul + Add); False when ``node`` is not such a layer or ``bias`` is not per channel."""
        layer = self._bias_free.get(node)
        if layer is None or len(node.users) != 0:
            return False
        channels = layer.weight.shape[0]
        if bias.numel() != channels:
            return False
        shape = self.shape(node)
        expected = (channels,) + (1,) * (len(shape) - 2)
        if tuple(bias.shape) not in (expected, (channels,), (1, *expected)):
            return False
        layer.bias = nn.Parameter(bias.reshape(-1).to(layer.weight.dtype).clone())
        del self._bias_free[node]
        self._examples[node] = self._examples[node] + bias.reshape(expected)
        return True

    def batch_norm(
        self,
        site: Site,
        x: fx.Node,
        weight: Tensor | None,
        bias: Tensor | None,
        mean: Tensor,
        var: Tensor,
        eps: float,
        name: str | None = None,
    ) -> fx.Node | _Broken:
        """BatchNorm1d ([B, C] or [B, C, L]) or BatchNorm2d ([B, C, H, W]) in inference form."""
        rank = len(self.shape(x))
        if rank not in (2, 3, 4):
            return self.problem(site, f"batch norm on a {rank}-d input")
        channels = int(mean.numel())
        norm = (nn.BatchNorm2d if rank == 4 else nn.BatchNorm1d)(channels, eps=float(eps))
        with torch.no_grad():
            norm.running_mean.copy_(mean.reshape(-1))
            norm.running_var.copy_(var.reshape(-1))
            if weight is not None:
                norm.weight.copy_(weight.reshape(-1))
            if bias is not None:
                norm.bias.copy_(bias.reshape(-1))
        return self.module(name or site.node, norm, x)

    def relu(self, site: Site, x: fx.Node, name: str | None = None) -> fx.Node:
        return self.module(name or site.node, nn.ReLU(), x)

    def leaky_relu(self, site: Site, x: fx.Node, slope: float, name: str | None = None) -> fx.Node:
        return self.module(name or site.node, nn.LeakyReLU(float(slope)), x)

    def clamp(
        self,
        site: Site,
        x: fx.Node,
        low: float | None,
        high: float | None,
        name: str | None = None,
    ) -> fx.Node | _Broken:
        """clamp/clip/hardtanh: ReLU (min 0), ReLU6 (0, 6) or Hardtanh(min, max)."""
        low = None if low is None or (isinstance(low, float) and math.isinf(low)) else float(low)
        high = None if high is None or (isinstance(high, float) and math.isinf(high)) else high
        if high is None:
            if low == 0.0:
                return self.module(name or site.node, nn.ReLU(), x)
            return self.problem(
                site,
                f"clamp with min={low} and no max is not an activation conversion knows",
                "clamp at min=0 (a ReLU) or give both bounds (Hardtanh)",
            )
        if low is None:
            return self.problem(
                site,
                f"clamp with only max={high}",
                "clamp at min=0 as well (a clipped ReLU)",
            )
        act = nn.ReLU6() if (low, float(high)) == (0.0, 6.0) else nn.Hardtanh(low, float(high))
        return self.module(name or site.node, act, x)

    def dropout(self, site: Site, x: fx.Node, p: float, name: str | None = None) -> fx.Node:
        """Dropout (identity in inference; prepare() removes it)."""
        return self.module(name or site.node, nn.Dropout(float(p)), x)

    # -- pooling ----------------------------------------------------------------------------

    def _pool_dims(self, site: Site, x: fx.Node, what: str, window=None) -> int | _Broken:
        """1 or 2: the spatial dims of a pooling (``what``) of ``x``; BROKEN for another rank,
        or when the pooling ``window`` (kernel or output size) names another number of axes
        (an unbatched pooling: a 2-d pool of [C, H, W], a 1-d pool of [C, L])."""
        rank = len(self.shape(x))
        if rank not in (3, 4):
            return self.problem(site, f"{what} of a {rank}-d input")
        if isinstance(window, Sequence) and len(window) not in (1, rank - 2):
            return self.problem(
                site,
                f"{what} over {len(window)} axes of a {rank}-d input (an unbatched pooling: "
                "the batch axis would be pooled as channels)",
                f"give the pooling a [B, C, {'H, W' if len(window) == 2 else 'L'}] input",
            )
        return rank - 2

    def max_pool(
        self,
        site: Site,
        x: fx.Node,
        kernel,
        stride=None,
        padding=0,
        dilation=1,
        ceil_mode: bool = False,
        name: str | None = None,
    ) -> fx.Node | _Broken:
        dims = self._pool_dims(site, x, "max pooling", kernel)
        if dims is BROKEN:
            return BROKEN
        kernel, stride = _window(kernel, stride, dims)
        cls = nn.MaxPool1d if dims == 1 else nn.MaxPool2d
        pool = cls(kernel, stride, _pair(padding, dims), _pair(dilation, dims), False, ceil_mode)
        return self.module(name or site.node, pool, x)

    def avg_pool(
        self,
        site: Site,
        x: fx.Node,
        kernel,
        stride=None,
        padding=0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
        name: str | None = None,
    ) -> fx.Node | _Broken:
        dims = self._pool_dims(site, x, "average pooling", kernel)
        if dims is BROKEN:
            return BROKEN
        if divisor_override is not None:
            return self.problem(
                site, "average pooling with a divisor override", "use a plain average pool"
            )
        kernel, stride = _window(kernel, stride, dims)
        if dims == 1:
            pool: nn.Module = nn.AvgPool1d(
                kernel, stride, _pair(padding, dims), ceil_mode, count_include_pad
            )
        else:
            pool = nn.AvgPool2d(kernel, stride, _pair(padding, dims), ceil_mode, count_include_pad)
        return self.module(name or site.node, pool, x)

    def adaptive_avg_pool(
        self, site: Site, x: fx.Node, size, name: str | None = None
    ) -> fx.Node | _Broken:
        dims = self._pool_dims(site, x, "adaptive pooling", size)
        if dims is BROKEN:
            return BROKEN
        size = _pair(size, dims)
        pool = nn.AdaptiveAvgPool1d(size) if dims == 1 else nn.AdaptiveAvgPool2d(size)
        return self.module(name or site.node, pool, x)

    def mean(self, site: Site, x: fx.Node, dims: Sequence[int], keepdim: bool) -> fx.Node | _Broken:
        """A mean over spatial axes (global average pooling written as ``x.mean((2, 3))``)."""
        rank = len(self.shape(x))
        axes = sorted({int(d) % rank for d in dims})
        if not axes or any(d < 2 for d in axes):
            return self.problem(
                site,
                f"a mean over axes {list(dims)} of a {rank}-d input (batch or channel axis)",
                "average only over the spatial axes (dims 2 and up)",
            )
        return self.function(torch.mean, x, tuple(axes), bool(keepdim))

    # -- joins and shapes -------------------------------------------------------------------

    def add(self, site: Site, a, b) -> fx.Node | _Broken:
        """The sum of two tensors of the network (a residual join)."""
        if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)):
            return self.problem(
                site,
                "adding a constant to a tensor of the network",
                "add only tensors of the network (residual joins); fold constant offsets into "
                "a layer's bias",
            )
        if self.shape(a) != self.shape(b):
            return self.problem(
                site,
                f"a broadcasting add of shapes {self.shape(a)} and {self.shape(b)}",
                "add tensors of the same shape",
            )
        return self.function(operator.add, a, b)

    def cat(self, site: Site, tensors: Sequence, dim: int) -> fx.Node | _Broken:
        if not all(isinstance(t, fx.Node) for t in tensors):
            return self.problem(
                site, "concatenating a constant", "concatenate only tensors of the network"
            )
        rank = len(self.shape(tensors[0]))
        axis = int(dim) % rank
        if axis == 0:
            return self.problem(
                site, "concatenation along the batch axis", "concatenate along channels"
            )
        return self.function(torch.cat, list(tensors), axis)

    def reshape(self, site: Site, x: fx.Node, shape: Sequence[int]) -> fx.Node | _Broken:
        """view/reshape/flatten/squeeze to ``shape`` (the shape on the example input).

        The batch axis must stay first and unchanged; it becomes -1 so any batch (and the
        engine's folded ``T*B``) passes.
        """
        before = self.shape(x)
        after = tuple(int(s) for s in shape)
        if not after or after[0] != before[0]:
            return self.problem(
                site,
                f"a reshape from {before} to {after} that changes the batch axis",
                "keep the batch axis first and reshape only the features, e.g. x.flatten(1)",
            )
        if after == before:
            return x
        if len(after) == 2 and after[1] == math.prod(before[1:]):
            return self.module("flatten", nn.Flatten(), x)
        return self.function(torch.reshape, x, (-1, *after[1:]))


__all__ = [
    "BROKEN",
    "REPLACE_FIX",
    "SMOOTH_ACTIVATIONS",
    "SUPPORTED",
    "GraphBuilder",
    "Site",
    "fix_for",
    "module_name",
]
