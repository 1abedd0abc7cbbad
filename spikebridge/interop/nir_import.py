"""Read a NIR graph (Pedersen et al. 2024) into a :class:`~spikebridge.engine.network.SpikingNetwork`.

Graphs written by :func:`~spikebridge.interop.export_nir` carry ``metadata["spikebridge"]``; it is
honoured, which rebuilds the exported network exactly: IF neurons with their reset, initial
potential, signed spikes and amplitude theta (the weights are divided back by the amplitude that
the export folded into them, bit for bit), LIF neurons with tau_decay, spiking max-pool gates and
the input encoder. Graphs from other tools (or ``use_metadata=False``) are read by NIR's own
definitions (:mod:`spikebridge.engine.nir_neurons`): IF, LIF, CubaLIF, Affine, Linear, Conv1d, Conv2d, SumPool2d,
AvgPool2d, Flatten, Scale, Input and Output. A node with several incoming edges sums them, in edge
order. The result runs [T, B, ...] tensors like any SpikingNetwork; neuron layers keep the NIR node
names, so spike counts line up with the exported network's layer by layer.
"""

from __future__ import annotations

import keyword
import math
import operator
import os
import re
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from ..engine.encoding import AnalogEncoder, EventEncoder, PoissonEncoder
from ..engine.lif import LIFNeuron
from ..engine.network import SpikingNetwork
from ..engine.neurons import IFNeuron, SignedIFNeuron, SpikingMaxPool
from ..engine.nir_neurons import (
    ElementwiseScale,
    NIRCubaLIFNeuron,
    NIRIFNeuron,
    NIRLIFNeuron,
    SumPool2d,
)
from ..settings import MAX_SPIKE_LEVELS
from .nir_checks import (
    NIRImportError,
    ShapeProbe,
    check_parameters,
    fact,
    node_label,
    number,
    relabel,
    whole,
)
from .nir_export_graph import amplitude_factor
from .nir_metadata import DEFAULT_DT, FORMAT, KEY, read_facts, require_nir

SUPPORTED = (
    "IF, LIF, CubaLIF, Affine, Linear, Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale, "
    "Input, Output"
)


_PASS = object()  # a node that forwards the sum of its inputs unchanged


def import_nir(
    source: str | os.PathLike | Any,
    *,
    use_metadata: bool = True,
    dt: float | None = None,
    seed: int | None = None,
) -> SpikingNetwork:
    """A :class:`SpikingNetwork` from a NIR file (or an in-memory ``nir.NIRGraph``).

    Args:
        source: path of a ``.nir`` (HDF5) file, or a ``nir.NIRGraph``.
        use_metadata: honour spikebridge's node metadata (default). ``False`` reads the graph as
            a reader that ignores metadata would (NIR's definitions only).
        dt: step length in seconds for leaky neurons without metadata; default: the graph's
            recorded dt, else 1e-4 s (the step snnTorch and Norse assume).
        seed: seed of a Poisson input encoder the graph asks for.

    Returns a SpikingNetwork with the analog encoder unless the graph's input node records
    another one. Raises :class:`NIRImportError` naming an unsupported or malformed node.
    """
    nir = require_nir()
    graph = _read(nir, source)
    graph_facts = read_facts(graph) if use_metadata else {}
    if whole(graph_facts.get("format", FORMAT), "the graph", "format") > FORMAT:
        raise NIRImportError(
            f"this graph uses spikebridge metadata format {graph_facts['format']}, newer than "
            f"this version reads ({FORMAT}); upgrade spikebridge or pass use_metadata=False"
        )
    if dt is None:
        meta = read_facts(graph)  # the step the graph was exported with, even without metadata
        dt = number(meta, "dt", "the graph", DEFAULT_DT)
    if not (math.isfinite(dt) and dt > 0):
        raise NIRImportError(f"dt must be a positive step length in seconds, got {dt!r}")
    nodes: dict[str, Any] = dict(graph.nodes)
    incoming = _incoming(nodes, graph.edges)
    order = _topological_order(nodes, graph.edges)
    inputs = [n for n in nodes if isinstance(nodes[n], nir.Input)]
    outputs = [n for n in nodes if isinstance(nodes[n], nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRImportError(
            f"a SpikingNetwork has one input and one output; this graph has inputs {inputs} and "
            f"outputs {outputs}"
        )
    probe = ShapeProbe(nodes[inputs[0]])
    fx_graph = fx.Graph()
    modules: dict[str, nn.Module] = {}
    env: dict[str, fx.Node] = {}
    targets: set[str] = set()
    for name in order:
        node = nodes[name]
        if isinstance(node, nir.Input):
            env[name] = fx_graph.placeholder("x")
            continue
        try:  # a message about this node names it by its name, kind and place among its kind
            env[name] = _read_node(
                nir, name, node, incoming[name], env, fx_graph, probe, modules, targets,
                use_metadata, dt,
            )  # fmt: skip
        except NIRImportError as err:
            label = node_label(name, nodes, order)
            raise NIRImportError(relabel(str(err), name, node, label)) from None
    fx_graph.lint()
    gm = fx.GraphModule(modules, fx_graph, "NIRNetwork")
    encoder = _encoder(read_facts(nodes[inputs[0]]) if use_metadata else {}, seed)
    return SpikingNetwork(gm, encoder).eval()


def _read(nir, source: Any):
    if isinstance(source, nir.NIRGraph):
        return source
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"NIR file {str(path)!r}: no such file")
    try:
        return nir.read(path)
    except Exception as first:  # graphs from older writers may fail NIR's type check
        try:
            return nir.read(path, type_check=False)
        except Exception:
            raise NIRImportError(f"{str(path)!r} is not a readable NIR graph ({first})") from first


def _incoming(nodes: dict[str, Any], edges) -> dict[str, list[str]]:
    incoming: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        for end in (src, dst):
            if end not in nodes:
                raise NIRImportError(
                    f"an edge {src!r} -> {dst!r} names a node {end!r} not in the graph"
                )
        incoming[dst].append(src)
    return incoming


def _topological_order(nodes: dict[str, Any], edges) -> list[str]:
    indegree = {n: 0 for n in nodes}
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        indegree[dst] += 1
        successors[src].append(dst)
    ready = deque(n for n in nodes if indegree[n] == 0)
    order = []
    while ready:
        n = ready.popleft()
        order.append(n)
        for s in successors[n]:
            indegree[s] -= 1
            if indegree[s] == 0:
                ready.append(s)
    if len(order) != len(nodes):
        cyclic = sorted(n for n in nodes if indegree[n] > 0)
        raise NIRImportError(
            f"the graph has recurrent edges (through {', '.join(cyclic)}); spikebridge reads "
            "feed-forward NIR graphs"
        )
    return order


def _read_node(
    nir, name, node, preds, env, fx_graph, probe, modules, targets, use_metadata, dt
) -> fx.Node:
    """NIR node ``name`` (not the input) read into ``fx_graph``: its fx value."""
    if not preds:
        raise NIRImportError(f"NIR node {name!r} ({type(node).__name__}) has no input edge")
    x = env[preds[0]]
    for p in preds[1:]:
        x = fx_graph.call_function(operator.add, (x, env[p]))
    probe.sum(name, node, preds)
    if isinstance(node, nir.Output):
        fx_graph.output(x)
        return x
    check_parameters(name, node, read_facts(node) if use_metadata else {})
    try:
        module = _module_for(nir, name, node, use_metadata, dt)
    except NIRImportError:
        raise
    except (ValueError, TypeError, RuntimeError, KeyError, IndexError) as err:
        raise NIRImportError(f"NIR node {name!r} ({type(node).__name__}): {err}") from None
    if module is _PASS:
        probe.forward(name, node, None)
        return x
    probe.forward(name, node, module)
    target = _target(name, targets)
    modules[target] = module
    return fx_graph.call_module(target, (x,))


def _target(name: str, taken: set[str]) -> str:
    """A module path for NIR node ``name`` (dots kept, so layer names survive a round trip)."""
    parts = []
    for part in name.split("."):
        part = re.sub(r"\W", "_", part) or "_"
        if keyword.iskeyword(part):
            part = f"{part}_"
        parts.append(part)
    target = ".".join(parts)
    while target in taken or any(
        t.startswith(target + ".") or target.startswith(t + ".") for t in taken
    ):
        target += "_"
    taken.add(target)
    return target


def _encoder(facts: dict[str, Any], seed: int | None):
    kind = facts.get("encoder", "analog")
    if kind == "poisson":
        rate = number(facts, "probability", "the input node", 1.0)
        if not 0 <= rate <= 1:
            raise NIRImportError(
                f"NIR input node: the Poisson encoder's probability must be in [0, 1], got {rate}"
            )
        return PoissonEncoder(max_rate=rate, seed=seed)
    if kind == "events":
        return EventEncoder()
    return AnalogEncoder()


def _array(node: Any, field: str) -> np.ndarray:
    value = getattr(node, field)
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _tensor(node: Any, field: str) -> torch.Tensor:
    return torch.from_numpy(np.array(_array(node, field), dtype=np.float32))


def _threshold(node: Any, kind: str, name: str) -> torch.Tensor:
    thr = _tensor(node, "v_threshold")
    if kind == "scalar":
        return thr.reshape(-1)[0].clone()
    if kind == "channel":
        return thr.reshape(thr.shape[0], -1)[:, 0].clone()
    raise NIRImportError(f"NIR node {name!r}: unknown threshold kind {kind!r} in its metadata")


def _module_for(nir, name: str, node: Any, use_metadata: bool, dt: float):
    facts = read_facts(node) if use_metadata else {}
    if isinstance(node, (nir.IF, nir.LIF, nir.CubaLIF)):
        return _neuron(nir, name, node, facts, dt)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        return _conv(name, node, facts)
    if isinstance(node, (nir.Affine, nir.Linear)):
        return _linear(node, facts)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        return _pool(nir, name, node, facts)
    if isinstance(node, nir.Flatten):
        start, end = int(node.start_dim), int(node.end_dim)
        # NIR counts dims without the batch; torch's Flatten counts it
        return nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)
    if isinstance(node, nir.Scale):
        if facts.get("op") == "spike_amplitude":
            return _PASS  # the IF neurons emit their amplitude themselves
        return ElementwiseScale(_array(node, "scale"))
    raise NIRImportError(
        f"NIR node {name!r} is a {type(node).__name__}, which spikebridge does not read; "
        f"supported: {SUPPORTED}"
    )


def _initial_potential(facts: dict[str, Any]) -> float | torch.Tensor:
    """u[0] / theta as written: one float, or one value per channel ([C], e.g. by calibrated)."""
    value = np.asarray(facts.get("initial_potential", 0.0))
    if value.ndim == 0:
        return float(value)
    return torch.as_tensor(value, dtype=torch.float32)


def _levels(facts: dict[str, Any], name: str) -> int:
    """K of a graded neuron (``levels`` in the metadata; 1: binary), an integer in
    1..MAX_SPIKE_LEVELS, or a NIRImportError naming the node."""
    value = number(facts, "levels", name, 1)
    if value != int(value) or not 1 <= value <= MAX_SPIKE_LEVELS:
        raise NIRImportError(
            f"NIR node {name!r}: {KEY} metadata 'levels' (the threshold units a graded spike "
            f"carries) must be an integer in 1..{MAX_SPIKE_LEVELS}, got {value:g}"
        )
    return int(value)


def _neuron(nir, name: str, node: Any, facts: dict[str, Any], dt: float) -> nn.Module:
    kind = facts.get("neuron")
    if kind in ("IFNeuron", "SignedIFNeuron"):
        levels = _levels(facts, name)
    if kind == "IFNeuron":
        return IFNeuron(
            _threshold(node, facts.get("threshold_kind", "channel"), name),
            str(facts.get("reset", "zero")),
            _initial_potential(facts),
            bool(facts.get("negative_spikes", False)),
            levels,
        )
    if kind == "SignedIFNeuron":
        return SignedIFNeuron(
            _threshold(node, facts.get("threshold_kind", "channel"), name),
            number(facts, "alpha", name),
            number(facts, "initial_potential", name, 0.0),
            levels,
        )
    if kind == "LIFNeuron":
        return LIFNeuron(
            number(facts, "threshold", name, positive=True),
            number(facts, "tau_decay", name, positive=True),
            str(facts.get("surrogate", "rectangular")),
            number(facts, "width", name, 1.0, positive=True),
            bool(facts.get("detach_reset", False)),
        )
    if kind is not None:
        raise NIRImportError(f"NIR node {name!r}: unknown spikebridge neuron {kind!r}")
    v_reset = _array(node, "v_reset") if node.v_reset is not None else 0.0
    if isinstance(node, nir.IF):
        return NIRIFNeuron(_array(node, "r"), _array(node, "v_threshold"), v_reset)
    if isinstance(node, nir.LIF):
        return NIRLIFNeuron(
            _array(node, "tau"),
            _array(node, "r"),
            _array(node, "v_leak"),
            _array(node, "v_threshold"),
            v_reset,
            dt,
        )
    return NIRCubaLIFNeuron(
        _array(node, "tau_syn"),
        _array(node, "tau_mem"),
        _array(node, "r"),
        _array(node, "v_leak"),
        _array(node, "v_threshold"),
        v_reset,
        _array(node, "w_in"),
        dt,
    )


def _unfolded(weight: np.ndarray, facts: dict[str, Any], groups: int = 1) -> torch.Tensor:
    """float32 weights, divided by the input amplitude the export folded into them (exact)."""
    w = torch.from_numpy(np.array(weight, dtype=np.float64))
    if "input_amplitude" in facts:
        w = w / amplitude_factor(
            torch.from_numpy(np.asarray(facts["input_amplitude"])), tuple(w.shape), groups
        )
    return w.float()


def _ints(value: Any, n: int) -> tuple[int, ...]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        return (int(arr[0]),) * n
    return tuple(int(v) for v in arr)


def _conv(name: str, node: Any, facts: dict[str, Any]) -> nn.Module:
    groups = int(np.asarray(node.groups))
    weight = _unfolded(_array(node, "weight"), facts, groups)
    dims = weight.dim() - 2
    padding = node.padding
    if isinstance(padding, bytes):
        padding = padding.decode()
    if not isinstance(padding, str):
        padding = _ints(padding, dims)
    cls = nn.Conv2d if dims == 2 else nn.Conv1d
    has_bias = bool(facts.get("has_bias", True))
    conv = cls(
        weight.shape[1] * groups,
        weight.shape[0],
        tuple(weight.shape[2:]),
        stride=_ints(node.stride, dims),
        padding=padding,
        dilation=_ints(node.dilation, dims),
        groups=groups,
        bias=has_bias,
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
        if has_bias:
            conv.bias.copy_(_tensor(node, "bias"))
    return conv


def _linear(node: Any, facts: dict[str, Any]) -> nn.Module:
    weight = _unfolded(_array(node, "weight"), facts)
    has_bias = hasattr(node, "bias")
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if has_bias:
            layer.bias.copy_(_tensor(node, "bias"))
    return layer


def _pool(nir, name: str, node: Any, facts: dict[str, Any]) -> nn.Module:
    kernel = _ints(node.kernel_size, 2)
    stride = _ints(node.stride, 2)
    padding = _ints(node.padding, 2)
    if isinstance(node, nir.SumPool2d):
        return SumPool2d(kernel, stride, padding)
    op = facts.get("op", "avg_pool")
    if op == "avg_pool":
        return nn.AvgPool2d(kernel, stride, padding)
    if op == "adaptive_avg_pool":
        return nn.AdaptiveAvgPool2d(_ints(fact(facts, "output_size", name), 2))
    if op in ("max_pool", "spiking_max_pool"):
        pool: nn.Module = nn.MaxPool2d(kernel, stride, padding)
    elif op == "adaptive_max_pool":
        pool = nn.AdaptiveMaxPool2d(_ints(fact(facts, "output_size", name), 2))
    else:
        raise NIRImportError(f"NIR node {name!r}: unknown pooling {op!r} in its {KEY} metadata")
    if op != "spiking_max_pool":
        return pool
    rule = str(facts.get("rule", "gate"))  # files written before the running rule: the gate
    if rule not in SpikingMaxPool.RULES:
        raise NIRImportError(
            f"NIR node {name!r}: unknown spiking max-pool rule {rule!r} in its {KEY} metadata; "
            f"expected one of {SpikingMaxPool.RULES}"
        )
    return SpikingMaxPool(pool, rule)


__all__ = ["NIRImportError", "import_nir"]
