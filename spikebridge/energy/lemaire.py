"""``lemaire``: operations + addressing + memory, after Lemaire et al. 2022.

Source: E. Lemaire, L. Cordone, A. Castagnetti, P.-E. Novac, J. Courtois, B. Miramond, "An
analytical estimation of spiking neural networks energy efficiency", ICONIP 2022
(arXiv:2210.13107). Same scope and constants as SpikingJelly 2.0's ``estimate_lemaire_energy``
(checked against it in tests/test_energy_crosscheck.py, per image, at batch 1).

Per conv/linear layer of one inference (W = 4-byte words; E(c) = SRAM energy per byte of a buffer
of c bytes, :func:`~spikebridge.energy.base.sram_pj_per_byte`):

- spike input, e input events over T steps, fan-out F (conv: C_out/g x k^d; linear: N_out),
  F_s = C_out/g x prod ceil(k/s):
  ops = (e F_s + [bias] N_out T) E_add; addressing = e F E_add + [conv] 2 e (E_mul + E_add);
  input buffer e W at E(FIFO of 1000 words); weights (e F + [bias] N_out T) W at E(parameters);
  potentials 2 e F W at E(N_out W).
- dense input, x passes (analog image: once; an analog sequence: every step):
  ops = x MACs (E_mul + E_add) + [bias] x N_out E_add;
  addressing = x (N_in + N_out + [conv] C_out k^d) E_add;
  input buffer x (conv: MACs; linear: N_in) W at E(N_in W); weights x (MACs + [bias] N_out) W at
  E(parameters); an ANN also writes x N_out W at E(N_out W).
- neuron layer of N neurons, s spikes: potentials 2 N T W at E(N W); s E_add (reset);
  output buffer s W at E(FIFO).

Components: ``ops``, ``addressing``, ``memory_inout``, ``memory_params``, ``memory_potential``
(the paper's figure), then outside its scope: ``leak`` (LIF: one multiply-add per neuron per
step; SpikingJelly puts it in its ``ops``), ``signed`` (a signed neuron compares its potential
with its spike count and reads/writes that count every step), ``pooling`` (average pooling and
means: one add per input event x fan-out, or per dense accumulate), ``residual`` (one add per
spike arriving at a junction) and ``readout`` (K - 1 comparisons of the argmax).

Graded spikes (K > 1, b = ``counts.payload_bits``; outside the paper, which has binary spikes
only; priced with its own rules for b-bit values, as for a quantised ANN): a graded event into a
conv/linear layer adds e F_s E_mul b/32 to ``ops`` (each synaptic operation multiplies its weight
by the b-bit payload); every event and every spike written is a word plus b payload bits in the
FIFO (``memory_inout``); a graded neuron's reset subtracts k theta (s E_mul b/32 more in ``ops``)
and finding k = floor(u / theta) costs a multiply per neuron per step (component ``graded``).

A quantised ANN (``counts.bits`` = b < 32) multiplies b-bit activations by 32-bit weights
(E_mul b/32; accumulates stay 32-bit) and stores b-bit activations (its input and output
buffers shrink by b/32); its first layer reads the 32-bit image.

Leaves out: DRAM and off-chip traffic, control logic, leakage power, clock; max pooling (a
comparison network that routes spikes); the cost of encoding the input (Poisson sampling).
Conv synaptic operations ignore borders (the paper's C_out k^2 / s^2 per spike), so they exceed
the exact count the ``ops`` model uses at the borders of padded convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import WORD_BITS, EnergyTerm, SramModel, register_energy_model
from .counts import SYNAPTIC_KINDS, LayerCounts, NetworkCounts

WORD = WORD_BITS // 8


@register_energy_model
@dataclass
class Lemaire(SramModel):
    """Lemaire et al. 2022: 32-bit integer operations, addressing and SRAM accesses at 45 nm."""

    name: ClassVar[str] = "lemaire"
    order: ClassVar[int] = 20
    paper_components: ClassVar[tuple[str, ...]] = (
        "ops", "addressing", "memory_inout", "memory_params", "memory_potential",
    )  # fmt: skip

    def layer_energy(self, counts: NetworkCounts) -> list[EnergyTerm]:
        terms: list[EnergyTerm] = []
        for layer in counts.layers:
            if layer.kind in SYNAPTIC_KINDS:
                terms += self._synaptic(layer, counts)
            else:
                terms += self._extra(layer)
        fifo = self.fifo_words * WORD
        payload = counts.payload_bits
        for n in counts.neurons:
            steps = n.neurons * counts.timesteps
            bits = payload if n.graded else 0
            spike_bytes = n.spikes * (WORD + bits / 8)
            terms += [
                EnergyTerm(
                    n.name, "memory_potential", self.memory(2 * steps * WORD, n.neurons * WORD)
                ),
                EnergyTerm(
                    n.name, "ops", n.spikes * (self.e_add_pj + self.e_mul_pj * bits / WORD_BITS)
                ),
                EnergyTerm(n.name, "memory_inout", self.memory(spike_bytes, fifo)),
            ]
            if n.graded:  # k = floor(u / theta): u times 1 / theta, every neuron, every step
                terms.append(EnergyTerm(n.name, "graded", steps * self.e_mul_pj))
            if n.leaky:
                terms.append(EnergyTerm(n.name, "leak", steps * (self.e_mul_pj + self.e_add_pj)))
            if n.signed:
                count_memory = self.memory(2 * steps * WORD, n.neurons * WORD)
                terms.append(EnergyTerm(n.name, "signed", steps * self.e_add_pj + count_memory))
        if counts.outputs > 1:
            terms.append(EnergyTerm("readout", "readout", (counts.outputs - 1) * self.e_add_pj))
        return terms

    def _synaptic(self, layer: LayerCounts, counts: NetworkCounts) -> list[EnergyTerm]:
        s = layer.shape
        params = (s.weights + s.biases) * WORD
        bias = 1 if s.biases else 0
        conv = layer.kind == "conv"
        name = layer.name
        if layer.mode == "events":
            e, steps = layer.events, counts.timesteps
            fan = e * s.fan_out
            ops = (e * s.fan_out_stride + bias * s.out_elements * steps) * self.e_add_pj
            bits = counts.payload_bits if layer.graded else 0
            ops += e * s.fan_out_stride * self.e_mul_pj * bits / WORD_BITS  # weight x payload
            addressing = fan * self.e_add_pj + (
                2 * e * (self.e_mul_pj + self.e_add_pj) if conv else 0.0
            )
            event_bytes = e * (WORD + bits / 8)
            return [
                EnergyTerm(name, "ops", ops),
                EnergyTerm(name, "addressing", addressing),
                EnergyTerm(name, "memory_inout", self.memory(event_bytes, self.fifo_words * WORD)),
                EnergyTerm(name, "memory_params", self.memory((fan + bias * s.out_elements * steps) * WORD, params)),
                EnergyTerm(name, "memory_potential", self.memory(2 * fan * WORD, s.out_elements * WORD)),
            ]  # fmt: skip
        x = layer.executions
        in_bits = WORD_BITS if (counts.spiking or s.input_layer) else counts.bits
        last = layer is counts.layers[-1]
        out_bits = WORD_BITS if (counts.spiking or last) else counts.bits
        in_word, out_word = in_bits / 8, out_bits / 8
        e_mul = self.e_mul_pj * in_bits / WORD_BITS
        ops = (
            x * layer.dense_macs * (e_mul + self.e_add_pj)
            + x * bias * s.out_elements * self.e_add_pj
        )
        addressing = (
            x * (s.in_elements + s.out_elements + (s.kernel_entries if conv else 0)) * self.e_add_pj
        )
        reads = layer.dense_macs if conv else s.in_elements
        terms = [
            EnergyTerm(name, "ops", ops),
            EnergyTerm(name, "addressing", addressing),
            EnergyTerm(name, "memory_inout", self.memory(x * reads * in_word, s.in_elements * in_word)),
            EnergyTerm(name, "memory_params", self.memory(x * (layer.dense_macs + bias * s.out_elements) * WORD, params)),
        ]  # fmt: skip
        if not counts.spiking:
            write = self.memory(x * s.out_elements * out_word, s.out_elements * out_word)
            terms.append(EnergyTerm(name, "memory_inout", write))
        return terms

    def _extra(self, layer: LayerCounts) -> list[EnergyTerm]:
        component = "residual" if layer.kind == "add" else "pooling"
        if layer.mode == "events":
            return [EnergyTerm(layer.name, component, layer.sops * self.e_add_pj)]
        adds = layer.dense_macs + layer.dense_acs
        return [EnergyTerm(layer.name, component, layer.executions * adds * self.e_add_pj)]
