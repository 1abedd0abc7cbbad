"""Building the spiking network: activations become neurons with the chosen thresholds."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, fx, nn

from ..activations import QCFS
from ..neurons import IFNeuron, SignedIFNeuron, SpikingMaxPool, SpikingNeuron
from ..normalization.calibrate import activation_layers
from . import graph as g
from .prepare import _set_submodule


class MethodNotApplicable(g.ConversionError):
    """A normalisation method or neuron type does not apply to a layer; the message names both."""


def neuron_for(
    layer: str,
    activation: nn.Module,
    scale: Tensor,
    reset: str = "subtract",
    initial_potential: float = 0.0,
    method: str = "",
    negative_spikes: bool = False,
) -> SpikingNeuron:
    """The neuron that stands in for ``activation`` with threshold ``scale`` (0-d or [C]).

    ``negative_spikes`` gives ReLU-like activations signed IF neurons (Wang 2022, Hu 2023; see
    :class:`~spikebridge.neurons.IFNeuron`); LeakyReLU always gets Kim 2020's signed neuron.
    """
    scale = scale.detach().float()
    if isinstance(activation, nn.LeakyReLU):
        if reset != "subtract":
            raise MethodNotApplicable(
                f"{layer}: signed neurons for LeakyReLU reset by subtraction (Kim 2020); "
                f"reset={reset!r} does not apply to method {method!r}: use reset='subtract'"
            )
        return SignedIFNeuron(scale, activation.negative_slope, initial_potential)
    if isinstance(activation, (nn.ReLU6, nn.Hardtanh)):
        scale = scale.clamp(max=float(activation.max_val))
    elif isinstance(activation, QCFS):
        scale = scale.clamp(max=float(activation.lambda_.detach()))
    if negative_spikes and reset != "subtract":
        raise MethodNotApplicable(
            f"{layer}: negative spikes take back a subtracted threshold; reset={reset!r} does not "
            f"apply with method {method!r} and negative_spikes=True: use reset='subtract'"
        )
    return IFNeuron(scale, reset, initial_potential, negative_spikes)


def build_snn(
    prepared: fx.GraphModule,
    scales: dict[str, Tensor],
    reset: str = "subtract",
    initial_potential: float = 0.0,
    maxpool: str = "spiking",
    method: str = "",
    negative_spikes: bool = False,
) -> fx.GraphModule:
    """A copy of the prepared ANN with every activation replaced by its neuron (and max-pools by
    spiking max-pool gates when ``maxpool="spiking"``). Runs on [T*B, ...] inside SpikingNetwork."""
    snn = copy.deepcopy(prepared)
    for name, act in activation_layers(snn).items():
        if name not in scales:
            raise MethodNotApplicable(f"{name}: method {method!r} gave no threshold for this layer")
        _set_submodule(
            snn,
            name,
            neuron_for(name, act, scales[name], reset, initial_potential, method, negative_spikes),
        )
    if maxpool == "spiking":
        for node in snn.graph.nodes:
            mod = g.module_of(snn, node)
            if isinstance(mod, g.MAX_POOLS):
                _set_submodule(snn, node.target, SpikingMaxPool(copy.deepcopy(mod)))
    snn.recompile()
    return snn.eval()


def threshold_summary(network: nn.Module) -> dict[str, torch.Tensor]:
    """Layer -> threshold tensor of every neuron in a built network (for inspection and tests)."""
    return {n: m.threshold for n, m in network.named_modules() if hasattr(m, "threshold")}
