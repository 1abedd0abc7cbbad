"""SNN-aware bias correction: the simulated network's own error, layer by layer (issue 11).

The twin-based search assumes every neuron ends *settled* (no spike owed at step T). Where late
input owes a neuron more than one spike per remaining step (a burst it cannot emit), its count
falls short of the twin's level, and the layers after it see a shifted input; in deep and
residual nets this burst error is large. Following the light calibration pipeline of Li et al.
2021 ("A free lunch from ANN: towards efficient, accurate spiking neural networks calibration"),
this pass goes through the neuron layers in execution order, simulates the actual network for
T steps on calibration images (the layers before already corrected) and removes, per channel,
the mean difference between the neuron layer's summed input / T and the float ANN's input of
that activation (or the readout's mean against the ANN's logits): from the bias of the
conv/linear layer that produces it, or, where no single layer does (a concatenation), from the
neurons' initial potential (u[0] shifts the count as T times a bias does).

Shapes: calibration images [N, ...]; a neuron layer's summed input [N, C, ...] or [N, F].
"""

from __future__ import annotations

import torch
from torch import Tensor, fx, nn

from ...engine.network import SpikingNetwork
from ...engine.neurons import IFNeuron
from .graph import OUTPUT, CalibrationGraph, FloatReference
from .stats import channel_mean


class _InputRecorder:
    """Sums, over the steps of a simulation, what one neuron layer receives ([B, C, ...])."""

    def __init__(self, neuron: nn.Module) -> None:
        self.total: Tensor | None = None
        self.handle = neuron.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        x = args[0]
        if kwargs.get("static", False):  # one input, the same at each of the chunk's steps
            step_sum = x * module.steps
        else:
            step_sum = module.unfold(x).sum(0)
        self.total = step_sum if self.total is None else self.total + step_sum

    def remove(self) -> None:
        self.handle.remove()


@torch.no_grad()
def mean_inputs(
    network: SpikingNetwork, x: Tensor, timesteps: int, consumer: str, batch_size: int
) -> Tensor:
    """The mean per step of what ``consumer`` (a neuron layer, or :data:`OUTPUT`: the readout)
    receives over a T-step simulation of each image of x: [N, C, ...] (or [N, K])."""
    parts = []
    for start in range(0, x.shape[0], batch_size):
        batch = x[start : start + batch_size]
        if consumer == OUTPUT:
            parts.append(network.simulate(batch, timesteps).readout[-1])
            continue
        recorder = _InputRecorder(network.module.get_submodule(consumer))
        try:
            network.simulate(batch, timesteps)
        finally:
            recorder.remove()
        assert recorder.total is not None
        parts.append(recorder.total / timesteps)
    return torch.cat(parts)


@torch.no_grad()
def correct_snn_biases(
    network: SpikingNetwork,
    graph: CalibrationGraph,
    reference: FloatReference,
    x: Tensor,
    timesteps: int,
    batch_size: int,
) -> dict[str, str]:
    """Correct ``network`` in place, consumer by consumer in execution order: the mean shift per
    channel of its simulated input against the float ANN's goes out of the producing layer's
    bias (or, for a neuron layer with no single producer, into its initial potential).

    ``graph`` is built on the prepared ANN the network came from (same layer names);
    ``reference`` holds the float ANN's inputs on the same images x [N, ...].
    Returns consumer -> the layer corrected (a bias, or ``"<name>.initial_potential"``).
    """
    module = network.module
    corrected: dict[str, str] = {}
    for consumer in [*graph.names, OUTPUT]:
        producer = graph.producer(consumer)
        target = reference.get([consumer])[consumer]
        if producer is None and consumer == OUTPUT:
            continue
        simulated = mean_inputs(network, x, timesteps, consumer, batch_size)
        shift = channel_mean(simulated - target)
        if producer is not None:
            layer = module.get_submodule(producer)
            if layer.bias is not None and layer.bias.shape == shift.shape:
                layer.bias -= shift.to(layer.bias)
                corrected[consumer] = producer
                continue
        neuron = module.get_submodule(consumer)
        if isinstance(neuron, IFNeuron) and _shift_potential(neuron, shift, timesteps, simulated):
            corrected[consumer] = f"{consumer}.initial_potential"
    return corrected


def _shift_potential(neuron: IFNeuron, shift: Tensor, timesteps: int, like: Tensor) -> bool:
    """u[0] -= T * shift (per channel when the shift is): the same change of the count."""
    theta = neuron.threshold
    if shift.numel() > 1 and (like.dim() < 2 or like.shape[1] != shift.numel()):
        return False
    phi = torch.as_tensor(neuron.initial_potential, dtype=torch.float32, device=theta.device)
    delta = timesteps * shift.to(theta) / theta
    if delta.numel() == 1:
        delta = delta.reshape(())
    new = phi - delta if phi.dim() or delta.dim() == 0 else phi.expand_as(delta) - delta
    neuron.set_initial_potential(new if new.dim() else float(new))
    return True


def copy_biases(source: nn.Module, target: fx.GraphModule, layers: list[str]) -> None:
    """Copy the named layers' biases from a corrected network's module into ``target``."""
    with torch.no_grad():
        for name in layers:
            bias = source.get_submodule(name).bias
            destination = target.get_submodule(name)
            if destination.bias is None:
                destination.bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
            else:
                destination.bias.copy_(bias)
