"""Export a :class:`~spikebridge.network.SpikingNetwork` to NIR (Pedersen et al. 2024).

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
import operator
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..direct.fusion import fuse_module
from ..direct.lif import LIFNeuron
from ..engine.encoding import PoissonEncoder
from ..engine.graph import trace_spiking
from ..engine.network import SpikingNetwork
from ..engine.neurons import IFNeuron, SignedIFNeuron, SpikingMaxPool, TimeAware
from ..io import atomic_write
from .nir_metadata import DEFAULT_DT, FORMAT, KEY, node_metadata, require_nir

LIF_NODES = ("LIF", "CubaLIF")


class NIRExportWarning(UserWarning):
    """A node's meaning needs spikebridge's metadata; a reader that ignores it computes another
    network. The message names the node and what differs."""


class NIRExportError(ValueError):
    """The network cannot be written as NIR (the message names the layer and what to do), or
    ``strict=True`` refused a node that needs metadata."""


@dataclass
class _Value:
    """What an fx node's output is in the NIR graph: the sum of the outputs of ``sources``, times
    ``amplitude`` (None: 1) to give spikebridge's value. ``shape`` excludes the batch."""

    sources: list[str]
    shape: tuple[int, ...]
    amplitude: Tensor | None = None  # full shape, float32


@dataclass
class _Builder:
    nir: Any
    nodes: dict[str, Any] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    lossy: list[tuple[str, str]] = field(default_factory=list)
    in_ann_units: dict[int, _Value] = field(default_factory=dict)

    def add(self, name: str, node: Any, inputs: list[str]) -> str:
        if name in self.nodes:
            raise NIRExportError(f"two layers map to the NIR node name {name!r}")
        self.nodes[name] = node
        self.edges += [(src, name) for src in inputs]
        return name

    def ann_units(self, value: _Value) -> _Value:
        """``value`` without amplitude: unit spikes meet a Scale node that restores theta."""
        if value.amplitude is None:
            return value
        key = id(value)
        if key not in self.in_ann_units:
            name = "+".join(value.sources) + ".amplitude"
            node = self.nir.Scale(
                scale=value.amplitude.double().numpy(),
                metadata=node_metadata(op="spike_amplitude"),
            )
            self.add(name, node, value.sources)
            self.in_ann_units[key] = _Value([name], value.shape)
        return self.in_ann_units[key]


def _channel_amplitude(value: _Value, layer: str) -> Tensor:
    """The per-channel amplitude [C] of a value whose amplitude is constant over positions."""
    amp = value.amplitude
    assert amp is not None
    per_channel = amp.reshape(amp.shape[0], -1)[:, 0]
    if not torch.equal(amp, per_channel.view(-1, *([1] * (amp.dim() - 1))).expand_as(amp)):
        raise NIRExportError(
            f"{layer}: the spikes it receives carry amplitudes that vary within a channel, which "
            "cannot be folded into its weights"
        )
    return per_channel


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _module(gm: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return gm.get_submodule(node.target) if node.op == "call_module" else None


def _is_flatten(gm: fx.GraphModule, node: fx.Node) -> tuple[int, int] | None:
    """(start_dim, end_dim) in batched dims when ``node`` flattens, else None."""
    mod = _module(gm, node)
    if isinstance(mod, nn.Flatten):
        return mod.start_dim, mod.end_dim
    if (node.op == "call_function" and node.target is torch.flatten) or (
        node.op == "call_method" and node.target == "flatten"
    ):
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return int(start), int(end)
    return None


def _is_add(node: fx.Node) -> bool:
    return (
        node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add)
    ) or (node.op == "call_method" and node.target in ("add", "add_"))


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
    b = _Builder(nir)
    values: dict[fx.Node, _Value] = {}
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
            values[node] = _Value(["input"], shape_in)
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
            values[node] = _export_node(b, gm, node, values, shapes, dt, lif_node)
    graph_meta = {
        KEY: {"format": FORMAT, "dt": float(dt), "source": type(network).__name__},
    }
    try:
        graph = nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=graph_meta, type_check=True)
    except Exception:  # NIR's shape inference does not know every node; the graph is still valid
        graph = nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=graph_meta, type_check=False)
    if b.lossy:
        listed = "; ".join(f"{name}: {why}" for name, why in b.lossy)
        if strict:
            raise NIRExportError(
                f"strict NIR export refused {len(b.lossy)} node(s) whose meaning a reader "
                f"without spikebridge's metadata would change: {listed}"
            )
        for name, why in b.lossy:
            warnings.warn(
                f"NIR node {name!r}: {why}; a reader that ignores metadata['{KEY}'] computes a "
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


def _inputs(node: fx.Node, values: dict[fx.Node, _Value], what: str) -> list[_Value]:
    args = []
    for a in node.args:
        if isinstance(a, fx.Node):
            args.append(values[a])
        elif not isinstance(a, (int, float, tuple, list)) or what not in ("flatten", "pooling"):
            raise NIRExportError(
                f"{node.name}: {what} with a constant argument {a!r} has no NIR equivalent"
            )
    return args


def _export_node(
    b: _Builder,
    gm: fx.GraphModule,
    node: fx.Node,
    values: dict[fx.Node, _Value],
    shapes: dict[fx.Node, tuple[int, ...]],
    dt: float,
    lif_node: str,
) -> _Value:
    mod = _module(gm, node)
    name = str(node.target) if node.op == "call_module" else node.name
    shape = shapes.get(node)
    if isinstance(mod, (nn.Identity, nn.Dropout)):
        return values[node.args[0]]
    flat = _is_flatten(gm, node)
    if flat is not None:
        (value,) = _inputs(node, values, "flatten")
        return _flatten(b, name, value, flat, shape)
    if _is_add(node):
        terms = _inputs(node, values, "addition")
        if len(terms) != 2 or node.kwargs:
            raise NIRExportError(
                f"{node.name}: only the sum of two tensors maps to NIR (several edges into a node); "
                f"got {len(terms)} tensor(s) and options {dict(node.kwargs)}"
            )
        left, right = (b.ann_units(t) for t in terms)
        return _Value(left.sources + right.sources, shape)
    functional_pool = _FUNCTIONAL_POOLS.get(node.target) if node.op == "call_function" else None
    if functional_pool is not None and shape is not None:
        (value,) = _inputs(node, values, "pooling")
        return _pool(b, name, functional_pool(*node.args[1:], **node.kwargs), value, shape)
    if node.op != "call_module" or shape is None:
        raise NIRExportError(
            f"{node.name}: {node.op} {node.target!r} has no NIR equivalent; NIR export supports "
            "Conv1d/Conv2d, Linear, AvgPool2d, AdaptiveAvgPool2d, max-pooling (as metadata), "
            "Flatten, residual additions and IF/signed IF/LIF neurons"
        )
    (value,) = _inputs(node, values, type(mod).__name__)
    if isinstance(mod, (IFNeuron, SignedIFNeuron, LIFNeuron)):
        return _neuron(b, name, mod, b.ann_units(value), shape, dt, lif_node)
    if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
        return _conv(b, name, mod, value, shape)
    if isinstance(mod, nn.Linear):
        return _linear(b, name, mod, value, shape)
    if isinstance(mod, (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
        return _pool(b, name, mod, value, shape)
    if isinstance(mod, SpikingMaxPool):
        return _pool(b, name, mod.pool, value, shape, spiking=True)
    raise NIRExportError(
        f"{name}: {type(mod).__name__} has no NIR equivalent; NIR export supports Conv1d/Conv2d, "
        "Linear, AvgPool2d, AdaptiveAvgPool2d, max-pooling (as metadata), Flatten, residual "
        "additions and IF/signed IF/LIF neurons"
    )


_FUNCTIONAL_POOLS = {
    F.avg_pool2d: nn.AvgPool2d,
    F.adaptive_avg_pool2d: nn.AdaptiveAvgPool2d,
    F.max_pool2d: nn.MaxPool2d,
    F.adaptive_max_pool2d: nn.AdaptiveMaxPool2d,
}


def _full(values: Tensor, shape: tuple[int, ...]) -> Tensor:
    """A scalar or per-channel [C] tensor broadcast to the full (unbatched) ``shape``."""
    v = values.detach().float().cpu()
    if v.dim() == 0:
        return v.expand(shape).clone()
    return v.view(-1, *([1] * (len(shape) - 1))).expand(shape).clone()


def _neuron(
    b: _Builder,
    name: str,
    mod: nn.Module,
    value: _Value,
    shape: tuple[int, ...],
    dt: float,
    lif_node: str,
) -> _Value:
    nir = b.nir
    ones = np.ones(shape, dtype=np.float32)
    zeros = np.zeros(shape, dtype=np.float32)
    if isinstance(mod, LIFNeuron):
        facts = node_metadata(
            neuron="LIFNeuron",
            tau_decay=mod.tau_decay,
            threshold=mod.threshold,
            dt=dt,
            spike_condition="u > threshold",
            surrogate=mod.surrogate,
            width=mod.width,
            detach_reset=mod.detach_reset,
        )
        thr = np.full(shape, mod.threshold, dtype=np.float64)
        if mod.tau_decay >= 1.0:  # no leak: NIR's IF (which also fires on v > v_threshold)
            node = nir.IF(r=ones.astype(np.float64), v_threshold=thr, v_reset=zeros, metadata=facts)
        else:
            tau = np.full(shape, dt / (1.0 - mod.tau_decay))
            r = np.full(shape, 1.0 / (1.0 - mod.tau_decay))
            if lif_node == "CubaLIF":
                node = nir.CubaLIF(
                    tau_syn=np.full(shape, dt),
                    tau_mem=tau,
                    r=r,
                    v_leak=np.zeros(shape),
                    v_threshold=thr,
                    v_reset=np.zeros(shape),
                    w_in=np.ones(shape),
                    metadata=facts,
                )
            else:
                node = nir.LIF(
                    tau=tau,
                    r=r,
                    v_leak=np.zeros(shape),
                    v_threshold=thr,
                    v_reset=np.zeros(shape),
                    metadata=facts,
                )
        b.add(name, node, value.sources)
        return _Value([name], shape)
    theta = mod.threshold.detach().float().cpu()
    amplitude = _full(theta, shape)
    threshold_kind = "scalar" if theta.dim() == 0 else "channel"
    if isinstance(mod, SignedIFNeuron):
        facts = node_metadata(
            neuron="SignedIFNeuron",
            threshold_kind=threshold_kind,
            alpha=mod.alpha,
            initial_potential=mod.initial_potential,
            reset="subtract",
            spike_amplitude="v_threshold",
        )
        b.lossy.append(
            (
                name,
                f"signed neuron (Kim 2020): also fires -1 when v <= -v_threshold/{mod.alpha:g} and "
                "resets by subtraction",
            )
        )
    else:
        facts = node_metadata(
            neuron="IFNeuron",
            threshold_kind=threshold_kind,
            reset=mod.reset,
            initial_potential=mod.initial_potential,
            negative_spikes=mod.negative_spikes,
            spike_condition="v >= v_threshold",
            spike_amplitude="v_threshold",
        )
        why = []
        if mod.reset == "subtract":
            why.append("resets by subtracting v_threshold, not to v_reset = 0")
        if mod.initial_potential:
            why.append(f"starts at v = {mod.initial_potential:g} * v_threshold, not 0")
        if mod.negative_spikes:
            why.append("fires -1 to take back an earlier spike when v < 0 (Wang 2022, Hu 2023)")
        if why:
            b.lossy.append((name, "; ".join(why)))
    node = nir.IF(
        r=ones,
        v_threshold=amplitude.numpy(),
        v_reset=zeros,
        metadata=facts,
    )
    b.add(name, node, value.sources)
    return _Value([name], shape, amplitude)


def _flatten(
    b: _Builder, name: str, value: _Value, dims: tuple[int, int], shape: tuple[int, ...] | None
) -> _Value:
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
    return _Value([name], tuple(shape) if shape is not None else tuple(amp.shape), amp)


def amplitude_factor(per_input: Tensor, weight_shape: tuple[int, ...], groups: int = 1) -> Tensor:
    """float64 factor, broadcastable to a conv/linear weight of ``weight_shape``, that multiplies
    each weight by the amplitude of the input channel (conv, [C_in]) or feature (linear, [F]) it
    reads. Grouped convolutions read channel g * C_in/groups + j in group g."""
    amp = torch.as_tensor(per_input).double().reshape(-1)
    if len(weight_shape) > 2:
        out_per_group = weight_shape[0] // groups
        in_per_group = weight_shape[1]
        if amp.numel() != in_per_group * groups:
            raise NIRExportError(
                f"{amp.numel()} input amplitudes for a convolution reading {in_per_group * groups} "
                "channels"
            )
        group = torch.arange(weight_shape[0]).div(out_per_group, rounding_mode="floor")
        index = group[:, None] * in_per_group + torch.arange(in_per_group)[None, :]
        return amp[index].view(*weight_shape[:2], *([1] * (len(weight_shape) - 2)))
    if amp.numel() != weight_shape[1]:
        raise NIRExportError(
            f"{amp.numel()} input amplitudes for a linear layer reading {weight_shape[1]} features"
        )
    return amp[None, :]


def _weights_with_amplitude(
    layer: str, weight: Tensor, value: _Value, groups: int = 1
) -> tuple[np.ndarray, np.ndarray | None]:
    """The layer's weights times the amplitude of its input (float64, exact), and that amplitude
    per input channel/feature (None when the input carries none)."""
    w = weight.detach().cpu()
    if value.amplitude is None:
        return w.numpy(), None
    per_input = (
        _channel_amplitude(value, layer) if w.dim() > 2 else value.amplitude.reshape(-1).clone()
    )
    try:
        factor = amplitude_factor(per_input, tuple(w.shape), groups)
    except NIRExportError as err:
        raise NIRExportError(f"{layer}: {err}") from None
    return (w.double() * factor).numpy(), per_input.numpy()


def _conv(b: _Builder, name: str, mod: nn.Module, value: _Value, shape: tuple[int, ...]) -> _Value:
    nir = b.nir
    if mod.padding_mode != "zeros":
        raise NIRExportError(
            f"{name}: padding_mode={mod.padding_mode!r}; NIR convolutions pad with zeros only"
        )
    weight, folded = _weights_with_amplitude(name, mod.weight, value, mod.groups)
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
    return _Value([name], shape)


def _linear(
    b: _Builder, name: str, mod: nn.Linear, value: _Value, shape: tuple[int, ...]
) -> _Value:
    if len(value.shape) != 1:
        raise NIRExportError(
            f"{name}: Linear applied to a {len(value.shape)}-d input {value.shape}; NIR's Affine "
            "takes vectors: flatten before it"
        )
    weight, folded = _weights_with_amplitude(name, mod.weight, value)
    facts = {} if folded is None else {"input_amplitude": folded}
    meta = node_metadata(**facts) if facts else {}
    if mod.bias is not None:
        node = b.nir.Affine(weight=weight, bias=mod.bias.detach().cpu().numpy(), metadata=meta)
    else:
        node = b.nir.Linear(weight=weight, metadata=meta)
    b.add(name, node, value.sources)
    return _Value([name], shape)


def _pool(
    b: _Builder,
    name: str,
    pool: nn.Module,
    value: _Value,
    shape: tuple[int, ...],
    spiking: bool = False,
) -> _Value:
    """Average pooling maps exactly; max-pooling (NIR has none) becomes an AvgPool2d stand-in
    whose metadata names the real operation."""
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
        what = (
            "spiking max-pool gate (Rueckauer 2017): passes the spikes of the input with the "
            "highest spike count so far"
            if spiking
            else "max-pooling"
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
        amp = _full(_channel_amplitude(value, name), shape)
    return _Value([name], shape, amp)


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
