"""Probabilistic leaky integrate-and-fire neurons with k-winner-take-all (Tavanaei & Maida 2017).

Both learned layers of the unsupervised route use the same neuron: a leaky membrane, a firing
threshold and lateral inhibition that lets at most ``winners`` neurons of a competition group fire
per step. The group is the channel dimension at every position: the C feature maps at one (h, w)
of a convolutional layer ([T, B, C, H, W]) or all N neurons of a dense layer ([T, B, N]).

Per step t (docs/stdp.md, eq. 1-3):

    u[t] = leak * u[t-1] + I[t]
    eligible = u[t] >= threshold
    winners = the k eligible neurons with the largest u[t] / temperature + g
    spike = 1 for winners, 0 otherwise
    u[t] = 0 for the whole group if any of it fired (lateral inhibition), else u[t]

with g = 0 (deterministic, inference) or g ~ Gumbel(0, 1) i.i.d. (``stochastic=True``, learning):
the Gumbel-top-k trick draws k winners without replacement with probabilities
softmax(u / temperature) over the eligible neurons, which is the probabilistic WTA of the paper
(after Nessler et al. 2013).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .neurons import SpikingNeuron


class WTALIFNeuron(SpikingNeuron):
    """Leaky integrate-and-fire neuron with threshold and probabilistic k-winner-take-all.

    Input and output [T*B, C, ...] folded (or [T, B, C, ...] via :meth:`forward_sequence`);
    spikes are 0/1. Time lives only here, as for every :class:`SpikingNeuron`.

    Args:
        threshold: firing threshold theta (> 0) on the membrane potential.
        leak: membrane decay per step, in (0, 1] (1 is a non-leaky IF neuron).
        winners: k, the most neurons of a group (the channels at one position) that fire per step.
        temperature: softmax temperature of the stochastic winner draw (> 0).
        stochastic: draw winners from softmax(u / temperature) (learning) instead of taking the
            k largest potentials (inference).
        seed: seed of the winner draw (``stochastic`` only), restarted by :meth:`reset_state` so
            every simulation draws the same winners for the same input; None draws a fresh seed
            from torch's global RNG.
    """

    def __init__(
        self,
        threshold: float = 1.0,
        leak: float = 0.9,
        winners: int = 1,
        temperature: float = 1.0,
        stochastic: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if not (threshold > 0 and threshold < float("inf")):
            raise ValueError(f"WTALIFNeuron: threshold must be finite and > 0, got {threshold}")
        if not 0 < leak <= 1:
            raise ValueError(f"WTALIFNeuron: leak must be in (0, 1], got {leak}")
        if isinstance(winners, bool) or not isinstance(winners, int) or winners < 1:
            raise ValueError(f"WTALIFNeuron: winners must be a positive integer, got {winners!r}")
        if not temperature > 0:
            raise ValueError(f"WTALIFNeuron: temperature must be > 0, got {temperature}")
        self.threshold = float(threshold)
        self.leak = float(leak)
        self.winners = winners
        self.temperature = float(temperature)
        self.stochastic = bool(stochastic)
        self.seed = seed
        self._generator: torch.Generator | None = None

    def extra_repr(self) -> str:
        mode = ", stochastic" if self.stochastic else ""
        return (
            f"threshold={self.threshold:.4g}, leak={self.leak}, winners={self.winners}, "
            f"temperature={self.temperature}{mode}"
        )

    def reset_state(self) -> None:
        """Forget the potential and restart the seeded winner draw (a new sample batch)."""
        super().reset_state()
        if self.seed is not None:
            self._generator = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_generator"] = None  # a generator does not pickle; re-seeded on first use
        return state

    def _gumbel(self, like: Tensor) -> Tensor:
        if self._generator is None or self._generator.device != like.device:
            self._generator = torch.Generator(device=like.device)
            if self.seed is None:
                self._generator.manual_seed(int(torch.randint(2**62, ()).item()))
            else:
                self._generator.manual_seed(int(self.seed))
        u = torch.rand(like.shape, generator=self._generator, device=like.device, dtype=like.dtype)
        return -torch.log(-torch.log(u.clamp_(1e-20, 1.0 - 1e-7)))

    def forward_sequence(self, x_seq: Tensor) -> Tensor:
        """x_seq: [T, B, C, ...] input currents -> [T, B, C, ...] spikes in {0, 1}."""
        if x_seq.dim() < 3:
            raise ValueError(
                f"WTALIFNeuron expects [T, B, C, ...] currents (C competing neurons), got shape "
                f"{tuple(x_seq.shape)}"
            )
        # the competition runs over the last, contiguous dimension: [T, B, ..., C]
        x_last = x_seq.movedim(2, -1)
        if self.v is None:
            self.v = torch.zeros(x_last.shape[1:], dtype=x_seq.dtype, device=x_seq.device)
        elif self.v.shape != x_last.shape[1:]:
            raise ValueError(
                f"WTALIFNeuron: the stored potential has shape {tuple(self.v.shape)} but the "
                f"input step has shape {tuple(x_last.shape[1:])} (channels last); reset the "
                "state (SpikingNetwork.reset()) before a new batch"
            )
        v = self.v
        k = min(self.winners, x_last.shape[-1])
        out = torch.empty(x_last.shape, dtype=x_seq.dtype, device=x_seq.device)
        for t in range(x_last.shape[0]):
            v.mul_(self.leak).add_(x_last[t])
            score = v / self.temperature if self.temperature != 1.0 else v.clone()
            if self.stochastic:
                score.add_(self._gumbel(score))
            score.masked_fill_(v < self.threshold, float("-inf"))
            if k == 1:
                top, idx = score.max(-1, keepdim=True)
            else:
                top, idx = score.topk(k, dim=-1)
            fire = out[t]
            fire.zero_().scatter_(-1, idx, torch.isfinite(top).to(v.dtype))
            v.mul_(1.0 - fire.amax(-1, keepdim=True))  # inhibition resets a group that fired
        return out.movedim(-1, 2)
