"""Reading one ONNX node for the handlers of :mod:`.onnx_ops`: stored weights (initializers),
symmetric padding from ``pads``/``auto_pad``, and a pooling's window.

Each reader records a problem on the builder (naming the node's
:class:`~spikebridge.loading.problems.Site`) and returns None when the node cannot be rebuilt.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .builder import GraphBuilder
from .problems import Site


def as_float_tensor(array: np.ndarray) -> torch.Tensor:
    """A numpy constant as a torch tensor, floating point ones as float32."""
    tensor = torch.from_numpy(np.array(array, copy=True))
    return tensor.float() if tensor.is_floating_point() else tensor


def stored(builder: GraphBuilder, site: Site, value: Any, what: str) -> torch.Tensor | None:
    """``value`` as a weight tensor; a value computed in the graph is recorded as a problem."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return as_float_tensor(value)
    builder.problem(
        site,
        f"its {what} is computed inside the graph, not a stored initializer",
        "export the model with its weights as initializers (constant folding on)",
    )
    return None


def weight_and_bias(builder: GraphBuilder, site: Site, inputs: list) -> tuple[Any, Any]:
    """The stored weight (input 1) and optional bias (input 2) of a Conv or Gemm."""
    weight = stored(builder, site, inputs[1], "weight")
    bias = stored(builder, site, inputs[2] if len(inputs) > 2 else None, "bias")
    return weight, bias


def symmetric_padding(
    builder: GraphBuilder, site: Site, attrs: dict, dims: int, kernel, dilation
) -> Any:
    """Symmetric padding per spatial axis from ``pads``/``auto_pad``; None after a problem."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto == "VALID":
        return 0
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        strides = attrs.get("strides", [1] * dims)
        if all(s == 1 for s in strides) and all(
            (k - 1) * d % 2 == 0 for k, d in zip(kernel, dilation)
        ):
            return [(k - 1) * d // 2 for k, d in zip(kernel, dilation)]
        builder.problem(
            site,
            f"auto_pad={auto} with strides {list(strides)} pads unevenly",
            "export with explicit symmetric pads",
        )
        return None
    pads = list(attrs.get("pads", [0] * (2 * dims)))
    begin, end = pads[:dims], pads[dims:]
    if begin != end:
        builder.problem(
            site,
            f"asymmetric padding {pads}",
            "use symmetric padding (e.g. padding=k//2 with odd kernels, or pad explicitly)",
        )
        return None
    return begin


def pool_window(builder: GraphBuilder, site: Site, attrs: dict):
    kernel = list(attrs["kernel_shape"])
    dims = len(kernel)
    dilation = list(attrs.get("dilations", [1] * dims))
    pads = symmetric_padding(builder, site, attrs, dims, kernel, dilation)
    return kernel, list(attrs.get("strides", [1] * dims)), pads, dilation


__all__ = ["as_float_tensor", "pool_window", "stored", "symmetric_padding", "weight_and_bias"]
