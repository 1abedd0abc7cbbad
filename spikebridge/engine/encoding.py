"""Input encodings (SPEC 1.6): analog constant current, Poisson rate coding, event frames.

An encoder turns a batch of inputs into ``steps`` timesteps [T, B, ...] (the :class:`Encoder`
protocol); successive calls within one simulation continue where the last one stopped, and
``reset()`` starts over.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Encoder(Protocol):
    """What :class:`~spikebridge.engine.network.SpikingNetwork` needs from an encoder.

    Attributes:
        static: True when the encoded input is the same at every step (analog input): the
            network then runs the layers before the first neuron once per simulation.
        name: the encoding's name (``analog``, ``poisson``, ``events``).
    """

    static: bool
    name: str

    def __call__(self, x: Tensor, steps: int) -> Tensor:
        """The next ``steps`` steps of input batch x: [steps, B, ...]."""
        ...

    def reset(self) -> None:
        """Start a new simulation (called by the network before each one)."""
        ...


class AnalogEncoder:
    """Constant current: the first layer receives the real-valued input at every step.

    ``static`` tells :class:`~spikebridge.engine.network.SpikingNetwork` that the input does not change
    over time, so the layers before the first neuron can run once per chunk.
    """

    static = True
    name = "analog"

    def reset(self) -> None:
        """Nothing to reset: the input is the same at every step."""

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


class EventEncoder:
    """Feeds event data that is already binned in time: x [B, T_data, ...] -> [steps, B, ...].

    Successive calls within one simulation return successive frames; :meth:`reset` (called by
    :meth:`SpikingNetwork.simulate` and :meth:`SpikingNetwork.encode`) goes back to frame 0.
    """

    static = False
    name = "events"

    def __init__(self) -> None:
        self._cursor = 0

    def reset(self) -> None:
        """Go back to frame 0."""
        self._cursor = 0

    def __call__(self, x: Tensor, steps: int) -> Tensor:
        if x.dim() < 3:
            raise ValueError(
                f"event input must be [B, T, ...] frames, got shape {tuple(x.shape)}; static images "
                "need the analog or poisson encoder"
            )
        end = self._cursor + steps
        if end > x.shape[1]:
            raise ValueError(
                f"the event input has {x.shape[1]} time bins but step {end} was asked for; bin the "
                "events into at least as many frames as simulation timesteps"
            )
        frames = x[:, self._cursor : end].transpose(0, 1)
        self._cursor = end
        return frames

    def __repr__(self) -> str:
        return "EventEncoder()"


ENCODINGS: tuple[str, ...] = ("analog", "poisson", "events")


def make_encoder(name: str, seed: int | None = None) -> Encoder:
    """An encoder by name: ``analog``, ``poisson`` (seeded by ``seed``) or ``events``."""
    if name == "analog":
        return AnalogEncoder()
    if name == "poisson":
        return PoissonEncoder(seed=seed)
    if name == "events":
        return EventEncoder()
    raise ValueError(f"unknown encoding {name!r}: choose one of {', '.join(ENCODINGS)}")
