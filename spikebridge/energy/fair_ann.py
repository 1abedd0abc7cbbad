"""The fair ANN of a T-step SNN: activations quantised to ceil(log2(T+1)) bits (Yan et al. 2024).

Source: Z. Yan, Z. Bai, W.-F. Wong, "Reconsidering the energy efficiency of spiking neural
networks", arXiv:2409.08290, 2024: a T-step spiking neuron conveys at most T+1 values per
inference, so the ANN it should be compared with carries activations of ceil(log2(T+1)) bits,
computed with integer operations of that width, not a 32-bit float ANN.

:func:`network_twin` is the quantised ANN of a converted network: every IF neuron becomes the
T-level quantiser q_T(a) = theta/T clamp(floor(T a/theta + phi), 0, T) with the neuron's own
threshold theta and initial potential phi (:class:`~spikebridge.convert.quantised_twin.TwinQuantiser`),
on the network's own weights. For the method ``calibrated`` that is exactly the twin it was
calibrated on (:mod:`spikebridge.convert.quantised_twin`); T+1 levels fit in ceil(log2(T+1))
bits. :func:`quantised_ann` quantises a float ANN the same way with per-layer percentile
thresholds (the row a comparison puts beside every T).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable

import torch
from torch import Tensor, fx, nn

from ..engine.graph import set_submodule
from ..engine.network import SpikingNetwork
from ..engine.neurons import IFNeuron, SpikingMaxPool, TimeBroadcast
from ..settings import DEFAULT_PERCENTILE


def activation_bits(timesteps: int) -> int:
    """ceil(log2(T + 1)): the bits of the T+1 values a T-step spike count takes."""
    if not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps must be a positive integer, got {timesteps!r}")
    return max(1, math.ceil(math.log2(timesteps + 1)))


def network_twin(
    network: SpikingNetwork, timesteps: int, initial_potential: float | None = None
) -> fx.GraphModule:
    """The T-level quantised ANN of a converted network ([B, ...] -> [B, K] logits); of a
    network of graded neurons (K units per step), the K*T-level one.

    Args:
        network: a converted :class:`SpikingNetwork` (IF neurons; an fx graph module).
        timesteps: T (the quantiser has T levels above zero).
        initial_potential: phi of every quantiser (None: each neuron's own u[0]/theta).

    Raises ValueError naming the layer whose neuron is not an IF neuron (a LIF network has no
    quantised twin).
    """
    from ..convert.quantised_twin import TwinQuantiser

    module = copy.deepcopy(network.module)
    if not isinstance(module, fx.GraphModule):
        raise ValueError(
            f"network_twin needs a converted network (an fx graph), got {type(module).__name__}"
        )
    for name, m in list(module.named_modules()):
        if isinstance(m, IFNeuron):
            phi = m.initial_potential if initial_potential is None else initial_potential
            k = m.levels  # graded spikes: K units of theta per step, K*T levels of K*theta
            theta = m.threshold.detach().clone() * k
            q = TwinQuantiser(nn.ReLU(), theta, timesteps * k, True, phi)
            set_submodule(module, name, q)
        elif isinstance(m, SpikingMaxPool):
            set_submodule(module, name, m.pool)
        elif isinstance(m, TimeBroadcast):
            set_submodule(module, name, nn.Identity())
        elif hasattr(m, "forward_sequence") and not isinstance(m, TwinQuantiser):
            raise ValueError(
                f"layer {name!r} ({type(m).__name__}) is not an IF neuron: only converted "
                "networks have a quantised twin"
            )
    module.recompile()
    return module.eval()


def quantised_ann(
    ann: nn.Module,
    calibration: Iterable | Tensor,
    timesteps: int,
    percentile: float = DEFAULT_PERCENTILE,
    device: torch.device | str = "cpu",
) -> fx.GraphModule:
    """``ann`` with every activation quantised to T levels (ceil(log2(T+1)) bits), clipped at
    its layer's ``percentile`` of activations on ``calibration`` and rounded to nearest."""
    from ..convert import convert_model
    from ..convert.methods.percentile import PercentileSettings

    settings = PercentileSettings(percentile=percentile)
    snn = convert_model(ann, calibration, "percentile", settings=settings, device=device)
    return network_twin(snn, timesteps, initial_potential=0.5)


@torch.no_grad()
def accuracy(model: nn.Module, loader: Iterable) -> float:
    """Fraction of ``loader``'s (x, y) batches that ``model`` classifies right."""
    correct = total = 0
    model.eval()
    for x, y in loader:
        correct += int((model(x).argmax(-1) == y).sum())
        total += int(y.numel())
    return correct / max(total, 1)


__all__ = ["accuracy", "activation_bits", "network_twin", "quantised_ann"]
