"""Input encodings (SPEC 1.6): analog constant current and Poisson rate coding.

An encoder turns a batch of inputs [B, ...] into ``steps`` timesteps [T, B, ...].
"""

from __future__ import annotations

import torch
from torch import Tensor


class AnalogEncoder:
    """Constant current: the first layer receives the real-valued input at every step.

    ``static`` tells :class:`~spikebridge.network.SpikingNetwork` that the input does not change
    over time, so the layers before the first neuron can run once per chunk.
    """

    static = True
    name = "analog"

    def __call__(self, x: Tensor, steps: int) -> Tensor:
        """x: [B, ...] -> [steps, B, ...] (a broadcast view, no copy)."""
        return x.unsqueeze(0).expand(steps, *x.shape)

    def __repr__(self) -> str:
        return "AnalogEncoder()"


class PoissonEncoder:
    """Poisson rate coding: pixel x spikes with probability |x| * max_rate * dt per step.

    Inputs must lie in [-1, 1] (images scaled to [0, 1] are the usual case); a negative value
    emits negative spikes. ``seed`` makes the spike trains reproducible.
    """

    static = False
    name = "poisson"

    def __init__(self, max_rate: float = 1.0, dt: float = 1.0, seed: int | None = None) -> None:
        if not 0 < max_rate * dt <= 1:
            raise ValueError(
                f"PoissonEncoder: max_rate * dt is a spike probability per step and must be in "
                f"(0, 1], got {max_rate * dt}"
            )
        self.probability = max_rate * dt
        self.seed = seed
        self._generator: torch.Generator | None = None

    def reset(self) -> None:
        """Restart the random stream (called by the network at the start of a simulation)."""
        self._generator = None

    def __call__(self, x: Tensor, steps: int) -> Tensor:
        """x: [B, ...] in [-1, 1] -> [steps, B, ...] spikes in {-1, 0, 1}."""
        peak = x.abs().max().item() if x.numel() else 0.0
        if peak > 1 + 1e-6:
            raise ValueError(
                f"PoissonEncoder: inputs must lie in [-1, 1] to be rate-coded, found |x| up to "
                f"{peak:.3g}; scale the data to [0, 1] or use the analog encoder"
            )
        if self._generator is None or self._generator.device != x.device:
            self._generator = torch.Generator(device=x.device)
            if self.seed is None:
                self._generator.seed()
            else:
                self._generator.manual_seed(self.seed)
        noise = torch.rand(
            (steps, *x.shape), generator=self._generator, device=x.device, dtype=x.dtype
        )
        return (noise < x.abs() * self.probability).to(x.dtype) * torch.sign(x)

    def __repr__(self) -> str:
        return f"PoissonEncoder(probability={self.probability}, seed={self.seed})"


def make_encoder(name: str, seed: int | None = None) -> AnalogEncoder | PoissonEncoder:
    """An encoder by name: ``analog`` or ``poisson``."""
    if name == "analog":
        return AnalogEncoder()
    if name == "poisson":
        return PoissonEncoder(seed=seed)
    raise ValueError(f"unknown encoding {name!r}: choose 'analog' or 'poisson'")
