"""What the energy models count, per layer and per image (one inference), from an evaluation.

:func:`snn_counts` and :func:`ann_counts` turn an :class:`~spikebridge.evaluation.Evaluation`
with counted operations (``evaluate(..., count_ops=True)``) into :class:`NetworkCounts`: every
count is a mean over the evaluated images, so nothing depends on the batch size.

A synaptic layer (conv, linear; and, outside Lemaire 2022's scope, average pooling, means and
residual additions) runs in one of three modes:

- ``static``: its input is the analog image under the analog encoder; hardware computes it
  densely once per input (the engine's static prefix does exactly that).
- ``dense``: it reads the network's input directly and that input is not spikes (an analog
  sequence fed as it is): dense at every step.
- ``events``: its input is spikes (of either sign: a negative spike is an event), event-driven.

A neuron layer records its neurons, spikes (per image, all steps), whether it leaks (a multiply
per neuron per step: LIF) and whether it is signed (Kim 2020; Wang 2022); a graded neuron layer
(``levels`` K > 1, issue 23) also the threshold units its spikes carried, and an event-driven
conv/linear layer fed by graded spikes is ``graded`` (its synaptic operations multiply the weight
by the payload). ``payload_bits`` is the width of one graded spike's payload.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from torch import nn

from ..evaluation import Evaluation
from ..evaluation.counters import LayerOps, LayerShape
from ..evaluation.result import graded_input

SYNAPTIC_KINDS = ("conv", "linear")
"""Layers inside Lemaire 2022's scope; ``avgpool``/``mean`` (pooling) and ``add`` (residual
junctions) are counted by every model in their own components."""


@dataclass
class LayerCounts:
    """One counted layer of one inference.

    Attributes:
        name, kind (conv, linear, avgpool, mean, add), module (class name).
        mode: ``static`` (dense once), ``dense`` (dense every step) or ``events``.
        shape: sizes per sample and step (:class:`~spikebridge.evaluation.counters.LayerShape`).
        executions: dense passes per inference (1 static, T dense, 0 events).
        events: non-zero input elements over all steps (what the models price in ``events``
            mode; also kept in ``dense`` mode, where the ``ops`` model prices it as before).
        sops: synaptic operations over all steps with exact fan-outs.
        dense_macs / dense_acs: MACs / additions of one dense pass.
        graded: its events are graded spikes (K > 1) through a synapse: each synaptic operation
            multiplies the weight by the payload.
    """

    name: str
    kind: str
    module: str
    mode: str
    shape: LayerShape
    executions: int = 0
    events: float = 0.0
    sops: float = 0.0
    dense_macs: int = 0
    dense_acs: int = 0
    graded: bool = False


@dataclass
class NeuronCounts:
    """One neuron layer of one inference: ``neurons`` per image, ``spikes`` over all steps
    (non-zero outputs of either sign), ``leaky`` (LIF: a multiply per neuron per step),
    ``signed`` (it can emit negative spikes), ``levels`` (K: the most threshold units a spike
    carries; 1: binary) and ``units`` (threshold units its spikes carried; None: = spikes)."""

    name: str
    module: str
    neurons: int
    spikes: float
    leaky: bool = False
    signed: bool = False
    levels: int = 1
    units: float | None = None

    @property
    def graded(self) -> bool:
        return self.levels > 1

    @property
    def carried(self) -> float:
        """Threshold units its spikes carried (a binary spike carries one)."""
        return self.spikes if self.units is None else self.units


@dataclass
class NetworkCounts:
    """Counts of one inference of a network.

    Attributes:
        timesteps: T (1 for an ANN).
        layers, neurons: per layer, in network order.
        outputs: classes of the readout (K).
        spiking: a spiking network (False: an ANN, whose layers all run dense once).
        samples: images the means were taken over.
        bits: activation width of an ANN (32: float/32-bit; a quantised ANN: fewer).
        payload_bits: bits of one graded spike's payload (0: binary spikes;
            :func:`~spikebridge.evaluation.counters.payload_bits`).
    """

    timesteps: int
    layers: list[LayerCounts] = field(default_factory=list)
    neurons: list[NeuronCounts] = field(default_factory=list)
    outputs: int = 0
    spiking: bool = True
    samples: int = 1
    bits: int = 32
    payload_bits: int = 0

    @property
    def spikes(self) -> float:
        return sum(n.spikes for n in self.neurons)

    @property
    def units(self) -> float:
        """Threshold units carried by all spikes (= :attr:`spikes` for binary spikes)."""
        return sum(n.carried for n in self.neurons)

    @property
    def neuron_count(self) -> int:
        return sum(n.neurons for n in self.neurons)

    @property
    def synapses(self) -> int:
        """Synapses of the event-driven layers (one dense pass's MACs: each a synapse)."""
        return sum(layer.dense_macs for layer in self.layers if layer.mode == "events")

    @property
    def sops(self) -> float:
        return sum(layer.sops for layer in self.layers if layer.mode != "static")

    def firing_rate(self) -> float:
        """Spikes per neuron per step."""
        n = self.neuron_count * self.timesteps
        return self.spikes / n if n else float("nan")

    def scaled(self, factor: float) -> NetworkCounts:
        """The same network with every event (input events, SOPs, spikes) times ``factor``:
        energy is affine in the activity, which is what break-even rates are read from."""
        return replace(
            self,
            layers=[
                replace(c, events=c.events * factor, sops=c.sops * factor) for c in self.layers
            ],
            neurons=[
                replace(
                    n,
                    spikes=n.spikes * factor,
                    units=None if n.units is None else n.units * factor,
                )
                for n in self.neurons
            ],
        )


def _mode(op: LayerOps) -> str:
    if op.analog:
        return "static"
    return "dense" if op.dense_steps else "events"


def _leaky(module: nn.Module | None) -> bool:
    if module is None:
        return False
    tau = getattr(module, "tau_decay", None)
    leak = getattr(module, "leak", None)
    return (tau is not None and float(tau) != 1.0) or (leak is not None and float(leak) != 1.0)


def _signed(module: nn.Module | None) -> bool:
    return bool(getattr(module, "negative_spikes", False)) or type(module).__name__ == (
        "SignedIFNeuron"
    )


def snn_counts(ev: Evaluation, network: nn.Module | None = None) -> NetworkCounts:
    """Per-image counts of a spiking network's evaluation (``count_ops=True``).

    ``network`` (the :class:`~spikebridge.engine.network.SpikingNetwork` evaluated) tells which
    neuron layers leak or are signed; without it neurons count as plain IF.
    """
    n = max(ev.total, 1)
    steps = ev.timesteps
    modules = network.neurons() if hasattr(network, "neurons") else {}
    layers = []
    graded_spikes = ev.spike_levels > 1
    for name, op in ev.layers.items():
        mode = _mode(op)
        executions = {"static": 1, "dense": steps, "events": 0}[mode]
        events = float(op.inputs.sum()) / n if op.inputs is not None else 0.0
        sops = float(op.sops.sum()) / n if op.sops is not None else 0.0
        layers.append(
            LayerCounts(
                name,
                op.kind,
                op.module,
                mode,
                op.shape,
                executions,
                events,
                sops,
                op.macs_per_sample,
                op.acs_per_sample,
                graded_spikes and graded_input(op),
            )  # fmt: skip
        )
    neurons = []
    for name, count in ev.neurons.items():
        spikes = float(ev.spikes[name].sum()) / n if name in ev.spikes else 0.0
        module = modules.get(name)
        units = float(ev.units[name].sum()) / n if name in ev.units else None
        levels = int(getattr(module, "levels", 1)) if module is not None else 1
        if units is not None:
            levels = max(levels, 2)
        neurons.append(
            NeuronCounts(
                name,
                ev.types.get(name, ""),
                count,
                spikes,
                _leaky(module),
                _signed(module),
                levels,
                units,
            )  # fmt: skip
        )
    outputs = layers[-1].shape.out_elements if layers else 0
    return NetworkCounts(
        steps, layers, neurons, outputs, True, ev.total, payload_bits=ev.payload_bits
    )


def ann_counts(ev: Evaluation, bits: int = 32) -> NetworkCounts:
    """Per-image counts of an ANN's evaluation (``count_ops=True``): every layer dense once;
    ``bits`` is the width of its activations (a quantised ANN: ceil(log2(T+1)))."""
    layers = [
        LayerCounts(
            name,
            op.kind,
            op.module,
            "static",
            op.shape,
            1,
            0.0,
            0.0,
            op.macs_per_sample,
            op.acs_per_sample,
        )  # fmt: skip
        for name, op in ev.layers.items()
    ]
    outputs = layers[-1].shape.out_elements if layers else 0
    return NetworkCounts(1, layers, [], outputs, False, ev.total, bits)


__all__ = [
    "SYNAPTIC_KINDS",
    "LayerCounts",
    "NetworkCounts",
    "NeuronCounts",
    "ann_counts",
    "snn_counts",
]
