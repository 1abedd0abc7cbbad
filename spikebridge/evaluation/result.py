"""What an evaluation returns: accuracy after every step, spikes and operations per layer."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .counters import LayerOps


@dataclass
class Evaluation:
    """Totals of one network over a test set (summed over processes when sharded).

    Attributes:
        correct: [T] correct predictions after each step t = 1..T of a spiking network; [1] for
            an ANN (one pass).
        total: number of samples.
        spikes: neuron layer -> [T] spikes (non-zero outputs, either sign) per step, all samples;
            empty unless operations were counted.
        neurons: neuron layer -> neurons per sample (likewise).
        layers: counted layer -> :class:`LayerOps` (SOPs per step, dense MACs per sample); empty
            unless operations were counted.
        seconds: wall time of the evaluation (the slowest process when sharded).
        notes: what could not be counted exactly.
        types: layer -> class name of its module (neurons and counted layers).
        units: graded neuron layer -> [T] threshold units its spikes carried per step, all
            samples (a spike of k units counts k; binary layers are not listed: units = spikes).
        spike_levels: K, the most units one spike of the network carries (1: binary spikes).
        payload_bits: bits of one graded spike's payload (:func:`.counters.payload_bits`;
            0: binary spikes).
    """

    correct: Tensor
    total: int
    spikes: dict[str, Tensor] = field(default_factory=dict)
    neurons: dict[str, int] = field(default_factory=dict)
    layers: dict[str, LayerOps] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    types: dict[str, str] = field(default_factory=dict)
    units: dict[str, Tensor] = field(default_factory=dict)
    spike_levels: int = 1
    payload_bits: int = 0

    @property
    def timesteps(self) -> int:
        """T (1 for an ANN)."""
        return int(self.correct.numel())

    @property
    def accuracy(self) -> Tensor:
        """[T] accuracy after each step, fractions in [0, 1] ([1] for an ANN)."""
        return self.correct.double() / max(self.total, 1)

    def macs(self) -> Tensor:
        """[T] MACs per step, summed over samples (the analog-input layers)."""
        out = torch.zeros(self.timesteps, dtype=torch.float64)
        for op in self.layers.values():
            out += op.macs(self.timesteps, self.total)
        return out

    def sops(self) -> Tensor:
        """[T] synaptic operations per step, summed over samples (event-driven layers)."""
        out = torch.zeros(self.timesteps, dtype=torch.float64)
        for op in self.layers.values():
            if not op.analog and op.sops is not None:
                out += op.sops.double()
        return out

    def graded_sops(self) -> Tensor:
        """[T] the synaptic operations (of :meth:`sops`) that graded spikes caused, summed over
        samples: every conv/linear layer fed by neurons (not by the encoder) when the network's
        spikes carry K > 1 units; each multiplies its weight by the payload k (a MAC, not an
        accumulate: docs/energy.md). Zero for binary spikes."""
        out = torch.zeros(self.timesteps, dtype=torch.float64)
        if self.spike_levels <= 1:
            return out
        for op in self.layers.values():
            if graded_input(op):
                out += op.sops.double()
        return out

    def spike_units(self) -> Tensor:
        """[T] threshold units carried by all spikes per step, summed over samples (= spikes
        for binary layers)."""
        out = torch.zeros(self.timesteps, dtype=torch.float64)
        for name, counts in self.spikes.items():
            out += self.units.get(name, counts).double()
        return out

    def adds(self) -> Tensor:
        """[T] dense additions per step of analog-input junctions, summed over samples."""
        out = torch.zeros(self.timesteps, dtype=torch.float64)
        for op in self.layers.values():
            if op.analog:
                out += op.acs_per_sample * self.total
        return out

    @property
    def macs_per_sample(self) -> int:
        """Dense MACs of one sample at one step (of an ANN: one inference)."""
        return sum(op.macs_per_sample for op in self.layers.values())

    @property
    def acs_per_sample(self) -> int:
        """Dense accumulates (residual additions) of one sample at one step."""
        return sum(op.acs_per_sample for op in self.layers.values())


def graded_input(op: LayerOps) -> bool:
    """Whether a counted layer's events are spikes of the network's neurons through a synapse
    (conv, linear; not the encoder's input, not a dense analog layer): the layers whose
    synaptic operations a graded spike turns into multiply-accumulates."""
    return (
        op.kind in ("conv", "linear")
        and not op.analog
        and not op.shape.input_layer
        and op.sops is not None
    )
