"""An ONNX model -> a GraphModule of standard ``torch.nn`` modules (optional extra ``onnx``).

The ONNX graph is mapped directly, node by node, onto the modules conversion understands (see
:mod:`spikebridge.loading.builder`), rather than through an importer such as onnx2torch:
onnx2torch builds modules of its own (``OnnxBinaryMathOperation``, ``OnnxReshape``,
``OnnxConcat``, ...) that :func:`spikebridge.convert.check`/``prepare``, calibration and the
operation counters do not know, so a second mapping would be needed anyway; a direct mapping
needs only the ``onnx`` package (protobuf, no pickles: reading a file runs no code from it), and
its errors name the ONNX node, its op type and, for files written by ``torch.onnx.export``, the
user's source line.

Shape arithmetic that exporters write as nodes (``Shape``, ``Gather``, ``Unsqueeze``, ``Concat``
feeding a ``Reshape``) is evaluated on constants; a reshape keeps the batch axis free. Keras or
JAX models exported to ONNX (tf2onnx, jax2onnx) map the same way when they use these operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx

from .builder import BROKEN, GraphBuilder, Site
from .errors import ModelLoadError
from .exported import user_source_line

INSTALL_HINT = "reading ONNX files needs the optional extra: pip install 'spikebridge[onnx]'"


def _require_onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as err:
        raise ModelLoadError(f"{INSTALL_HINT} ({err})") from err
    return onnx, numpy_helper


def _attributes(node) -> dict[str, Any]:
    onnx, _ = _require_onnx()
    out = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        if isinstance(value, bytes):
            value = value.decode()
        out[attr.name] = value
    return out


def _metadata(node) -> dict[str, str]:
    return {p.key: p.value for p in getattr(node, "metadata_props", [])}


def _as_float_tensor(array: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.array(array, copy=True))
    return tensor.float() if tensor.is_floating_point() else tensor


class _OnnxMapper:
    def __init__(self, model, name: str) -> None:
        _, self.numpy_helper = _require_onnx()
        self.model = model
        self.graph = model.graph
        self.builder = GraphBuilder(name)
        self.env: dict[str, Any] = {}
        self.consumers: dict[str, int] = {}
        self.handlers: dict[str, Callable[[Any, Site, list, dict], Any]] = {
            "Conv": self.conv,
            "Gemm": self.gemm,
            "MatMul": self.matmul,
            "BatchNormalization": self.batch_norm,
            "Relu": self.relu,
            "LeakyRelu": self.leaky_relu,
            "Clip": self.clip,
            "MaxPool": self.max_pool,
            "AveragePool": self.avg_pool,
            "GlobalAveragePool": self.global_avg_pool,
            "ReduceMean": self.reduce_mean,
            "Add": self.add,
            "Sum": self.add,
            "Concat": self.concat,
            "Flatten": self.flatten,
            "Reshape": self.reshape,
            "Squeeze": self.squeeze,
            "Unsqueeze": self.squeeze,
            "Dropout": self.dropout,
            "Identity": self.identity,
            "Shape": self.shape,
        }
        self.constant_ops: dict[str, Callable[[list, dict], np.ndarray]] = {
            "Identity": lambda a, k: a[0],
            "Cast": lambda a, k: a[0],
            "Gather": lambda a, k: np.take(a[0], a[1], axis=k.get("axis", 0)),
            "Unsqueeze": _unsqueeze,
            "Squeeze": _squeeze,
            "Concat": lambda a, k: np.concatenate([np.atleast_1d(v) for v in a], k["axis"]),
            "Slice": _slice,
            "Mul": lambda a, k: a[0] * a[1],
            "Add": lambda a, k: a[0] + a[1],
            "Sub": lambda a, k: a[0] - a[1],
            "Div": lambda a, k: (
                a[0] // a[1] if np.issubdtype(np.asarray(a[0]).dtype, np.integer) else a[0] / a[1]
            ),
            "Neg": lambda a, k: -a[0],
            "Reshape": lambda a, k: np.reshape(a[0], a[1]),
            "Shape": lambda a, k: np.array(np.shape(a[0]), dtype=np.int64),
        }

    def run(self) -> fx.GraphModule:
        for init in self.graph.initializer:
            self.env[init.name] = self.numpy_helper.to_array(init)
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name] = self.consumers.get(name, 0) + 1
        for out in self.graph.output:
            self.consumers[out.name] = self.consumers.get(out.name, 0) + 1
        self.input()
        for node in self.graph.node:
            self.call(node)
        self.output()
        return self.builder.build()

    def input(self) -> None:
        inputs = [i for i in self.graph.input if i.name not in self.env]
        if len(inputs) != 1:
            raise ModelLoadError(
                f"{self.builder.name}: the ONNX graph takes {len(inputs)} inputs "
                f"({', '.join(i.name for i in inputs) or 'none'}); conversion needs one image "
                "input [B, C, H, W]"
            )
        value = inputs[0]
        dims = value.type.tensor_type.shape.dim
        shape = []
        for i, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(int(dim.dim_value))
            elif i == 0:
                shape.append(2)  # a symbolic batch axis
            else:
                raise ModelLoadError(
                    f"{self.builder.name}: input {value.name!r} has a symbolic size on axis {i} "
                    f"({dim.dim_param or '?'}); export the model with a fixed image size"
                )
        if len(shape) < 2:
            raise ModelLoadError(
                f"{self.builder.name}: input {value.name!r} has shape {shape}; conversion needs "
                "[B, C, H, W] (or [B, C, L])"
            )
        self.env[value.name] = self.builder.input(value.name, torch.rand(shape))

    def output(self) -> None:
        if len(self.graph.output) != 1:
            raise ModelLoadError(
                f"{self.builder.name}: the ONNX graph returns {len(self.graph.output)} outputs; "
                "conversion needs a model returning one tensor of class scores"
            )
        value = self.env.get(self.graph.output[0].name)
        if value is BROKEN:
            return
        if not isinstance(value, fx.Node):
            raise ModelLoadError(f"{self.builder.name}: the ONNX graph's output is a constant")
        self.builder.output(value)

    def site(self, node) -> Site:
        meta = _metadata(node)
        source = user_source_line(meta.get("pkg.torch.onnx.stack_trace"))
        return Site(node.name or node.output[0], node.op_type, source)

    def layer_name(self, node) -> str:
        meta = _metadata(node)
        scopes = meta.get("pkg.torch.onnx.name_scopes")
        if scopes:
            parts = [p.strip(" '\"") for p in scopes.strip("[]").split(",")]
            path = ".".join(p for p in parts[:-1] if p)
            if path:
                return path
        name = node.name.strip("/")
        if "/" in name:
            return name.rsplit("/", 1)[0].replace("/", ".")
        return name or node.output[0]

    def call(self, node) -> None:
        inputs = [self.env.get(name) if name else None for name in node.input]
        missing = [n for n, v in zip(node.input, inputs) if n and n not in self.env]
        if missing:
            raise ModelLoadError(
                f"{self.builder.name}: node {node.name!r} reads {missing}, which nothing before "
                "it computes (the ONNX graph is not topologically sorted or is damaged)"
            )
        known = node.op_type in self.handlers or node.op_type in self.constant_ops
        if any(v is BROKEN for v in inputs) and (known or node.op_type == "Constant"):
            self._set(node, [BROKEN] * len(node.output))
            return
        attrs = _attributes(node)
        if node.op_type == "Constant":
            self._set(node, [self._constant(attrs)])
            return
        is_tensor = any(isinstance(v, fx.Node) for v in inputs)
        if not is_tensor and node.op_type in self.constant_ops:
            self._set(node, [self.constant_ops[node.op_type](inputs, attrs)])
            return
        site = self.site(node)
        handler = self.handlers.get(node.op_type)
        if handler is None:
            result = self.builder.problem(site, f"unsupported operation {node.op_type}")
        elif inputs and not isinstance(inputs[0], fx.Node) and node.op_type not in ("Add", "Sum"):
            result = self.builder.problem(
                site,
                "its input is a constant, not a tensor of the network",
                "apply layers to the network's input only",
            )
        else:
            result = handler(node, site, inputs, attrs)
        self._set(node, result if isinstance(result, list) else [result])

    def _set(self, node, values: list) -> None:
        for i, name in enumerate(node.output):
            if not name:
                continue
            if i < len(values):
                self.env[name] = values[i]
            elif self.consumers.get(name):
                self.env[name] = self.builder.problem(
                    self.site(node),
                    f"its output #{i} ({name}) is used",
                    "use only its first output",
                )
            else:
                self.env[name] = None

    def _constant(self, attrs: dict) -> np.ndarray:
        if "value" in attrs:
            return self.numpy_helper.to_array(attrs["value"])
        for key in ("value_float", "value_int", "value_floats", "value_ints"):
            if key in attrs:
                return np.array(attrs[key])
        raise ModelLoadError(f"{self.builder.name}: a Constant node of unsupported kind {attrs}")

    # -- handlers ---------------------------------------------------------------------------

    def _weight(self, site: Site, value: Any, what: str) -> torch.Tensor | None:
        if value is None:
            return None
        if isinstance(value, np.ndarray):
            return _as_float_tensor(value)
        self.builder.problem(
            site,
            f"its {what} is computed inside the graph, not a stored initializer",
            "export the model with its weights as initializers (constant folding on)",
        )
        return None

    def _pads(self, site: Site, node, attrs: dict, dims: int, kernel, dilation) -> Any:
        auto = attrs.get("auto_pad", "NOTSET")
        if auto == "VALID":
            return 0
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            strides = attrs.get("strides", [1] * dims)
            if all(s == 1 for s in strides) and all(
                (k - 1) * d % 2 == 0 for k, d in zip(kernel, dilation)
            ):
                return [(k - 1) * d // 2 for k, d in zip(kernel, dilation)]
            self.builder.problem(
                site,
                f"auto_pad={auto} with strides {list(strides)} pads unevenly",
                "export with explicit symmetric pads",
            )
            return None
        pads = list(attrs.get("pads", [0] * (2 * dims)))
        begin, end = pads[:dims], pads[dims:]
        if begin != end:
            self.builder.problem(
                site,
                f"asymmetric padding {pads}",
                "use symmetric padding (e.g. padding=k//2 with odd kernels, or pad explicitly)",
            )
            return None
        return begin

    def conv(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        weight = self._weight(site, inputs[1], "weight")
        bias = self._weight(site, inputs[2] if len(inputs) > 2 else None, "bias")
        if weight is None:
            return BROKEN
        dims = weight.dim() - 2
        kernel = list(attrs.get("kernel_shape", weight.shape[2:]))
        dilation = list(attrs.get("dilations", [1] * dims))
        pads = self._pads(site, node, attrs, dims, kernel, dilation)
        if pads is None:
            return BROKEN
        return self.builder.conv(
            site,
            inputs[0],
            weight,
            bias,
            list(attrs.get("strides", [1] * dims)),
            pads,
            dilation,
            int(attrs.get("group", 1)),
            name=self.layer_name(node),
        )

    def gemm(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        if attrs.get("transA", 0):
            return self.builder.problem(site, "Gemm with transA=1", "use x @ W.T (nn.Linear)")
        weight = self._weight(site, inputs[1], "weight")
        bias = self._weight(site, inputs[2] if len(inputs) > 2 else None, "bias")
        if weight is None:
            return BROKEN
        weight = weight if attrs.get("transB", 0) else weight.t()
        weight = weight * float(attrs.get("alpha", 1.0))
        if bias is not None:
            bias = bias * float(attrs.get("beta", 1.0))
            if bias.numel() != weight.shape[0]:
                return self.builder.problem(
                    site, f"a Gemm bias of shape {tuple(bias.shape)}", "use a per-output bias"
                )
        return self.builder.linear(site, inputs[0], weight, bias, self.layer_name(node))

    def matmul(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        weight = self._weight(site, inputs[1], "weight")
        if weight is None:
            return BROKEN
        if weight.dim() != 2:
            return self.builder.problem(site, f"a MatMul with a {weight.dim()}-d weight")
        return self.builder.linear(site, inputs[0], weight.t(), None, self.layer_name(node))

    def batch_norm(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        scale, bias, mean, var = (self._weight(site, v, n) for v, n in zip(
            inputs[1:5], ("scale", "bias", "mean", "variance")
        ))  # fmt: skip
        if mean is None or var is None:
            return BROKEN
        eps = float(attrs.get("epsilon", 1e-5))
        return self.builder.batch_norm(
            site, inputs[0], scale, bias, mean, var, eps, self.layer_name(node)
        )

    def relu(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        return self.builder.relu(site, inputs[0], self.layer_name(node))

    def leaky_relu(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        slope = float(attrs.get("alpha", 0.01))
        return self.builder.leaky_relu(site, inputs[0], slope, self.layer_name(node))

    def clip(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        low, high = attrs.get("min"), attrs.get("max")
        for i, value in ((1, inputs[1] if len(inputs) > 1 else None),
                         (2, inputs[2] if len(inputs) > 2 else None)):  # fmt: skip
            if value is None:
                continue
            if not isinstance(value, np.ndarray):
                return self.builder.problem(site, "clip with tensor bounds", "clip to numbers")
            if i == 1:
                low = float(value)
            else:
                high = float(value)
        return self.builder.clamp(site, inputs[0], low, high, self.layer_name(node))

    def _pool_args(self, site, node, attrs):
        kernel = list(attrs["kernel_shape"])
        dims = len(kernel)
        dilation = list(attrs.get("dilations", [1] * dims))
        pads = self._pads(site, node, attrs, dims, kernel, dilation)
        return kernel, list(attrs.get("strides", [1] * dims)), pads, dilation

    def max_pool(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        kernel, stride, pads, dilation = self._pool_args(site, node, attrs)
        if pads is None:
            return BROKEN
        ceil = bool(attrs.get("ceil_mode", 0))
        return self.builder.max_pool(
            site, inputs[0], kernel, stride, pads, dilation, ceil, self.layer_name(node)
        )

    def avg_pool(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        kernel, stride, pads, dilation = self._pool_args(site, node, attrs)
        if pads is None:
            return BROKEN
        if any(d != 1 for d in dilation):
            return self.builder.problem(site, "a dilated average pool", "use dilation 1")
        return self.builder.avg_pool(
            site,
            inputs[0],
            kernel,
            stride,
            pads,
            bool(attrs.get("ceil_mode", 0)),
            bool(attrs.get("count_include_pad", 0)),
            None,
            self.layer_name(node),
        )

    def global_avg_pool(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        return self.builder.adaptive_avg_pool(site, inputs[0], 1, self.layer_name(node))

    def reduce_mean(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        axes = attrs.get("axes")
        if axes is None and len(inputs) > 1 and inputs[1] is not None:
            axes = [int(a) for a in np.atleast_1d(inputs[1])]
        if not axes:
            return self.builder.problem(
                site, "a mean over every axis", "average only over the spatial axes"
            )
        return self.builder.mean(site, inputs[0], axes, bool(attrs.get("keepdims", 1)))

    def add(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        if len(inputs) != 2:
            return self.builder.problem(site, f"a sum of {len(inputs)} inputs", "add two tensors")
        a, b = inputs
        if isinstance(a, np.ndarray) and isinstance(b, fx.Node):
            a, b = b, a
        if isinstance(a, fx.Node) and isinstance(b, np.ndarray):
            single_use = self.consumers.get(node.input[0 if a is inputs[0] else 1], 0) == 1
            if single_use and self.builder.add_bias(a, _as_float_tensor(b)):
                return a
        return self.builder.add(site, a, b)

    def concat(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        return self.builder.cat(site, inputs, int(attrs["axis"]))

    def flatten(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        shape = self.builder.shape(inputs[0])
        axis = int(attrs.get("axis", 1)) % max(len(shape), 1)
        return self.builder.reshape(
            site, inputs[0], (math.prod(shape[:axis]), math.prod(shape[axis:]))
        )

    def reshape(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        target = inputs[1]
        if not isinstance(target, np.ndarray):
            return self.builder.problem(
                site, "a reshape to a shape computed from the data", "reshape to a fixed shape"
            )
        before = self.builder.shape(inputs[0])
        allow_zero = bool(attrs.get("allowzero", 0))
        wanted = [
            before[i] if (int(s) == 0 and not allow_zero) else int(s)
            for i, s in enumerate(np.atleast_1d(target))
        ]
        try:
            after = tuple(torch.empty(before).reshape(wanted).shape)
        except RuntimeError as err:
            return self.builder.problem(site, f"a reshape that does not fit ({err})")
        return self.builder.reshape(site, inputs[0], after)

    def squeeze(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        axes = attrs.get("axes")
        if axes is None and len(inputs) > 1 and inputs[1] is not None:
            axes = [int(a) for a in np.atleast_1d(inputs[1])]
        example = np.empty(self.builder.shape(inputs[0]))
        fn = _squeeze if node.op_type == "Squeeze" else _unsqueeze
        after = fn([example, axes], {"axes": axes}).shape
        return self.builder.reshape(site, inputs[0], after)

    def dropout(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        ratio = attrs.get("ratio", 0.5)
        if len(inputs) > 1 and isinstance(inputs[1], np.ndarray):
            ratio = float(inputs[1])
        return self.builder.dropout(site, inputs[0], ratio, self.layer_name(node))

    def identity(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        return inputs[0]

    def shape(self, node, site: Site, inputs: list, attrs: dict) -> Any:
        shape = np.array(self.builder.shape(inputs[0]), dtype=np.int64)
        start, end = attrs.get("start", 0), attrs.get("end")
        return shape[start:end]


def _axes(args: list, attrs: dict) -> list[int] | None:
    axes = attrs.get("axes")
    if axes is None and len(args) > 1 and args[1] is not None:
        axes = [int(a) for a in np.atleast_1d(args[1])]
    return axes


def _unsqueeze(args: list, attrs: dict) -> np.ndarray:
    out = np.asarray(args[0])
    axes = _axes(args, attrs) or []
    rank = out.ndim + len(axes)
    for axis in sorted(int(a) % rank for a in axes):
        out = np.expand_dims(out, axis)
    return out


def _squeeze(args: list, attrs: dict) -> np.ndarray:
    out = np.asarray(args[0])
    axes = _axes(args, attrs)
    return np.squeeze(out, axis=None if axes is None else tuple(int(a) for a in axes))


def _slice(args: list, attrs: dict) -> np.ndarray:
    data = np.asarray(args[0])
    starts, ends = np.atleast_1d(args[1]), np.atleast_1d(args[2])
    axes = np.atleast_1d(args[3]) if len(args) > 3 and args[3] is not None else range(len(starts))
    steps = np.atleast_1d(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return data[tuple(index)]


def onnx_to_module(path: str | Path) -> fx.GraphModule:
    """The GraphModule of standard modules that computes what the ONNX model in ``path`` computes.

    Input [B, C, H, W] (any B), output [B, K]. Raises
    :class:`~spikebridge.loading.errors.ModelLoadError` for a file that is not a readable ONNX
    model (or when the ``onnx`` extra is missing) and
    :class:`~spikebridge.loading.errors.UnsupportedOperationError` listing every node that
    cannot be converted (op type, node name, source line when the exporter recorded it).
    """
    onnx, _ = _require_onnx()
    try:
        model = onnx.load(str(path))
    except Exception as err:
        raise ModelLoadError(
            f"{path}: not a readable ONNX model ({type(err).__name__}: {err}). The file is corrupt "
            "or not ONNX; export it again (torch.onnx.export, tf2onnx, ...)"
        ) from err
    if not model.graph.node:
        raise ModelLoadError(f"{path}: the ONNX file holds no graph (empty or not an ONNX model)")
    name = Path(path).stem
    return _OnnxMapper(model, name).run()


__all__ = ["INSTALL_HINT", "onnx_to_module"]
