"""Fan-out maps and dense operation counts of one layer (SPEC 3.2).

A non-zero input element of a layer costs one accumulate for every output it reaches. Fan-outs
are exact at the borders (an input in the corner of a padded 3x3 conv reaches 4 output
positions, not 9): they come from the gradient of a ones-kernel copy of the layer with respect to
a ones input (with reflect/circular padding, where one input can sit twice in a receptive field,
from the distinct outputs each input index reaches).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.graph import ADAPTIVE_AVG_POOLS_ND, AVG_POOLS_ND, CONVS
from .layers import layer_kind


def _adaptive_counts(size: int, out: int | None) -> Tensor:
    """How many adaptive-pooling windows cover each of ``size`` positions (output ``out``)."""
    out = size if out is None else out
    counts = torch.zeros(size, dtype=torch.long)
    for i in range(out):
        start = (i * size) // out
        end = -((-(i + 1) * size) // out)
        counts[start:end] += 1
    return counts


def fanout_map(module: nn.Module, spatial: tuple[int, ...]) -> tuple[Tensor, int]:
    """Outputs reached by one non-zero input element, per spatial position.

    Args:
        module: a convolution or (adaptive) average pooling layer.
        spatial: the input's spatial shape (L,), (H, W) or (D, H, W).

    Returns:
        (map [*spatial] int64 of output positions reached within one channel, channel factor):
        an input element at position p reaches ``map[p] * factor`` outputs (for a conv the factor
        is ``out_channels / groups``; 1 for pooling).
    """
    with torch.enable_grad():
        return _fanout_map(module, tuple(int(n) for n in spatial))


def _fanout_map(module: nn.Module, spatial: tuple[int, ...]) -> tuple[Tensor, int]:
    d = len(spatial)
    if isinstance(module, ADAPTIVE_AVG_POOLS_ND):
        size = module.output_size
        sizes = (size,) * d if isinstance(size, int) or size is None else tuple(size)
        counts = [_adaptive_counts(n, o) for n, o in zip(spatial, sizes)]
        grid = counts[0]
        for c in counts[1:]:
            grid = grid.unsqueeze(-1) * c
        return grid, 1
    x = torch.ones(1, 1, *spatial, dtype=torch.float64, requires_grad=True)
    if isinstance(module, CONVS):
        conv = (F.conv1d, F.conv2d, F.conv3d)[d - 1]
        kernel = torch.ones(1, 1, *module.kernel_size, dtype=torch.float64)
        if module.padding_mode != "zeros":
            return _distinct_fanout(module, spatial), module.out_channels // module.groups
        y = conv(x, kernel, None, module.stride, module.padding, module.dilation)
        factor = module.out_channels // module.groups
    elif isinstance(module, AVG_POOLS_ND):
        k = _tuple(module.kernel_size, d)
        s = _tuple(module.stride if module.stride is not None else module.kernel_size, d)
        p = _tuple(module.padding, d)
        if d == 1:  # avg_pool1d has no divisor_override: count on a 1 x L image
            y = F.avg_pool2d(
                x.unsqueeze(2),
                (1, *k),
                (1, *s),
                (0, *p),
                module.ceil_mode,
                True,
                divisor_override=1,
            )
        else:
            pool = F.avg_pool2d if d == 2 else F.avg_pool3d
            y = pool(x, k, s, p, module.ceil_mode, True, divisor_override=1)
        factor = 1
    else:
        raise TypeError(f"no fan-out map for {type(module).__name__}")
    y.sum().backward()
    return x.grad[0, 0].round().long(), factor


def _distinct_fanout(module: nn.Module, spatial: tuple[int, ...]) -> Tensor:
    """Fan-out under reflect/replicate/circular padding, where an input can appear several times
    in one receptive field: count the distinct outputs each input reaches."""
    n = math.prod(spatial)
    index = torch.arange(n, dtype=torch.float64).reshape(1, 1, *spatial)
    windows = F.pad(index, module._reversed_padding_repeated_twice, mode=module.padding_mode)[0, 0]
    for dim, (k, step, dil) in enumerate(zip(module.kernel_size, module.stride, module.dilation)):
        windows = windows.unfold(dim, (k - 1) * dil + 1, step)[..., ::dil]
    members = windows.reshape(-1, math.prod(module.kernel_size)).long().sort(1).values
    first = torch.ones_like(members, dtype=torch.bool)
    first[:, 1:] = members[:, 1:] != members[:, :-1]
    return torch.bincount(members[first], minlength=n).reshape(spatial)


def _tuple(value, d: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return (
            tuple(int(v) for v in value)
            if len(value) == d
            else tuple(int(value[0]) for _ in range(d))
        )
    return (int(value),) * d


def dense_macs(module: nn.Module, inputs: tuple, output: Tensor) -> tuple[int, int]:
    """(MACs, ACs) of one sample through ``module`` computed densely, as an ANN does.

    Convolutions: output elements x (in_channels / groups) x kernel volume; linear: output
    elements x in_features; average pooling: the window memberships of the input (sum of the
    fan-out map); mean: input elements; addition: one AC per output element.
    """
    kind = layer_kind(module)
    x = inputs[0]
    n = max(x.shape[0], 1) if x.dim() else 1
    if kind == "conv":
        per_out = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return output.numel() // n * per_out, 0
    if kind == "linear":
        return output.numel() // n * module.in_features, 0
    if kind == "avgpool":
        d = _pool_dims(module)
        fan, _ = fanout_map(module, tuple(x.shape[-d:]))
        channels = x[0].numel() // math.prod(x.shape[-d:])
        return channels * int(fan.sum()), 0
    if kind == "mean":
        return x.numel() // n, 0
    if kind == "add":
        return 0, output.numel() // max(output.shape[0], 1)
    return 0, 0


def _pool_dims(module: nn.Module) -> int:
    for dims, classes in (
        (1, (nn.AvgPool1d, nn.AdaptiveAvgPool1d)),
        (2, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)),
    ):
        if isinstance(module, classes):
            return dims
    return 3
