"""Break-even activity: the firing rate below which a spiking network uses less energy than an
ANN, per energy model (Dampfhoffer et al. 2023 state it as spikes per synapse per inference).

Every model is affine in the activity of a network: with every event (input events, synaptic
operations, spikes) scaled by a, E(a) = E(0) + a (E(1) - E(0)), E(1) being the measured energy and
E(0) the static part (neuron updates, membrane potentials, biases, dense analog layers). The
break-even activity is a* = (E_ANN - E(0)) / (E(1) - E(0)), read as spikes per neuron per step
(a* times the measured firing rate) and as synaptic events per synapse per inference (a* times
SOPs / synapses of the event-driven layers). 0 when even a silent network costs more than the
ANN; infinite when the network's energy does not depend on its activity and is below the ANN's.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import EnergyModel
from .counts import NetworkCounts
from .estimate import price


@dataclass(frozen=True)
class BreakEven:
    """``activity``: a*, the factor on the measured activity; ``rate``: spikes per neuron per
    step; ``per_synapse``: synaptic events per synapse per inference; ``static_pj``: E(0)."""

    activity: float
    rate: float
    per_synapse: float
    static_pj: float


def break_even(model: EnergyModel | str, counts: NetworkCounts, ann_pj: float) -> BreakEven:
    """Break-even activity of a spiking network (``counts``) against an ANN of ``ann_pj``."""
    static = price(model, counts.scaled(0.0)).total_pj
    measured = price(model, counts).total_pj
    slope = measured - static
    if static >= ann_pj:
        activity = 0.0
    elif slope <= 0:
        activity = float("inf")
    else:
        activity = (ann_pj - static) / slope
    rate = counts.firing_rate()
    synapses = counts.synapses
    per_synapse = counts.sops / synapses if synapses else float("nan")
    return BreakEven(activity, activity * rate, activity * per_synapse, static)


__all__ = ["BreakEven", "break_even"]
