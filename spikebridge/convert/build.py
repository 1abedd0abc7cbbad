"""Building the spiking network: activations become neurons with the chosen thresholds."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, fx, nn

from ..engine import graph as g
from ..engine.encoding import make_encoder
from ..engine.graph import MethodNotApplicable, set_submodule
from ..engine.network import SpikingNetwork
from ..engine.neurons import IFNeuron, SpikingMaxPool
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
    spike_levels: int = 1,
) -> fx.GraphModule:
    """A copy of the prepared ANN with every activation replaced by its neuron (graded, with
    units of threshold / ``spike_levels``, when ``spike_levels`` > 1; and, when
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
            neuron_for(
                name,
                act,
                scales[name],
                reset,
                initial_potential,
                method,
                negative_spikes,
                spike_levels,
            ),  # fmt: skip
        )
    if maxpool == "spiking":
        for node in snn.graph.nodes:
            mod = g.module_of(snn, node)
            if isinstance(mod, g.MAX_POOLS):
                set_submodule(snn, node.target, SpikingMaxPool(copy.deepcopy(mod), max_pool_rule))
    snn.recompile()
    return snn.eval()


def spiking_network(
    prepared: fx.GraphModule,
    thresholds: dict[str, Tensor],
    *,
    reset: str = "subtract",
    initial_potential: float = 0.0,
    maxpool: str = "spiking",
    method: str = "",
    negative_spikes: bool = False,
    max_pool_rule: str = "gate",
    potentials: dict[str, Tensor] | None = None,
    encoding: str = "analog",
    seed: int = 0,
    chunk_size: int | None = None,
    spike_levels: int = 1,
) -> SpikingNetwork:
    """The one way a converted network is put together: :func:`build_spiking_module`, the
    per-layer initial potentials ``potentials`` (u[0] / theta, 0-d or [C]; replacing
    ``initial_potential`` for the named layers) and the input encoder (``encoding``, seeded).
    ``spike_levels`` = K > 1: graded neurons carrying up to K units of threshold / K per step
    (:class:`~spikebridge.engine.neurons.IFNeuron`)."""
    module = build_spiking_module(
        prepared, thresholds, reset, initial_potential, maxpool, method, negative_spikes,
        max_pool_rule, spike_levels,
    )  # fmt: skip
    if potentials:
        set_initial_potentials(module, potentials)
    return SpikingNetwork(module, make_encoder(encoding, seed), chunk_size)


def set_initial_potentials(module: nn.Module, potentials: dict[str, Tensor]) -> None:
    """Give the named IF neurons of a built module their u[0] / theta (0-d or [C]; a [C] tensor
    of equal values is stored as one float, as a layer-wise potential always was)."""
    for name, phi in potentials.items():
        neuron = module.get_submodule(name)
        if not isinstance(neuron, IFNeuron):
            raise TypeError(f"{name}: not an IF neuron ({type(neuron).__name__})")
        phi = torch.as_tensor(phi).detach().float().cpu()
        uniform = phi.numel() > 0 and bool((phi == phi.reshape(-1)[0]).all())
        neuron.set_initial_potential(float(phi.reshape(-1)[0]) if uniform else phi)


def threshold_summary(network: nn.Module) -> dict[str, torch.Tensor]:
    """Layer -> threshold tensor of every neuron in a built network (for inspection and tests)."""
    return {n: m.threshold for n, m in network.named_modules() if hasattr(m, "threshold")}
