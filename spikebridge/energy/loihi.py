"""``loihi``: a neuromorphic chip's published energy per operation (Intel Loihi, Davies 2018).

Source: M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip Learning",
IEEE Micro 38(1), 2018, Table 2 (14 nm, 0.75 V): synaptic spike operation 23.6 pJ (minimum),
neuron update 81 pJ active / 52 pJ inactive, within-tile spike 1.7 pJ, 3.5 pJ per tile hop.

E = 23.6 pJ x SOPs (exact fan-outs) + 81 pJ x neuron updates (every neuron, every step: a
time-multiplexed core updates all its compartments at each step) + spikes x (1.7 + hops x 3.5)
pJ (each spike routed once, ``tile_hops`` hops). Memory is inside these figures (Loihi keeps
weights and states in core SRAM). Components: ``synaptic``, ``neuron_update``, ``routing``; the
leak is part of Loihi's neuron update (``leak`` is 0 here).

Outside the chip's spiking scope, apart: ``analog_input`` (a layer fed the analog image: each
MAC as one synaptic operation of a graded spike, once per input when the encoder is analog, per
step otherwise), ``pooling`` and ``residual`` (one synaptic operation per event x fan-out),
``signed`` (a signed neuron is two compartments on Loihi: a second neuron update per step),
``readout`` (K - 1 comparisons at 0.1 pJ, off-chip).

An ANN on the same chip (graded spikes, Loihi 2): every MAC a synaptic operation, every
activation one neuron update and one routed message; its activation width does not change
these per-operation figures.

Graded spikes (K > 1, issue 23): Loihi 2 carries graded spikes with an integer payload that the
synapse multiplies by the weight (Orchard et al., "Efficient Neuromorphic Signal Processing with
Loihi 2", IEEE SiPS 2021). No energy per graded synaptic operation is published, so a graded
event costs what this model charges any synaptic operation and any routed spike (as the ANN's
MACs above): a graded network pays for its events and neuron updates, not for its payload.
That favours graded spikes; the ``lemaire`` and ``reuse`` models charge the payload.

Leaves out: static (leakage) power of idle cores, the x86 management cores, chip I/O and
off-chip traffic, and the 52 pJ of neurons Loihi skips when inactive (every update is charged as
active). Loihi's 14 nm figures are not comparable to the 45 nm ones of the other models: compare
networks within this model, not across models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..settings import setting
from .base import EnergyModel, EnergyTerm, register_energy_model
from .counts import SYNAPTIC_KINDS, NetworkCounts


@register_energy_model
@dataclass
class Loihi(EnergyModel):
    """Intel Loihi's published per-operation energies (Davies et al. 2018)."""

    name: ClassVar[str] = "loihi"
    order: ClassVar[int] = 40
    paper_components: ClassVar[tuple[str, ...]] = ("synaptic", "neuron_update", "routing")

    synop_pj: float = setting(23.6, "energy of a synaptic spike operation (pJ)", non_negative=True)
    neuron_update_pj: float = setting(81.0, "energy of an active neuron update (pJ)",
                                      non_negative=True)  # fmt: skip
    spike_tile_pj: float = setting(1.7, "energy of a spike within a tile (pJ)", non_negative=True)
    spike_hop_pj: float = setting(3.5, "energy of a spike per tile hop (pJ)", non_negative=True)
    tile_hops: float = setting(1.0, "tile hops a spike travels", non_negative=True)
    e_compare_pj: float = setting(0.1, "energy of a readout comparison (pJ)", non_negative=True)

    def layer_energy(self, counts: NetworkCounts) -> list[EnergyTerm]:
        terms: list[EnergyTerm] = []
        route = self.spike_tile_pj + self.tile_hops * self.spike_hop_pj
        for layer in counts.layers:
            if layer.mode == "events":
                component = (
                    "synaptic" if layer.kind in SYNAPTIC_KINDS
                    else "residual" if layer.kind == "add" else "pooling"
                )  # fmt: skip
                terms.append(EnergyTerm(layer.name, component, layer.sops * self.synop_pj))
                continue
            ops = layer.executions * (layer.dense_macs + layer.dense_acs)
            if not counts.spiking:
                terms.append(EnergyTerm(layer.name, "synaptic", ops * self.synop_pj))
                if layer.kind in SYNAPTIC_KINDS:
                    out = layer.executions * layer.shape.out_elements
                    terms.append(
                        EnergyTerm(layer.name, "neuron_update", out * self.neuron_update_pj)
                    )
                    terms.append(EnergyTerm(layer.name, "routing", out * route))
                continue
            terms.append(EnergyTerm(layer.name, "analog_input", ops * self.synop_pj))
        for n in counts.neurons:
            updates = n.neurons * counts.timesteps
            terms.append(EnergyTerm(n.name, "neuron_update", updates * self.neuron_update_pj))
            terms.append(EnergyTerm(n.name, "routing", n.spikes * route))
            if n.signed:
                terms.append(EnergyTerm(n.name, "signed", updates * self.neuron_update_pj))
        if counts.outputs > 1:
            terms.append(EnergyTerm("readout", "readout", (counts.outputs - 1) * self.e_compare_pj))
        return terms
