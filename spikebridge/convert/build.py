"""Building the spiking network: activations become neurons with the chosen thresholds."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, fx, nn

from ..engine import graph as g
from ..engine.graph import MethodNotApplicable, set_submodule
from ..engine.neurons import SpikingMaxPool
from ..engine.substitution import neuron_for
from ..normalization.calibrate import activation_layers


def build_spiking_module(
    prepared: fx.GraphModule,
    scales: dict[str, Tensor],
    reset: str = "subtract",
    initial_potential: float = 0.0,
    maxpool: str = "spiking",
    method: str = "",
    negative_spikes: bool = False,
    max_pool_rule: str = "gate",
) -> fx.GraphModule:
    """A copy of the prepared ANN with every activation replaced by its neuron (and, when
    ``maxpool="spiking"``, max-pools by :class:`~spikebridge.engine.neurons.SpikingMaxPool` with
    ``max_pool_rule``: Rueckauer 2017's ``"gate"`` or the count-exact ``"running"``). Runs on
    [T*B, ...] inside SpikingNetwork."""
    snn = copy.deepcopy(prepared)
    for name, act in activation_layers(snn).items():
        if name not in scales:
            raise MethodNotApplicable(f"{name}: method {method!r} gave no threshold for this layer")
        set_submodule(
            snn,
            name,
            neuron_for(name, act, scales[name], reset, initial_potential, method, negative_spikes),
        )
    if maxpool == "spiking":
        for node in snn.graph.nodes:
            mod = g.module_of(snn, node)
            if isinstance(mod, g.MAX_POOLS):
                set_submodule(snn, node.target, SpikingMaxPool(copy.deepcopy(mod), max_pool_rule))
    snn.recompile()
    return snn.eval()


def threshold_summary(network: nn.Module) -> dict[str, torch.Tensor]:
    """Layer -> threshold tensor of every neuron in a built network (for inspection and tests)."""
    return {n: m.threshold for n, m in network.named_modules() if hasattr(m, "threshold")}
