"""Counting operations with forward hooks on the real layers (SPEC 3.2).

ANN: multiply-accumulates (MACs) per inference of every synaptic layer (Conv1d/2d/3d, Linear)
and of average pooling, counted the conventional way (output elements x fan-in, so torchvision's
VGG-11 on 224x224 comes to 7.6 GMAC); residual additions count one accumulate (AC) per element.

SNN: synaptic operations (SOPs), Horowitz 2014 / the common SNN convention: a non-zero input
element of layer l (a spike, of either sign) costs one accumulate for every output it reaches,
SOP_l = sum over input positions of 1[input != 0] x fan-out(position). Fan-outs are exact at the
borders (an input in the corner of a padded 3x3 conv reaches 4 output positions, not 9): they
come from a per-layer fan-out map, the gradient of a ones-kernel copy of the layer with respect to
a ones input (with reflect/circular padding, where one input can sit twice in a receptive field,
from the distinct outputs each input index reaches). Layers whose input depends only on an
analog (constant-current) input, i.e. the first layer(s) before any neuron, cost their dense
MACs at every step. A residual addition costs
one SOP per spike arriving directly from a neuron (fan-out 1 onto the junction); currents arriving
from a conv were already counted at that conv. Max pooling (and the spiking max-pool gate) routes
spikes without accumulating and costs nothing here.

Functional calls that matter for counting (``x + y``, ``F.avg_pool2d``, ``F.adaptive_avg_pool2d``,
``x.mean(...)``) are found in the network's ``torch.fx`` graph and swapped for equivalent modules
in a copy that shares every parameter, so one hook mechanism counts everything.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from ..network import SpikingTracer
from ..neurons import SpikingMaxPool, SpikingNeuron, TimeAware

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
AVG_POOLS = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
ADAPTIVE_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)
MAX_POOLS = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
ADD_FUNCTIONS = {operator.add, operator.iadd, torch.add}
ADD_METHODS = {"add", "add_"}
MEAN_FUNCTIONS = {torch.mean}
POOL_FUNCTIONS = {
    F.avg_pool1d: nn.AvgPool1d,
    F.avg_pool2d: nn.AvgPool2d,
    F.avg_pool3d: nn.AvgPool3d,
    F.adaptive_avg_pool1d: nn.AdaptiveAvgPool1d,
    F.adaptive_avg_pool2d: nn.AdaptiveAvgPool2d,
    F.adaptive_avg_pool3d: nn.AdaptiveAvgPool3d,
}
SHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, operator.getitem}
SHAPE_METHODS = {
    "view",
    "reshape",
    "flatten",
    "contiguous",
    "squeeze",
    "unsqueeze",
    "permute",
    "transpose",
}
SHAPE_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)


class Add(nn.Module):
    """``a + b`` as a module, so a forward hook sees a residual junction.

    ``spike_inputs`` are the positions of the operands that carry spikes straight from a neuron.
    """

    def __init__(self, spike_inputs: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.spike_inputs = tuple(spike_inputs)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b

    def extra_repr(self) -> str:
        return f"spike_inputs={self.spike_inputs}"


class Mean(nn.Module):
    """``x.mean(dim, keepdim)`` as a module (global average pooling written as a mean)."""

    def __init__(self, dim=None, keepdim: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim

    def forward(self, x: Tensor) -> Tensor:
        if self.dim is None:
            return x.mean()
        return x.mean(self.dim, keepdim=self.keepdim)


class CallSite(nn.Module):
    """Another call site of a shared layer (weight sharing): runs the layer without its hooks, so
    each call site is counted once, under its own name."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, *args, **kwargs):
        return self.layer.forward(*args, **kwargs)


def counted_module(module: nn.Module) -> nn.Module:
    """The layer behind a :class:`CallSite` (the module itself otherwise)."""
    return module.layer if isinstance(module, CallSite) else module


def layer_kind(module: nn.Module) -> str | None:
    """``conv``, ``linear``, ``avgpool``, ``mean`` or ``add`` for a counted layer, else None."""
    module = counted_module(module)
    if isinstance(module, CONVS):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, AVG_POOLS + ADAPTIVE_POOLS):
        return "avgpool"
    if isinstance(module, Mean):
        return "mean"
    if isinstance(module, Add):
        return "add"
    return None


# ----------------------------------------------------------------------------------------------
# fan-out maps


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
    if isinstance(module, ADAPTIVE_POOLS):
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
    elif isinstance(module, AVG_POOLS):
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


# ----------------------------------------------------------------------------------------------
# instrumented graphs


def _module_at(root: nn.Module, target: str) -> nn.Module:
    return root.get_submodule(target) if target else root


def _is_spike_node(
    node: fx.Node, modules: dict[str, nn.Module], known: dict[fx.Node, bool]
) -> bool:
    """True when ``node`` carries spikes: a neuron's output, possibly reshaped or max-pooled."""
    if node in known:
        return known[node]
    result = False
    if node.op == "call_module":
        mod = modules[node.target]
        if isinstance(mod, SpikingNeuron):
            result = True
        elif isinstance(mod, SHAPE_MODULES + MAX_POOLS + (SpikingMaxPool,)):
            result = _first_node_is_spike(node, modules, known)
    elif node.op == "call_function" and node.target in SHAPE_FUNCTIONS:
        result = _first_node_is_spike(node, modules, known)
    elif node.op == "call_method" and node.target in SHAPE_METHODS:
        result = _first_node_is_spike(node, modules, known)
    known[node] = result
    return result


def _first_node_is_spike(
    node: fx.Node, modules: dict[str, nn.Module], known: dict[fx.Node, bool]
) -> bool:
    first = node.args[0] if node.args else None
    return isinstance(first, fx.Node) and _is_spike_node(first, modules, known)


def _unique(root: dict[str, nn.Module], base: str) -> str:
    name, i = base, 0
    while name in root:
        i += 1
        name = f"{base}_{i}"
    return name


def instrument(module: nn.Module, spiking: bool) -> fx.GraphModule:
    """A traced copy of ``module`` with additions, functional pooling and means as modules.

    The copy shares every submodule and parameter with ``module`` (nothing is duplicated).
    ``spiking`` selects the tracer that keeps neurons as leaves. Raises whatever ``torch.fx``
    raises for an untraceable module.
    """
    if isinstance(module, fx.GraphModule):
        source = module
    else:
        tracer = SpikingTracer() if spiking else _AnnTracer()
        graph_ = tracer.trace(module)
        source = fx.GraphModule(tracer.root, graph_)
    graph = fx.Graph()
    value_map: dict[fx.Node, fx.Node] = {}
    out = graph.graph_copy(source.graph, value_map)
    graph.output(out)
    modules: dict[str, nn.Module] = {}
    for node in graph.nodes:
        if node.op in ("call_module", "get_attr") and node.target not in modules:
            modules[node.target] = _lookup(source, node.target)
    called: set[str] = set()
    for node in graph.nodes:  # a counted layer called at several places: one name per call site
        if node.op == "call_module" and layer_kind(modules[node.target]) is not None:
            if node.target in called:
                name = _unique(modules, f"{node.target.replace('.', '_')}_call")
                modules[name] = CallSite(modules[node.target])
                node.target = name
            called.add(node.target)
    known: dict[fx.Node, bool] = {}
    for node in list(graph.nodes):
        replacement: nn.Module | None = None
        args = node.args
        if _is_tensor_add(node):
            spikes = tuple(
                i
                for i, a in enumerate(node.args[:2])
                if isinstance(a, fx.Node) and _is_spike_node(a, modules, known)
            )
            replacement, args = Add(spikes), tuple(node.args[:2])
        elif node.op == "call_function" and node.target in POOL_FUNCTIONS and _constant_tail(node):
            replacement = POOL_FUNCTIONS[node.target](*node.args[1:], **node.kwargs)
            args = (node.args[0],)
        elif _is_mean(node) and _constant_tail(node):
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            keepdim = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
            if "dtype" not in node.kwargs:
                replacement, args = Mean(dim, keepdim), (node.args[0],)
        if replacement is None:
            continue
        name = _unique(modules, f"_count_{type(replacement).__name__.lower()}")
        modules[name] = replacement
        with graph.inserting_after(node):
            new = graph.call_module(name, args)
        node.replace_all_uses_with(new)
        graph.erase_node(node)
    graph.lint()
    return fx.GraphModule(modules, graph, "Counted" + type(module).__name__)


class _AnnTracer(fx.Tracer):
    """Default fx tracing, keeping time-aware modules (and QCFS-like leaves) whole."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, TimeAware) or super().is_leaf_module(m, module_qualified_name)


def _lookup(root: nn.Module, target: str):
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _is_tensor_add(node: fx.Node) -> bool:
    is_add = (node.op == "call_function" and node.target in ADD_FUNCTIONS) or (
        node.op == "call_method" and node.target in ADD_METHODS
    )
    return (
        is_add
        and len(node.args) == 2
        and not node.kwargs
        and all(isinstance(a, fx.Node) for a in node.args)
    )


def _is_mean(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in MEAN_FUNCTIONS) or (
        node.op == "call_method" and node.target == "mean"
    )


def _constant_tail(node: fx.Node) -> bool:
    rest = list(node.args[1:]) + list(node.kwargs.values())
    return isinstance(node.args[0], fx.Node) and not any(isinstance(a, fx.Node) for a in rest)


def static_modules(gm: fx.GraphModule) -> set[str]:
    """Names of the modules whose input depends only on the network input (no neuron upstream).

    Under an analog (constant-current) encoder these see the same input at every step: the
    first layer(s) that SPEC 3.2 charges as MACs every step. Same rule as
    :func:`spikebridge.network.static_prefix_module`.
    """
    static: set[fx.Node] = set()
    names: set[str] = set()
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "get_attr"):
            static.add(node)
        elif node.op == "output":
            continue
        elif node.op == "call_module" and isinstance(_lookup(gm, node.target), TimeAware):
            continue
        elif all(arg in static for arg in node.all_input_nodes):
            static.add(node)
            if node.op == "call_module":
                names.add(node.target)
    return names


# ----------------------------------------------------------------------------------------------
# counters


@dataclass
class LayerOps:
    """Operations of one counted layer over an evaluation.

    Attributes:
        kind: ``conv``, ``linear``, ``avgpool``, ``mean`` or ``add``.
        analog: the layer sees the analog input (dense MACs every step).
        macs_per_sample: dense MACs of one sample at one step (analog layers; ANN count).
        acs_per_sample: dense ACs of one sample (additions) at one step.
        sops: [T] synaptic operations per step, summed over samples (event-driven layers).
        inputs: [T] non-zero input elements per step, summed over samples.
        module: the layer's class name (e.g. ``Conv2d``).
    """

    kind: str
    analog: bool = False
    macs_per_sample: int = 0
    acs_per_sample: int = 0
    sops: Tensor | None = None
    inputs: Tensor | None = None
    module: str = ""

    def macs(self, timesteps: int, samples: int) -> Tensor:
        """[T] MACs per step summed over ``samples`` (only analog layers cost MACs in an SNN)."""
        per = self.macs_per_sample * samples if self.analog else 0
        return torch.full((timesteps,), per, dtype=torch.float64)

    def acs(self, timesteps: int, samples: int) -> Tensor:
        """[T] accumulates per step: SOPs for event-driven layers, dense adds for analog ones."""
        if self.analog:
            return torch.full((timesteps,), self.acs_per_sample * samples, dtype=torch.float64)
        if self.sops is None:
            return torch.zeros(timesteps, dtype=torch.float64)
        return self.sops.double()


class SnnOpCounter:
    """Forward hooks that count SOPs per step (and analog MACs) on a spiking module.

    Usage: ``counter.attach(module)``, then for every batch ``counter.start_batch(B, T)``
    before :meth:`SpikingNetwork.simulate`, finally ``counter.detach()``. Stateless layers see
    ``[steps*B, ...]``; the counter unfolds by the batch size it was given.

    Args:
        static: module names that see the analog input (dense MACs at every step).
        dynamic_static: when the module could not be traced, treat as analog the layers that run
            before the first neuron in each forward pass.
    """

    def __init__(self, static: set[str] | None = None, dynamic_static: bool = False) -> None:
        self.static = set(static or ())
        self.dynamic_static = dynamic_static
        self.layers: dict[str, LayerOps] = {}
        self._handles: list = []
        self._batch = 0
        self._timesteps = 0
        self._cursor: dict[str, int] = {}
        self._fanouts: dict[tuple[str, tuple[int, ...]], tuple[Tensor, int]] = {}
        self._neuron_seen = False

    def attach(self, module: nn.Module) -> SnnOpCounter:
        for name, mod in module.named_modules():
            if isinstance(mod, SpikingNeuron) and self.dynamic_static:
                self._handles.append(mod.register_forward_pre_hook(self._on_neuron))
            kind = layer_kind(mod)
            if kind is not None:
                self._handles.append(mod.register_forward_hook(self._hook(name, kind)))
        if self.dynamic_static:
            self._handles.append(module.register_forward_pre_hook(self._on_start))
        return self

    def detach(self) -> None:
        """Remove the hooks and move the counts to the CPU."""
        for h in self._handles:
            h.remove()
        self._handles = []
        for ops in self.layers.values():
            if ops.sops is not None:
                ops.sops, ops.inputs = ops.sops.cpu(), ops.inputs.cpu()

    def start_batch(self, batch: int, timesteps: int) -> None:
        """Announce a batch of ``batch`` samples simulated for ``timesteps`` steps."""
        self._batch, self._timesteps = batch, timesteps
        self._cursor = {}

    def _on_start(self, _mod, _inp) -> None:
        self._neuron_seen = False

    def _on_neuron(self, _mod, _inp) -> None:
        self._neuron_seen = True

    def _hook(self, name: str, kind: str):
        def hook(mod, inputs, output):
            analog = name in self.static or (self.dynamic_static and not self._neuron_seen)
            ops = self.layers.get(name)
            mod = counted_module(mod)
            if ops is None:
                macs, acs = dense_macs(mod, inputs, output)
                ops = self.layers[name] = LayerOps(
                    kind, analog, macs, acs, module=type(mod).__name__
                )
            if analog:
                return
            counts, nonzero = self._sops(name, mod, kind, inputs, output)
            steps = counts.shape[0]
            start = self._cursor.get(name, 0)
            if start + steps > self._timesteps:
                raise RuntimeError(
                    f"layer {name!r} ran more steps than simulated; a module called at several "
                    "places cannot be counted per layer: give each call site its own module"
                )
            self._cursor[name] = start + steps
            if ops.sops is None:  # kept on the layer's device: no synchronisation per call
                ops.sops = torch.zeros(self._timesteps, dtype=torch.long, device=counts.device)
                ops.inputs = torch.zeros_like(ops.sops)
            if ops.sops.shape[0] < self._timesteps:
                pad = self._timesteps - ops.sops.shape[0]
                ops.sops = F.pad(ops.sops, (0, pad))
                ops.inputs = F.pad(ops.inputs, (0, pad))
            ops.sops[start : start + steps] += counts.to(ops.sops.device)
            ops.inputs[start : start + steps] += nonzero.to(ops.sops.device)

        return hook

    def _per_step(self, per_row: Tensor) -> Tensor:
        """[steps*B] -> [steps] summed over the batch."""
        return per_row.reshape(-1, self._batch).sum(1)

    def _sops(
        self, name: str, mod: nn.Module, kind: str, inputs: tuple, output: Tensor
    ) -> tuple[Tensor, Tensor]:
        if kind == "add":
            rows = output.shape[0]
            sops = torch.zeros(rows, dtype=torch.long, device=output.device)
            nonzero = torch.zeros_like(sops)
            for i in mod.spike_inputs:
                x = inputs[i]
                # a spike broadcast over several outputs (e.g. [C] + [C, H, W]) reaches each of them
                nz = x.reshape(rows, -1).ne(0).sum(1) if x.shape[:1] == output.shape[:1] else None
                if nz is None:
                    raise RuntimeError(
                        f"layer {name!r}: an operand of the addition is broadcast over time/batch"
                    )
                per_row = max(x[0].numel(), 1)
                sops += nz * (output[0].numel() // per_row)
                nonzero += nz
            return self._per_step(sops), self._per_step(nonzero)
        x = inputs[0]
        rows = x.shape[0]
        if kind in ("linear", "mean"):
            nz = x.reshape(rows, -1).ne(0).sum(1)
            factor = mod.out_features if kind == "linear" else 1
            return self._per_step(nz * factor), self._per_step(nz)
        d = _pool_dims(mod) if kind == "avgpool" else len(mod.kernel_size)
        spatial = tuple(x.shape[-d:])
        key = (name, spatial)
        if key not in self._fanouts:
            self._fanouts[key] = fanout_map(mod, spatial)
        fan, factor = self._fanouts[key]
        fan = fan.to(x.device)
        mask = x.ne(0)
        # sum the non-zero indicator over every dimension between batch and space (channels)
        per_pos = mask.reshape(rows, -1, *spatial).sum(1)
        sops = (per_pos * fan).reshape(rows, -1).sum(1) * factor
        return self._per_step(sops), self._per_step(per_pos.reshape(rows, -1).sum(1))


class AnnOpCounter:
    """Forward hooks that record the dense MACs and ACs of one sample per layer."""

    def __init__(self) -> None:
        self.layers: dict[str, LayerOps] = {}
        self._handles: list = []

    def attach(self, module: nn.Module) -> AnnOpCounter:
        for name, mod in module.named_modules():
            kind = layer_kind(mod)
            if kind is not None:
                self._handles.append(mod.register_forward_hook(self._hook(name, kind)))
        return self

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, name: str, kind: str):
        def hook(mod, inputs, output):
            mod = counted_module(mod)
            if name not in self.layers:
                macs, acs = dense_macs(mod, inputs, output)
                self.layers[name] = LayerOps(kind, True, macs, acs, module=type(mod).__name__)

        return hook


@dataclass
class AnnOps:
    """Dense operations of one ANN inference.

    Attributes:
        layers: layer -> :class:`LayerOps` (``macs_per_sample``, ``acs_per_sample``).
        notes: what could not be counted (e.g. an untraceable model's functional additions).
    """

    layers: dict[str, LayerOps] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(op.macs_per_sample for op in self.layers.values())

    @property
    def acs(self) -> int:
        return sum(op.acs_per_sample for op in self.layers.values())


@torch.no_grad()
def count_ann_ops(model: nn.Module, example: Tensor) -> AnnOps:
    """MACs and ACs of one inference of ``model`` on inputs shaped like ``example`` ([B, ...]).

    Counts Conv1d/2d/3d, Linear, average pooling (module or functional), means and tensor
    additions; per sample (``example``'s batch size does not matter).

    Example:
        >>> import torchvision                                          # doctest: +SKIP
        >>> count_ann_ops(torchvision.models.vgg11(), torch.zeros(1, 3, 224, 224)).macs  # doctest: +SKIP
        7609090048
    """
    notes: list[str] = []
    was_training = model.training
    model.eval()
    try:
        runnable: nn.Module = instrument(model, spiking=False)
    except Exception as err:  # untraceable: count modules only
        runnable = model
        notes.append(
            f"{type(model).__name__} could not be traced with torch.fx ({type(err).__name__}); "
            "functional additions and pooling are not counted, only layer modules"
        )
    counter = AnnOpCounter().attach(runnable)
    try:
        runnable(example[:1])
    finally:
        counter.detach()
        model.train(was_training)
    return AnnOps(counter.layers, notes)


def uncounted_layers(module: nn.Module) -> list[str]:
    """Layers with weights that no counter knows (e.g. ConvTranspose2d); reported, not counted."""
    found = []
    for name, mod in module.named_modules():
        if layer_kind(mod) is not None or isinstance(mod, (nn.modules.batchnorm._BatchNorm,)):
            continue
        weight = getattr(mod, "weight", None)
        if isinstance(weight, Tensor) and weight.dim() >= 2 and not list(mod.children()):
            found.append(f"{name} ({type(mod).__name__})")
    return found


__all__ = [
    "Add",
    "AnnOpCounter",
    "CallSite",
    "AnnOps",
    "LayerOps",
    "Mean",
    "SnnOpCounter",
    "count_ann_ops",
    "dense_macs",
    "fanout_map",
    "instrument",
    "layer_kind",
    "static_modules",
    "uncounted_layers",
]
