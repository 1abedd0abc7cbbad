"""The ATen operators of a CNN's layers: convolution, linear, batch norm, activations, pooling.

Each handler maps one operator family onto the builder's standard modules, in both forms an
exported program comes in: the default one (``aten.conv2d``, ``aten.linear``,
``aten.batch_norm``) and the core-ATen one after ``run_decompositions()``
(``aten.convolution``, ``aten.addmm`` of a transposed weight,
``aten._native_batch_norm_legit_no_training``, ``aten.max_pool2d_with_indices``). Handlers are
registered by name in :data:`spikebridge.loading.aten_ops.HANDLERS`; see :mod:`.aten_calls`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from torch import fx, nn

from .aten_calls import Deferred, ProgramNode, Weight, arg, on_tensor
from .problems import BROKEN, Site

if TYPE_CHECKING:
    from .exported import ProgramMapper


# -- synaptic layers ------------------------------------------------------------------------


def _input_weight_bias(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    """(input, weight, bias) of a conv/linear call: a tensor of the network, a stored weight
    (argument 1) and an optional stored bias (argument 2); BROKEN after recording each problem."""
    x = m.tensor_input(node, site)
    weight, ok = m.need_weight(node, site, 1, "weight")
    bias, ok_b = m.need_weight(node, site, 2, "bias", optional=True)
    if x is None or not (ok and ok_b):
        return BROKEN if x is not None else m.builder.constant_input(site)
    return x, weight, bias


def conv(m: ProgramMapper, node: ProgramNode, site: Site, groups_at: int = 6) -> Any:
    """``aten.conv2d`` (groups at argument 6) and, through :func:`convolution`, the core-ATen
    ``aten.convolution`` (groups at 8); stride, padding, dilation at 3, 4, 5 in both."""
    inputs = _input_weight_bias(m, node, site)
    if inputs is BROKEN:
        return BROKEN
    x, weight, bias = inputs
    return m.builder.conv(
        site,
        x,
        weight,
        bias,
        arg(node, 3, "stride", 1),
        arg(node, 4, "padding", 0),
        arg(node, 5, "dilation", 1),
        arg(node, groups_at, "groups", 1),
        name=m.layer_name(node, nn.Conv1d, nn.Conv2d),
    )


def convolution(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    if arg(node, 6, "transposed", False):
        return m.builder.problem(
            site,
            "a transposed convolution",
            "conversion supports ordinary convolutions; use upsampling + conv if needed",
        )
    return conv(m, node, site, groups_at=8)


def linear(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    inputs = _input_weight_bias(m, node, site)
    if inputs is BROKEN:
        return BROKEN
    x, weight, bias = inputs
    return m.builder.linear(site, x, weight, bias, m.layer_name(node, nn.Linear))


def addmm(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    bias = m.weight(node.args[0])
    x = m.value(node.args[1])
    mat = m.weight(node.args[2])
    if bias is None or mat is None or not isinstance(x, fx.Node):
        return m.builder.problem(
            site,
            "a matrix product that is not input x stored weight (+ stored bias)",
            "use nn.Linear layers",
        )
    if arg(node, 3, "beta", 1) != 1 or arg(node, 4, "alpha", 1) != 1:
        return m.builder.problem(site, "a scaled matrix product", "use nn.Linear layers")
    return m.builder.linear(site, x, mat.t(), bias, m.layer_name(node, nn.Linear))


def mm(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    x = m.value(node.args[0])
    mat = m.weight(node.args[1])
    if mat is None or not isinstance(x, fx.Node) or mat.dim() != 2:
        return m.builder.problem(
            site,
            "a matrix product that is not input x stored weight",
            "use nn.Linear layers",
        )
    return m.builder.linear(site, x, mat.t(), None, m.layer_name(node, nn.Linear))


def transpose(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    value = m.value(node.args[0])
    if not isinstance(value, Weight):
        return m.builder.problem(
            site,
            "a transpose/permute of a tensor of the network",
            "keep the feature layout [B, C, H, W]; only weights may be transposed",
        )
    name = node.target
    tensor = value.tensor
    if name == "permute":
        tensor = tensor.permute(*node.args[1])
    elif name == "transpose":
        tensor = tensor.transpose(node.args[1], node.args[2])
    else:
        tensor = tensor.t()
    return Weight(tensor, value.name)


# -- normalisation and activations ----------------------------------------------------------


def _batch_norm(m: ProgramMapper, node: ProgramNode, site: Site, eps_index: int) -> Any:
    x = m.tensor_input(node, site)
    weight = m.weight(node.args[1])
    bias = m.weight(node.args[2])
    mean = m.weight(node.args[3])
    var = m.weight(node.args[4])
    if x is None:
        return m.builder.constant_input(site)
    if mean is None or var is None:
        return m.builder.problem(
            site,
            "batch norm without running statistics (it normalises each batch by itself)",
            "use BatchNorm with track_running_stats=True, trained, and export in eval mode",
        )
    eps = arg(node, eps_index, "eps", 1e-5)
    name = m.layer_name(node, nn.BatchNorm1d, nn.BatchNorm2d)
    return m.builder.batch_norm(site, x, weight, bias, mean, var, eps, name)


def batch_norm(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    if arg(node, 5, "training", False):
        warnings.warn(
            f"{site}: batch norm was exported in training mode; its running statistics are "
            "used (the inference form). Export the model after model.eval()",
            stacklevel=2,
        )
    return _batch_norm(m, node, site, 7)


def batch_norm_legit(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    out = _batch_norm(m, node, site, 6)
    return (out, None, None) if out is not BROKEN else BROKEN


@on_tensor
def relu(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    return m.builder.relu(site, x, m.layer_name(node, nn.ReLU))


@on_tensor
def relu6(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    return m.builder.clamp(site, x, 0.0, 6.0, m.layer_name(node, nn.ReLU6))


@on_tensor
def leaky_relu(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    slope = arg(node, 1, "negative_slope", 0.01)
    return m.builder.leaky_relu(site, x, slope, m.layer_name(node, nn.LeakyReLU))


@on_tensor
def hardtanh(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    low, high = arg(node, 1, "min_val", -1.0), arg(node, 2, "max_val", 1.0)
    return m.builder.clamp(site, x, low, high, m.layer_name(node, nn.Hardtanh))


@on_tensor
def clamp(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    low, high = arg(node, 1, "min"), arg(node, 2, "max")
    if isinstance(low, ProgramNode) or isinstance(high, ProgramNode):
        return m.builder.problem(site, "clamp with tensor bounds", "clamp to numbers")
    return m.builder.clamp(site, x, low, high, m.layer_name(node))


# -- pooling --------------------------------------------------------------------------------


def _window(node: ProgramNode) -> tuple[Any, Any, Any]:
    """kernel_size, stride and padding of a pooling call (arguments 1, 2, 3 of every pool)."""
    return arg(node, 1, "kernel_size"), arg(node, 2, "stride"), arg(node, 3, "padding", 0)


@on_tensor
def max_pool(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    dilation, ceil_mode = arg(node, 4, "dilation", 1), bool(arg(node, 5, "ceil_mode", False))
    name = m.layer_name(node, nn.MaxPool1d, nn.MaxPool2d)
    return m.builder.max_pool(site, x, *_window(node), dilation, ceil_mode, name)


def max_pool_with_indices(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    out = max_pool(m, node, site)
    if out is BROKEN:
        return BROKEN
    indices = Deferred(
        "the indices of a max pooling are used", "use max pooling without return_indices"
    )
    return (out, indices)


@on_tensor
def avg_pool(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    ceil_mode = bool(arg(node, 4, "ceil_mode", False))
    count_include_pad = bool(arg(node, 5, "count_include_pad", True))
    divisor_override = arg(node, 6, "divisor_override")
    name = m.layer_name(node, nn.AvgPool1d, nn.AvgPool2d)
    return m.builder.avg_pool(
        site, x, *_window(node), ceil_mode, count_include_pad, divisor_override, name
    )


@on_tensor
def adaptive_avg_pool(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    name = m.layer_name(node, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
    return m.builder.adaptive_avg_pool(site, x, arg(node, 1, "output_size"), name)


@on_tensor
def mean(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    dims = arg(node, 1, "dim")
    if dims is None:
        dims = []
    elif isinstance(dims, int):
        dims = [dims]
    return m.builder.mean(site, x, dims, bool(arg(node, 2, "keepdim", False)))


__all__ = [
    "adaptive_avg_pool",
    "addmm",
    "avg_pool",
    "batch_norm",
    "batch_norm_legit",
    "clamp",
    "conv",
    "convolution",
    "hardtanh",
    "leaky_relu",
    "linear",
    "max_pool",
    "max_pool_with_indices",
    "mean",
    "mm",
    "relu",
    "relu6",
    "transpose",
]
