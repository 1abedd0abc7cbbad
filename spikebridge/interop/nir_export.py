"""Export a :class:`~spikebridge.engine.network.SpikingNetwork` to NIR (Pedersen et al. 2024).

The network's fx graph is walked node by node; every value is tracked with the factor that turns
what the NIR graph carries into what spikebridge computes ("amplitude"):

- A converted IF neuron emits spikes of amplitude theta (SPEC 1.3, second form). In NIR it
  becomes ``IF(v_threshold=theta, r=1, v_reset=0)`` emitting unit spikes, and theta moves into
  the weights of the conv/linear layer that consumes them (per input channel or feature; through
  pooling and flatten), or into a ``Scale`` node where spikes meet a residual addition. This is
  the same network exactly: W (theta s) = (W theta) s. Scaled weights are stored in float64, in
  which W * theta of two float32 numbers is exact, so :func:`~spikebridge.interop.import_nir`
  recovers the float32 weights bit for bit.
- A direct-route LIF neuron (Wu 2018; Zheng 2021: u[t] = tau_decay u[t-1] (1 - o[t-1]) + x[t],
  o[t] = H(u[t] - V_th)) is NIR's LIF discretised with step dt: tau = dt / (1 - tau_decay),
  R = 1 / (1 - tau_decay), v_leak = 0, v_reset = 0 (or CubaLIF with tau_syn = dt, w_in = 1,
  whose synaptic current then equals the input). tdBN is folded first (SPEC 2.4).

What NIR cannot say travels in ``metadata["spikebridge"]`` (:mod:`.nir_metadata`); a node whose
meaning a reader without that metadata would change is named in a :class:`NIRExportWarning`, or
refused with ``strict=True``.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, fx
from torch.nn.modules.batchnorm import _BatchNorm

from ..direct.fusion import fuse_module
from ..engine.encoding import PoissonEncoder
from ..engine.graph import trace_spiking
from ..engine.network import SpikingNetwork
from ..engine.neurons import TimeAware
from ..io import atomic_write
from .nir_export_graph import (
    ExportGraph,
    ExportValue,
    NIRExportError,
    NIRExportWarning,
    amplitude_factor,
)
from .nir_export_nodes import export_node
from .nir_metadata import DEFAULT_DT, FORMAT, KEY, node_metadata, require_nir

LIF_NODES = ("LIF", "CubaLIF")


def _shapes(gm: fx.GraphModule, input_shape: tuple[int, ...]) -> dict[fx.Node, tuple[int, ...]]:
    """Output shape (without batch) of every node, from one step on a zero input [1, ...]."""
    shapes: dict[fx.Node, tuple[int, ...]] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            if isinstance(out, Tensor):
                shapes[n] = tuple(out.shape[1:])
            return out

    for m in gm.modules():
        if isinstance(m, TimeAware):
            m.steps = 1
            if hasattr(m, "reset_state"):
                m.reset_state()
    param = next(iter(gm.parameters()), None)
    dtype = param.dtype if param is not None else torch.float32
    try:
        with torch.no_grad():
            Recorder(gm).run(torch.zeros(1, *input_shape, dtype=dtype))
    except (RuntimeError, ValueError) as err:
        raise NIRExportError(
            f"the network does not run on inputs of shape {tuple(input_shape)} ({err}); pass the "
            "input shape (C, H, W) it was trained on"
        ) from err
    finally:
        for m in gm.modules():
            if hasattr(m, "reset_state"):
                m.reset_state()
    return shapes


def resolve_input_shape(
    network: SpikingNetwork, input_shape: tuple[int, ...] | None
) -> tuple[int, ...]:
    """``input_shape`` (C, H, W), or the one a direct network records in its ``spec``."""
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if not shape or any(s <= 0 for s in shape):
            raise NIRExportError(
                f"input_shape must be positive sizes without the batch, e.g. (1, 28, 28); got "
                f"{input_shape!r}"
            )
        return shape
    spec = getattr(network, "spec", None)
    if isinstance(spec, dict) and "in_channels" in spec and "image_size" in spec:
        return (int(spec["in_channels"]), int(spec["image_size"]), int(spec["image_size"]))
    raise NIRExportError(
        "NIR needs the input shape, which this network does not record: pass input_shape=(C, H, W)"
        " (the CLI: --input-shape C,H,W or --dataset NAME)"
    )


def build_nir_graph(
    network: SpikingNetwork,
    input_shape: tuple[int, ...] | None = None,
    *,
    strict: bool = False,
    dt: float = DEFAULT_DT,
    lif_node: str = "LIF",
):
    """The ``nir.NIRGraph`` of ``network`` (see :func:`export_nir`; nothing is written)."""
    nir = require_nir()
    if not isinstance(network, SpikingNetwork):
        raise TypeError(f"export_nir expects a SpikingNetwork, got {type(network).__name__}")
    if lif_node not in LIF_NODES:
        raise NIRExportError(f"lif_node must be one of {LIF_NODES}, got {lif_node!r}")
    if not (math.isfinite(dt) and dt > 0):
        raise NIRExportError(f"dt must be a positive step length in seconds, got {dt!r}")
    shape_in = resolve_input_shape(network, input_shape)
    network.reset()
    module = copy.deepcopy(network.module).cpu().eval()
    if any(isinstance(m, _BatchNorm) for m in module.modules()):
        try:
            module = fuse_module(module)  # tdBN / BatchNorm folded into the layer before it
        except ValueError as err:
            raise NIRExportError(f"NIR has no batch norm and {err}") from err
    gm = trace_spiking(module)
    shapes = _shapes(gm, shape_in)
    b = ExportGraph(nir)
    values: dict[fx.Node, ExportValue] = {}
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if values:
                raise NIRExportError("NIR export supports networks with one input")
            b.add(
                "input",
                nir.Input(
                    input_type={"input": np.array(shape_in)}, metadata=_encoder_facts(network)
                ),
                [],
            )
            values[node] = ExportValue(["input"], shape_in)
        elif node.op == "output":
            (arg,) = node.args
            if not isinstance(arg, fx.Node):
                raise NIRExportError("NIR export supports networks with one output tensor")
            value = b.ann_units(values[arg])
            meta = node_metadata(
                readout="mean",
                meaning="non-spiking readout: the prediction after t steps is the argmax of the "
                "mean of this output over steps 1..t",
            )
            b.add(
                "output",
                nir.Output(output_type={"output": np.array(value.shape)}, metadata=meta),
                value.sources,
            )
        else:
            values[node] = export_node(b, gm, node, values, shapes, dt, lif_node)
    graph_meta = {
        KEY: {"format": FORMAT, "dt": float(dt), "source": type(network).__name__},
    }
    try:
        graph = nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=graph_meta, type_check=True)
    except Exception:  # NIR's shape inference does not know every node; the graph is still valid
        graph = nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=graph_meta, type_check=False)
    if b.lossy:
        from .nir_checks import node_label

        labels = {name: node_label(name, b.nodes) for name, _ in b.lossy}
        listed = "; ".join(f"{labels[name]}: {why}" for name, why in b.lossy)
        if strict:
            raise NIRExportError(
                f"strict NIR export refused {len(b.lossy)} node(s) whose meaning a reader "
                f"without spikebridge's metadata would change: {listed}"
            )
        for name, why in b.lossy:
            warnings.warn(
                f"{labels[name]}: {why}; a reader that ignores metadata['{KEY}'] computes a "
                "different network",
                NIRExportWarning,
                stacklevel=3,
            )
    return graph


def _encoder_facts(network: SpikingNetwork) -> dict[str, Any]:
    enc = network.encoder
    if isinstance(enc, PoissonEncoder):
        return node_metadata(
            encoder="poisson",
            probability=float(enc.probability),
            meaning="feed spikes sign(x) with probability |x| * probability at every step",
        )
    name = getattr(enc, "name", type(enc).__name__)
    if name == "analog":
        return node_metadata(encoder="analog", meaning="feed the same real-valued x at every step")
    return node_metadata(encoder=str(name), meaning="feed the input's own time bins, one per step")


def export_nir(
    network: SpikingNetwork,
    path: str | os.PathLike,
    *,
    input_shape: tuple[int, ...] | None = None,
    strict: bool = False,
    dt: float = DEFAULT_DT,
    lif_node: str = "LIF",
):
    """Write ``network`` as a NIR graph (HDF5) to ``path``, atomically; return the NIRGraph.

    Args:
        network: a converted (IF, signed IF; per-layer or per-channel thresholds) or directly
            trained (LIF, tdBN) :class:`SpikingNetwork` running [T, B, C, H, W] inputs.
        input_shape: (C, H, W) of one input without batch or time; read from a direct network's
            ``spec`` when omitted.
        strict: refuse (:class:`NIRExportError`) instead of warning when a node's meaning needs
            spikebridge's metadata (reset by subtraction, initial potential, signed neurons,
            max-pooling).
        dt: the step length in seconds that maps LIF constants onto NIR's continuous time
            (recorded in the graph's metadata).
        lif_node: write LIF neurons as NIR ``"LIF"`` or ``"CubaLIF"`` (tau_syn = dt).

    Raises :class:`NIRExportError` naming the layer NIR cannot express, and
    :class:`~spikebridge.interop.nir_metadata.NIRUnavailable` when ``nir`` is not installed.
    """
    nir = require_nir()
    graph = build_nir_graph(network, input_shape, strict=strict, dt=dt, lif_node=lif_node)
    target = Path(path)
    if target.parent and not target.parent.exists():
        raise FileNotFoundError(f"cannot write {str(target)!r}: its folder does not exist")
    atomic_write(target, lambda tmp: nir.write(tmp, graph))
    return graph


__all__ = [
    "NIRExportError",
    "NIRExportWarning",
    "amplitude_factor",
    "build_nir_graph",
    "export_nir",
]
