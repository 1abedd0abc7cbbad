"""Energy per inference under several published energy models (docs/energy.md).

One module per model, each registered in :data:`ENERGY_MODELS`: ``ops`` (Horowitz 2014
arithmetic, the toolkit's original count), ``lemaire`` (Lemaire 2022: operations, addressing
and SRAM traffic; cross-checked against SpikingJelly), ``reuse`` (data reuse from local buffers
for the ANN and the SNN, after Dampfhoffer 2023) and ``loihi`` (Davies 2018's per-operation
energies). :func:`estimate_energy` prices one network; :mod:`.fair_ann` builds the quantised
ANN a T-step SNN should be compared with (Yan 2024) and :mod:`.breakeven` the firing rate below
which the SNN wins.
"""

from __future__ import annotations

from .base import (
    ENERGY_MODELS,
    EXTRA_COMPONENTS,
    EnergyModel,
    EnergyTerm,
    energy_model_names,
    get_energy_model,
    register_energy_model,
    sram_pj_per_byte,
)
from .breakeven import BreakEven, break_even
from .counts import LayerCounts, NetworkCounts, NeuronCounts, ann_counts, snn_counts
from .estimate import EnergyReport, count_energy_inputs, estimate_energy, price
from .fair_ann import activation_bits, network_twin, quantised_ann

ENERGY_MODELS.discover(__name__, __path__)  # every module here; each model registers itself

__all__ = [
    "BreakEven",
    "activation_bits",
    "break_even",
    "network_twin",
    "quantised_ann",
    "ENERGY_MODELS",
    "EXTRA_COMPONENTS",
    "EnergyModel",
    "EnergyReport",
    "EnergyTerm",
    "LayerCounts",
    "NetworkCounts",
    "NeuronCounts",
    "ann_counts",
    "count_energy_inputs",
    "energy_model_names",
    "estimate_energy",
    "get_energy_model",
    "price",
    "register_energy_model",
    "snn_counts",
    "sram_pj_per_byte",
]
