"""The ONNX operators a CNN uses, each mapped onto the builder's standard modules.

One function per op type, registered in :data:`HANDLERS`. A handler takes the
:class:`~spikebridge.loading.onnx_graph.OnnxMapper` (the builder, layer names, how often each value
is read), the node, its :class:`~spikebridge.loading.problems.Site`, the values of its inputs (fx
nodes of the new graph or numpy constants) and its attributes; it returns the node's value or
``BROKEN`` after recording a problem. Weights must be stored initializers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import fx

from .onnx_calls import as_float_tensor, pool_window, stored, symmetric_padding, weight_and_bias
from .onnx_constants import axes, squeeze, unsqueeze
from .problems import BROKEN, Site

if TYPE_CHECKING:
    from .onnx_graph import OnnxMapper

Handler = Callable[["OnnxMapper", Any, Site, list, dict], Any]


# -- synaptic layers and batch norm ---------------------------------------------------------


def conv(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    weight, bias = weight_and_bias(m.builder, site, inputs)
    if weight is None:
        return BROKEN
    dims = weight.dim() - 2
    kernel = list(attrs.get("kernel_shape", weight.shape[2:]))
    dilation = list(attrs.get("dilations", [1] * dims))
    pads = symmetric_padding(m.builder, site, attrs, dims, kernel, dilation)
    if pads is None:
        return BROKEN
    return m.builder.conv(
        site,
        inputs[0],
        weight,
        bias,
        list(attrs.get("strides", [1] * dims)),
        pads,
        dilation,
        int(attrs.get("group", 1)),
        name=m.layer_name(node),
    )


def gemm(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    if attrs.get("transA", 0):
        return m.builder.problem(site, "Gemm with transA=1", "use x @ W.T (nn.Linear)")
    weight, bias = weight_and_bias(m.builder, site, inputs)
    if weight is None:
        return BROKEN
    weight = weight if attrs.get("transB", 0) else weight.t()
    weight = weight * float(attrs.get("alpha", 1.0))
    if bias is not None:
        bias = bias * float(attrs.get("beta", 1.0))
        if bias.numel() != weight.shape[0]:
            return m.builder.problem(
                site, f"a Gemm bias of shape {tuple(bias.shape)}", "use a per-output bias"
            )
    return m.builder.linear(site, inputs[0], weight, bias, m.layer_name(node))


def matmul(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    weight = stored(m.builder, site, inputs[1], "weight")
    if weight is None:
        return BROKEN
    if weight.dim() != 2:
        return m.builder.problem(site, f"a MatMul with a {weight.dim()}-d weight")
    return m.builder.linear(site, inputs[0], weight.t(), None, m.layer_name(node))


def batch_norm(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    scale, bias, mean, var = (stored(m.builder, site, v, n) for v, n in zip(
        inputs[1:5], ("scale", "bias", "mean", "variance")
    ))  # fmt: skip
    if mean is None or var is None:
        return BROKEN
    eps = float(attrs.get("epsilon", 1e-5))
    return m.builder.batch_norm(site, inputs[0], scale, bias, mean, var, eps, m.layer_name(node))


# -- activations ----------------------------------------------------------------------------


def relu(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    return m.builder.relu(site, inputs[0], m.layer_name(node))


def leaky_relu(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    slope = float(attrs.get("alpha", 0.01))
    return m.builder.leaky_relu(site, inputs[0], slope, m.layer_name(node))


def clip(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    low, high = attrs.get("min"), attrs.get("max")
    for i, value in ((1, inputs[1] if len(inputs) > 1 else None),
                     (2, inputs[2] if len(inputs) > 2 else None)):  # fmt: skip
        if value is None:
            continue
        if not isinstance(value, np.ndarray):
            return m.builder.problem(site, "clip with tensor bounds", "clip to numbers")
        if i == 1:
            low = float(value)
        else:
            high = float(value)
    return m.builder.clamp(site, inputs[0], low, high, m.layer_name(node))


# -- pooling --------------------------------------------------------------------------------


def max_pool(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    kernel, stride, pads, dilation = pool_window(m.builder, site, attrs)
    if pads is None:
        return BROKEN
    ceil = bool(attrs.get("ceil_mode", 0))
    return m.builder.max_pool(
        site, inputs[0], kernel, stride, pads, dilation, ceil, m.layer_name(node)
    )


def avg_pool(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    kernel, stride, pads, dilation = pool_window(m.builder, site, attrs)
    if pads is None:
        return BROKEN
    if any(d != 1 for d in dilation):
        return m.builder.problem(site, "a dilated average pool", "use dilation 1")
    return m.builder.avg_pool(
        site,
        inputs[0],
        kernel,
        stride,
        pads,
        bool(attrs.get("ceil_mode", 0)),
        bool(attrs.get("count_include_pad", 0)),
        None,
        m.layer_name(node),
    )


def global_avg_pool(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    return m.builder.adaptive_avg_pool(site, inputs[0], 1, m.layer_name(node))


def reduce_mean(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    over = axes(inputs, attrs)
    if not over:
        return m.builder.problem(
            site, "a mean over every axis", "average only over the spatial axes"
        )
    return m.builder.mean(site, inputs[0], over, bool(attrs.get("keepdims", 1)))


# -- joins, shapes and pass-throughs --------------------------------------------------------


def add(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    if len(inputs) != 2:
        return m.builder.problem(site, f"a sum of {len(inputs)} inputs", "add two tensors")
    a, b = inputs
    if isinstance(a, np.ndarray) and isinstance(b, fx.Node):
        a, b = b, a
    if isinstance(a, fx.Node) and isinstance(b, np.ndarray):
        single_use = m.consumers.get(node.input[0 if a is inputs[0] else 1], 0) == 1
        if single_use and m.builder.add_bias(a, as_float_tensor(b)):
            return a
    return m.builder.add(site, a, b)


def concat(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    return m.builder.cat(site, inputs, int(attrs["axis"]))


def flatten(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    shape = m.builder.shape(inputs[0])
    axis = int(attrs.get("axis", 1)) % max(len(shape), 1)
    return m.builder.reshape(site, inputs[0], (math.prod(shape[:axis]), math.prod(shape[axis:])))


def reshape(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    target = inputs[1]
    if not isinstance(target, np.ndarray):
        return m.builder.problem(
            site, "a reshape to a shape computed from the data", "reshape to a fixed shape"
        )
    before = m.builder.shape(inputs[0])
    allow_zero = bool(attrs.get("allowzero", 0))
    wanted = [
        before[i] if (int(s) == 0 and not allow_zero) else int(s)
        for i, s in enumerate(np.atleast_1d(target))
    ]
    try:
        after = tuple(torch.empty(before).reshape(wanted).shape)
    except RuntimeError as err:
        return m.builder.problem(site, f"a reshape that does not fit ({err})")
    return m.builder.reshape(site, inputs[0], after)


def squeeze_or_unsqueeze(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    along = axes(inputs, attrs)
    example = np.empty(m.builder.shape(inputs[0]))
    fn = squeeze if node.op_type == "Squeeze" else unsqueeze
    after = fn([example, along], {"axes": along}).shape
    return m.builder.reshape(site, inputs[0], after)


def dropout(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    ratio = attrs.get("ratio", 0.5)
    if len(inputs) > 1 and isinstance(inputs[1], np.ndarray):
        ratio = float(inputs[1])
    return m.builder.dropout(site, inputs[0], ratio, m.layer_name(node))


def identity(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    return inputs[0]


def shape(m: OnnxMapper, node, site: Site, inputs: list, attrs: dict) -> Any:
    sizes = np.array(m.builder.shape(inputs[0]), dtype=np.int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    return sizes[start:end]


HANDLERS: dict[str, Handler] = {
    "Conv": conv,
    "Gemm": gemm,
    "MatMul": matmul,
    "BatchNormalization": batch_norm,
    "Relu": relu,
    "LeakyRelu": leaky_relu,
    "Clip": clip,
    "MaxPool": max_pool,
    "AveragePool": avg_pool,
    "GlobalAveragePool": global_avg_pool,
    "ReduceMean": reduce_mean,
    "Add": add,
    "Sum": add,
    "Concat": concat,
    "Flatten": flatten,
    "Reshape": reshape,
    "Squeeze": squeeze_or_unsqueeze,
    "Unsqueeze": squeeze_or_unsqueeze,
    "Dropout": dropout,
    "Identity": identity,
    "Shape": shape,
}
"""The ONNX op types that can be rebuilt on tensors of the network."""

# op types whose first input may be a constant (a bias added before or after the tensor)
CONSTANT_FIRST = frozenset({"Add", "Sum"})


__all__ = ["CONSTANT_FIRST", "HANDLERS", "as_float_tensor"]
