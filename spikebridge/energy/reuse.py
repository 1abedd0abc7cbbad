"""``reuse``: an accelerator that reuses data from local buffers, after Dampfhoffer et al. 2023.

Source: M. Dampfhoffer, T. Mesquida, A. Valentian, L. Anghel, "Are SNNs really more energy-
efficient than ANNs? An in-depth hardware-aware study", IEEE TETCI 7(3), 2023. Their point: the
fair ANN baseline is an accelerator that fetches each weight and each input from the large SRAM
once and reuses it from small local buffers, and the SNN must be put on the same memory
hierarchy. The structure below follows that argument; the constants are ours (the Lemaire 2022 /
Horowitz 2014 figures already used by ``lemaire``), written here and in docs/energy.md.

Assumptions (one inference; W = 4-byte words; E_g(c) = global SRAM energy per byte for a buffer
of c bytes, the Lemaire curve; E_l = one local-buffer access of a word):

- Both: each layer's weights and biases are read from the global SRAM once per inference
  (weight-stationary: they stay in the local buffers of the processing elements for all output
  positions and, in the SNN, for all T steps), at E_g(parameter bytes).
- ANN (dense layer, x passes): x MACs (E_mul b/32 + E_add); per MAC one weight and one input read
  from local buffers (E_l each; the b-bit input at E_l b/32); inputs read once from the global
  SRAM (b bits each, at E_g(input bytes)); outputs written once (b bits, at E_g(output bytes)).
  The first layer reads the 32-bit image.
- SNN (spike input, e events): each event read once from the global SRAM (one word, at
  E_g(FIFO)); e F synaptic operations (E_add each) with one local weight read and one local
  read-and-write of the potential being accumulated (3 E_l); biases added once per output per
  step (E_add). A neuron layer (N neurons) reads and writes every potential in the global SRAM
  once per step (the potentials do not fit the local buffers across steps:
  2 N T W at E_g(N W)), compares once per neuron per step (E_add), resets once per spike
  (E_add) and writes each spike (one word at E_g(FIFO)). A dense first layer costs what the ANN
  pays for it.
- Graded spikes (K > 1, b payload bits; outside the source's scope): each synaptic operation
  of a graded event multiplies the weight by the payload (E_mul b/32 more, in ``ops``); an event
  read and a spike written move a word plus b bits; a graded neuron finds k = floor(u / theta)
  with a multiply per neuron per step and resets by k theta (E_mul b/32 per spike), both in
  ``neuron_update``.
- Outside the source's scope, apart: ``leak`` (E_mul + E_add per LIF neuron per step),
  ``signed`` (compare with the spike count, count read/written from the local buffer),
  ``pooling``, ``residual`` (E_add per event x fan-out), ``readout`` (K - 1 comparisons).

Leaves out: DRAM, the network-on-chip, control, idle/leakage power, sparsity skipping in the ANN
(zero activations still cost their MACs), and the time-multiplexing of neurons over PEs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..settings import setting
from .base import WORD_BITS, EnergyTerm, SramModel, register_energy_model
from .counts import SYNAPTIC_KINDS, LayerCounts, NetworkCounts

WORD = WORD_BITS // 8


@register_energy_model
@dataclass
class Reuse(SramModel):
    """Data reuse from local buffers for both networks (Dampfhoffer et al. 2023)."""

    name: ClassVar[str] = "reuse"
    order: ClassVar[int] = 30
    paper_components: ClassVar[tuple[str, ...]] = (
        "ops", "neuron_update", "memory_local", "memory_global",
    )  # fmt: skip

    local_pj: float = setting(1.25, "energy of a 32-bit access to a local buffer (pJ; the "
                              "Lemaire curve at 1 KiB)", non_negative=True, maximum=1e6)  # fmt: skip

    def layer_energy(self, counts: NetworkCounts) -> list[EnergyTerm]:
        terms: list[EnergyTerm] = []
        fifo = self.fifo_words * WORD
        for layer in counts.layers:
            if layer.kind not in SYNAPTIC_KINDS:
                adds = (
                    layer.sops
                    if layer.mode == "events"
                    else layer.executions * (layer.dense_macs + layer.dense_acs)
                )
                component = "residual" if layer.kind == "add" else "pooling"
                terms.append(EnergyTerm(layer.name, component, adds * self.e_add_pj))
                continue
            terms += self._synaptic(layer, counts, fifo)
        for n in counts.neurons:
            steps = n.neurons * counts.timesteps
            potentials = self.memory(2 * steps * WORD, n.neurons * WORD)
            bits = counts.payload_bits if n.graded else 0
            written = self.memory(n.spikes * (WORD + bits / 8), fifo)
            update = (steps + n.spikes) * self.e_add_pj
            if n.graded:  # k = floor(u / theta) per neuron and step; reset by k theta per spike
                update += (steps + n.spikes * bits / WORD_BITS) * self.e_mul_pj
            terms += [
                EnergyTerm(n.name, "memory_global", potentials + written),
                EnergyTerm(n.name, "neuron_update", update),
            ]  # fmt: skip
            if n.leaky:
                terms.append(EnergyTerm(n.name, "leak", steps * (self.e_mul_pj + self.e_add_pj)))
            if n.signed:
                terms.append(
                    EnergyTerm(n.name, "signed", steps * (self.e_add_pj + 2 * self.local_pj))
                )
        if counts.outputs > 1:
            terms.append(EnergyTerm("readout", "readout", (counts.outputs - 1) * self.e_add_pj))
        return terms

    def _synaptic(self, layer: LayerCounts, counts: NetworkCounts, fifo: int) -> list[EnergyTerm]:
        s, name = layer.shape, layer.name
        params = (s.weights + s.biases) * WORD
        weights = self.memory(params, params)
        if layer.mode == "events":
            synops = layer.events * s.fan_out
            biases = (s.out_elements * counts.timesteps if s.biases else 0) * self.e_add_pj
            bits = counts.payload_bits if layer.graded else 0
            per_synop = self.e_add_pj + self.e_mul_pj * bits / WORD_BITS  # weight x payload
            events = self.memory(layer.events * (WORD + bits / 8), fifo)
            return [
                EnergyTerm(name, "ops", synops * per_synop + biases),
                EnergyTerm(name, "memory_local", 3 * synops * self.local_pj),
                EnergyTerm(name, "memory_global", weights + events),
            ]  # fmt: skip
        x = layer.executions
        in_bits = WORD_BITS if (counts.spiking or s.input_layer) else counts.bits
        last = layer is counts.layers[-1]
        out_bits = WORD_BITS if (counts.spiking or last) else counts.bits
        in_b, out_b = in_bits / 8, out_bits / 8
        macs = x * layer.dense_macs
        ops = macs * (self.e_mul_pj * in_bits / WORD_BITS + self.e_add_pj)
        ops += x * (s.out_elements if s.biases else 0) * self.e_add_pj
        local = macs * self.local_pj * (1 + in_bits / WORD_BITS)
        moved = self.memory(x * s.in_elements * in_b, s.in_elements * in_b)
        if not counts.spiking:
            moved += self.memory(x * s.out_elements * out_b, s.out_elements * out_b)
        return [
            EnergyTerm(name, "ops", ops),
            EnergyTerm(name, "memory_local", local),
            EnergyTerm(name, "memory_global", weights + moved),
        ]
