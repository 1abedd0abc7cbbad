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

Graded spikes (neurons with ``levels`` K > 1, issue 23): an event still costs one synaptic
operation per output it reaches (``sops``), but it carries a payload of k units: the simulation
counts the units (:attr:`~spikebridge.engine.network.Simulation.units`), and a graded event is
``payload_bits(K, signed)`` = ceil(log2(K + 1)) bits wide, one more for a sign. The energy
models price what that costs (docs/energy.md).

Functional calls that matter for counting (``x + y``, ``F.avg_pool2d``, ``F.adaptive_avg_pool2d``,
``x.mean(...)``) are found in the network's ``torch.fx`` graph and swapped for equivalent modules
in a copy that shares every parameter, so one hook mechanism counts everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.neurons import SpikingNeuron
from .fanout import _pool_dims, dense_macs, fanout_map
from .instrument import instrument
from .layers import counted_module, layer_kind


def payload_bits(levels: int, signed: bool = False) -> int:
    """Bits of a graded spike's payload: ceil(log2(K + 1)) for k in 0..K, plus a sign bit for a
    signed neuron (k in -K..K); 0 for binary spikes (K = 1: the event is the message)."""
    if levels <= 1:
        return 0
    return math.ceil(math.log2(levels + 1)) + (1 if signed else 0)


@dataclass
class LayerShape:
    """Sizes of one counted layer, per sample and per step (what memory-aware energy models need,
    :mod:`spikebridge.energy`).

    Attributes:
        in_elements / out_elements: input / output elements of one sample at one step.
        weights / biases: stored parameters (elements).
        fan_out: outputs one input event reaches by the kernel, ignoring borders
            (conv: out_channels/groups x kernel volume; linear: out_features; else 1).
        fan_out_stride: the same with the kernel divided by the stride, rounded up per dimension
            (conv: out_channels/groups x prod ceil(k/s), Lemaire 2022's synaptic operations).
        kernel_entries: out_channels x kernel volume of a conv (its addressing of a dense pass).
        input_layer: the layer reads the network's input directly.
    """

    in_elements: int = 0
    out_elements: int = 0
    weights: int = 0
    biases: int = 0
    fan_out: int = 1
    fan_out_stride: int = 1
    kernel_entries: int = 0
    input_layer: bool = False


def layer_shape(mod: nn.Module, kind: str, inputs: tuple, output: Tensor) -> LayerShape:
    """The :class:`LayerShape` of ``mod`` from one call (first dimension: samples x steps)."""
    x = inputs[0]
    rows = max(x.shape[0], 1) if x.dim() else 1
    weight = getattr(mod, "weight", None) if kind in ("conv", "linear") else None
    bias = getattr(mod, "bias", None) if kind in ("conv", "linear") else None
    shape = LayerShape(
        in_elements=x.numel() // rows,
        out_elements=output.numel() // max(output.shape[0], 1) if output.dim() else 1,
        weights=int(weight.numel()) if isinstance(weight, Tensor) else 0,
        biases=int(bias.numel()) if isinstance(bias, Tensor) else 0,
    )
    if kind == "conv":
        per_group = mod.out_channels // mod.groups
        shape.fan_out = per_group * math.prod(mod.kernel_size)
        shape.fan_out_stride = per_group * math.prod(
            -(-k // s) for k, s in zip(mod.kernel_size, mod.stride, strict=True)
        )
        shape.kernel_entries = mod.out_channels * math.prod(mod.kernel_size)
    elif kind == "linear":
        shape.fan_out = shape.fan_out_stride = mod.out_features
    return shape


class _RootInput:
    """Remembers the network's input of the current call (a forward pre-hook on the root) so a
    layer hook can tell whether a layer reads that input directly."""

    _root_input: Tensor | None = None

    def _on_input(self, _mod, inp) -> None:
        self._root_input = inp[0] if inp and isinstance(inp[0], Tensor) else None

    def _reads_input(self, x: Tensor) -> bool:
        """``x`` is (a view of) the network's input of this call."""
        root = self._root_input
        return root is not None and x.numel() > 0 and x.data_ptr() == root.data_ptr()


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
        shape: its sizes (:class:`LayerShape`).
        dense_steps: the layer read the network's input directly and that input was not
            spikes (not integer-valued, e.g. an analog sequence fed as it is): hardware computes
            it densely at every step (its ``sops`` still count non-zero inputs x fan-out).
    """

    kind: str
    analog: bool = False
    macs_per_sample: int = 0
    acs_per_sample: int = 0
    sops: Tensor | None = None
    inputs: Tensor | None = None
    module: str = ""
    shape: LayerShape = field(default_factory=LayerShape)
    dense_steps: bool = False

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


class SnnOpCounter(_RootInput):
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
        self._handles.append(module.register_forward_pre_hook(self._on_input))
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
                shape = layer_shape(mod, kind, inputs, output)
                shape.input_layer = analog or self._reads_input(inputs[0])
                ops = self.layers[name] = LayerOps(
                    kind, analog, macs, acs, module=type(mod).__name__, shape=shape
                )
            if analog:
                return
            if ops.shape.input_layer and not ops.dense_steps:
                x = inputs[0]
                ops.dense_steps = bool(x.is_floating_point() and x.ne(x.round()).any().item())
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


class AnnOpCounter(_RootInput):
    """Forward hooks that record the dense MACs and ACs of one sample per layer."""

    def __init__(self) -> None:
        self.layers: dict[str, LayerOps] = {}
        self._handles: list = []

    def attach(self, module: nn.Module) -> AnnOpCounter:
        for name, mod in module.named_modules():
            kind = layer_kind(mod)
            if kind is not None:
                self._handles.append(mod.register_forward_hook(self._hook(name, kind)))
        self._handles.append(module.register_forward_pre_hook(self._on_input))
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
                shape = layer_shape(mod, kind, inputs, output)
                shape.input_layer = self._reads_input(inputs[0])
                self.layers[name] = LayerOps(
                    kind, True, macs, acs, module=type(mod).__name__, shape=shape
                )

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
        runnable: nn.Module = instrument(model)
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
