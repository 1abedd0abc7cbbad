"""``ops``: arithmetic only, the toolkit's count before memory-aware models (SPEC 3.2).

Source: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014:
32-bit float multiply-accumulate 4.6 pJ, 32-bit float add 0.9 pJ at 45 nm.

E = E_MAC x MACs + E_AC x (SOPs + additions). A spiking network's layers that see the analog
image cost their dense MACs at *every* step (as the toolkit always counted them), event-driven
layers one accumulate per synaptic operation with exact fan-outs (borders included), residual
junctions one accumulate per arriving spike; an ANN costs its dense MACs and additions once. A
quantised ANN of b-bit activations (``counts.bits``) pays E_MAC x b/32 per MAC.

Graded spikes (K > 1, issue 23): a synaptic operation of a graded spike multiplies the weight
by the payload k before accumulating, so it costs E_MAC (component ``macs``), not E_AC: the
multiply-accumulate of the payload (Loihi 2's graded spikes do this in the synapse; Horowitz's
figure is for 32-bit float operands, an upper bound for a small payload). Pooling and residual
junctions still add the spike's value (E_AC).

Kept so that tables made before the memory-aware models can be re-made: ``energy_ops_pJ``
equals the old ``energy_pJ`` column. Components: ``macs`` and ``acs``.

Leaves out: every memory access (weights, membrane potentials, spikes), addressing, neuron
updates (the leak of LIF neurons, threshold comparisons), and the readout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..settings import setting
from .base import WORD_BITS, EnergyModel, EnergyTerm, register_energy_model
from .counts import NetworkCounts


@register_energy_model
@dataclass
class Ops(EnergyModel):
    """Horowitz 2014 arithmetic: 4.6 pJ per float MAC, 0.9 pJ per float accumulate."""

    name: ClassVar[str] = "ops"
    order: ClassVar[int] = 10
    paper_components: ClassVar[tuple[str, ...]] = ("macs", "acs")

    e_mac_pj: float = setting(4.6, "energy of a multiply-accumulate (pJ)", non_negative=True)
    e_ac_pj: float = setting(0.9, "energy of an accumulate (pJ)", non_negative=True)

    def layer_energy(self, counts: NetworkCounts) -> list[EnergyTerm]:
        terms = []
        scale = 1.0 if counts.spiking else counts.bits / WORD_BITS
        for layer in counts.layers:
            if layer.mode != "static":
                if layer.graded:  # weight x payload: a multiply-accumulate per synaptic op
                    terms.append(EnergyTerm(layer.name, "macs", layer.sops * self.e_mac_pj))
                else:
                    terms.append(EnergyTerm(layer.name, "acs", layer.sops * self.e_ac_pj))
                continue
            # the toolkit's convention: an SNN's analog layers cost MACs at every step
            passes = counts.timesteps if counts.spiking else 1
            terms.append(
                EnergyTerm(layer.name, "macs", passes * layer.dense_macs * self.e_mac_pj * scale)
            )
            terms.append(EnergyTerm(layer.name, "acs", passes * layer.dense_acs * self.e_ac_pj))
        return terms
