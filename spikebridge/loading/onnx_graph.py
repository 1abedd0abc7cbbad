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

This module reads the file and walks the graph; the operators are mapped in
:mod:`spikebridge.loading.onnx_ops` (their weights and padding read by
:mod:`spikebridge.loading.onnx_calls`), constant shape arithmetic in
:mod:`spikebridge.loading.onnx_constants`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx

from .builder import BROKEN, GraphBuilder, Site
from .errors import ModelLoadError
from .onnx_constants import CONSTANT_OPS
from .onnx_ops import CONSTANT_FIRST, HANDLERS
from .problems import user_source_line

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


class OnnxMapper:
    """Walks an ONNX graph and rebuilds each node with :data:`.onnx_ops.HANDLERS` (constants
    with :data:`.onnx_constants.CONSTANT_OPS`); holds what the handlers read: the builder, the
    user's layer names and how many nodes read each value."""

    def __init__(self, model, name: str) -> None:
        _, self.numpy_helper = _require_onnx()
        self.model = model
        self.graph = model.graph
        self.builder = GraphBuilder(name)
        self.env: dict[str, Any] = {}
        self.consumers: dict[str, int] = {}

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
        values = [self.env.get(out.name) for out in self.graph.output]
        self.builder.output_of(values, "the ONNX graph")

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
        known = node.op_type in HANDLERS or node.op_type in CONSTANT_OPS
        if any(v is BROKEN for v in inputs) and (known or node.op_type == "Constant"):
            self._set(node, [BROKEN] * len(node.output))
            return
        attrs = _attributes(node)
        if node.op_type == "Constant":
            self._set(node, [self._constant(attrs)])
            return
        is_tensor = any(isinstance(v, fx.Node) for v in inputs)
        if not is_tensor and node.op_type in CONSTANT_OPS:
            self._set(node, [CONSTANT_OPS[node.op_type](inputs, attrs)])
            return
        site = self.site(node)
        handler = HANDLERS.get(node.op_type)
        if handler is None:
            result = self.builder.problem(site, f"unsupported operation {node.op_type}")
        elif inputs and not isinstance(inputs[0], fx.Node) and node.op_type not in CONSTANT_FIRST:
            result = self.builder.constant_input(site)
        else:
            result = handler(self, node, site, inputs, attrs)
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


def _load_external_data(onnx, model, path: Path) -> None:
    """Weights stored beside the model (ONNX external data), read only from regular files inside
    the model's folder: a location that is absolute, climbs out with ``..`` or resolves
    elsewhere through a link is refused, naming the tensor (onnx checks this too; this does
    not depend on its version)."""
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    folder = path.resolve().parent
    tensors = [t for t in _get_all_tensors(model) if uses_external_data(t)]
    for tensor in tensors:
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve() if location else folder
        plain = (
            location
            and not Path(location).is_absolute()
            and "\\" not in location
            and ".." not in Path(location).parts
        )
        if not plain or folder not in target.parents:
            raise ModelLoadError(
                f"{path}: tensor {tensor.name!r} keeps its data at {location!r}, outside the "
                "model's folder; refused. Keep external data files beside the .onnx file"
            )
        if not target.is_file() or (folder / location).is_symlink():
            raise ModelLoadError(
                f"{path}: tensor {tensor.name!r} keeps its data in {location!r}, which is "
                "missing, a link or not a regular file beside the model"
            )
    if tensors:
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(folder))
        except Exception as err:
            raise ModelLoadError(
                f"{path}: its external data could not be read ({type(err).__name__}: {err})"
            ) from err


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
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise ModelLoadError(
            f"{path}: not a readable ONNX model ({type(err).__name__}: {err}). The file is corrupt "
            "or not ONNX; export it again (torch.onnx.export, tf2onnx, ...)"
        ) from err
    _load_external_data(onnx, model, Path(path))
    if not model.graph.node:
        raise ModelLoadError(f"{path}: the ONNX file holds no graph (empty or not an ONNX model)")
    name = Path(path).stem
    return OnnxMapper(model, name).run()


__all__ = ["INSTALL_HINT", "onnx_to_module"]
