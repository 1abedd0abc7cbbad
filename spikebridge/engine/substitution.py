"""Which spiking neuron stands in for an ANN activation (shared by the conversion and Spike-Norm)."""

from __future__ import annotations

from torch import Tensor, nn

from ..activations import QCFS
from .graph import MethodNotApplicable
from .neurons import IFNeuron, SignedIFNeuron, SpikingNeuron, check_levels


def neuron_for(
    layer: str,
    activation: nn.Module,
    scale: Tensor,
    reset: str = "subtract",
    initial_potential: float = 0.0,
    method: str = "",
    negative_spikes: bool = False,
    levels: int = 1,
) -> SpikingNeuron:
    """The neuron that stands in for ``activation`` with threshold ``scale`` (0-d or [C]).

    ``negative_spikes`` gives ReLU-like activations signed IF neurons (Wang 2022, Hu 2023; see
    :class:`~spikebridge.engine.neurons.IFNeuron`); LeakyReLU always gets Kim 2020's signed neuron.
    ``levels`` = K > 1 gives graded neurons whose unit is ``scale`` / K, so a step still carries
    at most ``scale`` (the layer's largest output per step) in K + 1 levels rather than 2.
    """
    check_levels(levels, layer)
    scale = scale.detach().float()
    if isinstance(activation, nn.LeakyReLU):
        if reset != "subtract":
            raise MethodNotApplicable(
                f"{layer}: signed neurons for LeakyReLU reset by subtraction (Kim 2020); "
                f"reset={reset!r} does not apply to method {method!r}: use reset='subtract'"
            )
        return SignedIFNeuron(scale / levels, activation.negative_slope, initial_potential, levels)
    if isinstance(activation, (nn.ReLU6, nn.Hardtanh)):
        scale = scale.clamp(max=float(activation.max_val))
    elif isinstance(activation, QCFS):
        scale = scale.clamp(max=float(activation.lambda_.detach()))
    if negative_spikes and reset != "subtract":
        raise MethodNotApplicable(
            f"{layer}: negative spikes take back a subtracted threshold; reset={reset!r} does not "
            f"apply with method {method!r} and negative_spikes=True: use reset='subtract'"
        )
    return IFNeuron(scale / levels, reset, initial_potential, negative_spikes, levels)
