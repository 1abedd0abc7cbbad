"""Evaluate a :class:`SpikingNetwork` over a data loader: accuracy after every step, spike counts."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .network import SpikingNetwork
from .progress import progress_bar


@dataclass
class Evaluation:
    """Totals of one evaluation over a test set.

    Attributes:
        correct: [T] correct predictions after each step t = 1..T.
        total: number of samples.
        spikes: layer -> [T] spikes per step summed over all samples.
        neurons: layer -> neurons per sample.
        seconds: wall time of the simulation.
    """

    correct: Tensor
    total: int
    spikes: dict[str, Tensor] = field(default_factory=dict)
    neurons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def accuracy(self) -> Tensor:
        """[T] accuracy after each step, fractions in [0, 1]."""
        return self.correct.double() / max(self.total, 1)

    def merge(self, other: Evaluation) -> Evaluation:
        spikes = {k: self.spikes.get(k, 0) + other.spikes[k] for k in other.spikes}
        return Evaluation(
            self.correct + other.correct,
            self.total + other.total,
            spikes,
            {**self.neurons, **other.neurons},
            self.seconds + other.seconds,
        )


def _static_batches(loader: Iterable) -> Iterable[tuple[Tensor, Tensor]]:
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("the data loader must yield (inputs, labels) pairs")
        yield batch[0], batch[1]


@torch.no_grad()
def evaluate_snn(
    network: SpikingNetwork,
    loader: Iterable,
    timesteps: int,
    device: torch.device | str = "cpu",
    record_spikes: bool = False,
    progress: bool = False,
    description: str = "simulate",
) -> Evaluation:
    """Simulate every batch of ``loader`` for ``timesteps`` steps; one simulation gives every t <= T.

    Inputs are static [B, ...] (encoded by the network's encoder) or, for event data, already
    in time [B, T, ...] (fed step by step; T must equal ``timesteps``).
    """
    if not isinstance(timesteps, int) or timesteps <= 0:
        raise ValueError(f"timesteps must be a positive integer, got {timesteps!r}")
    device = torch.device(device)
    network.to(device).eval()
    correct = torch.zeros(timesteps, dtype=torch.long)
    total = 0
    spikes: dict[str, Tensor] = {}
    neurons: dict[str, int] = {}
    start = time.perf_counter()
    for x, y in progress_bar(_static_batches(loader), progress, description):
        x, y = x.to(device), y.to(device)
        sim = network.simulate(x, timesteps, record_spikes=record_spikes)
        correct += sim.correct(y).cpu()
        total += y.numel()
        for name, counts in sim.spikes.items():
            spikes[name] = spikes.get(name, 0) + counts.cpu()
        neurons.update(sim.neurons)
    if total == 0:
        raise ValueError("the evaluation data loader yielded no samples")
    return Evaluation(correct, total, spikes, neurons, time.perf_counter() - start)


@torch.no_grad()
def evaluate_ann(
    model: nn.Module, loader: Iterable, device: torch.device | str = "cpu", progress: bool = False
) -> float:
    """Top-1 accuracy (fraction) of an ANN over ``loader``."""
    device = torch.device(device)
    model.to(device).eval()
    correct = total = 0
    for x, y in progress_bar(_static_batches(loader), progress, "ANN test"):
        correct += (model(x.to(device)).argmax(-1) == y.to(device)).sum().item()
        total += y.numel()
    if total == 0:
        raise ValueError("the evaluation data loader yielded no samples")
    return correct / total
