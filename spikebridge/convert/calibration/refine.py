"""Channel refinement against the next layer's error (issue 11, direction 3).

The per-channel search minimises each channel's own quantisation error, which equals its share
of the next layer's error only when the channels' errors are uncorrelated. This pass refines
(theta_c, phi_c) against the next layer's actual error: the map from an activation's output y
to the inputs of the layers it feeds (its *consumers*) is affine (no activation lies between),
so with the consumers' error R = J y - target, changing channel c by delta_c changes the error
by 2 <J^T R, delta_c> + ||J_c delta_c||^2. The first term comes from one backward pass
(G = J^T R for every channel at once); the second is estimated as h * ||delta_c||^2 with h the
diagonal of J^T J (Hutchinson's estimator, random signs, a few probes; exact for a linear
consumer, an approximation where a convolution's windows overlap). Each pass picks, per channel,
the candidate of the grid (a factor of theta_c times an initial potential) with the best
predicted change, applies them together, and keeps the result only if the measured error fell
(else the half with the largest predicted gains, once more). The error is the one bias
correction will leave (per-channel means removed) where a bias corrects the consumer.

Shapes: activation inputs/outputs [N, C, ...] or [N, F]; theta and phi [C].
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, fx

from ..quantised_twin import TwinQuantiser
from .graph import PartialGraph
from .stats import channel_columns, channel_mean, relative_error

FACTORS: tuple[float, ...] = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4)


def _centre(diff: Tensor, mean: Tensor | None) -> Tensor:
    if mean is None:
        return diff
    shape = [1] * diff.dim()
    if diff.dim() > 1:
        shape[1] = diff.shape[1]
    return diff - mean.reshape(shape)


class _Objective:
    """The consumers' relative error as a function of the activation's output (differentiable)."""

    def __init__(
        self,
        part: PartialGraph,
        kept: list[dict[fx.Node, Tensor]],
        quantiser: TwinQuantiser,
        target: dict[str, Tensor],
        centred: list[str],
    ) -> None:
        self.part, self.kept, self.quantiser = part, kept, quantiser
        self.target, self.centred = target, set(centred)
        self.scale = {
            c: 1.0 / float(t.var().clamp(min=1e-12)) / len(target) for c, t in target.items()
        }

    def means(self) -> dict[str, Tensor | None]:
        out = self.part.suffix(self.kept)
        return {
            c: channel_mean(out[c] - self.target[c]) if c in self.centred else None
            for c in self.target
        }

    def error(self) -> float:
        return relative_error(self.part.suffix(self.kept), self.target, self.centred)

    def _run_with_output(self, values, override: Tensor | None = None):
        """The suffix on one batch, with the activation's output made a leaf (or replaced)."""
        captured: list[Tensor] = []

        def hook(_module, _args, output):
            leaf = (output if override is None else override).detach().requires_grad_(True)
            captured.append(leaf)
            return leaf

        handle = self.quantiser.register_forward_hook(hook)
        try:
            out = self.part.run(values)
        finally:
            handle.remove()
        return out, captured[0]

    @torch.enable_grad()
    def gradient(self, means: dict[str, Tensor | None]) -> tuple[Tensor, Tensor]:
        """(y, G): the activation's output [N, C, ...] and d error / d y (= 2 J^T R, scaled)."""
        ys, grads, start = [], [], 0
        for values in self.kept:
            out, y = self._run_with_output(values)
            count = y.shape[0]
            loss = y.new_zeros(())
            for c, goal in self.target.items():
                diff = _centre(out[c] - goal[start : start + count], means[c])
                loss = loss + diff.pow(2).sum() * (self.scale[c] / goal.numel())
            (grad,) = torch.autograd.grad(loss, y)
            ys.append(y.detach())
            grads.append(grad)
            start += count
        return torch.cat(ys), torch.cat(grads)

    @torch.enable_grad()
    def curvature(self, probes: int, generator: torch.Generator) -> Tensor:
        """[C] mean diagonal of J^T J per channel (per element of the channel), Hutchinson."""
        values = self.kept[0]
        total: Tensor | None = None
        with torch.no_grad():
            base = self.part.run(values)
        _, y0 = self._run_with_output(values)
        for _ in range(probes):
            sign = torch.randint(0, 2, y0.shape, generator=generator).to(y0) * 2 - 1
            out, y1 = self._run_with_output(values, y0 + sign)
            loss = y1.new_zeros(())
            for c, goal in self.target.items():
                jr = out[c] - base[c]  # J r (the map is affine)
                loss = loss + jr.pow(2).sum() * (self.scale[c] / goal.numel())
            (hr,) = torch.autograd.grad(loss, y1)  # H r, H the error's Hessian in y
            estimate = channel_columns(sign * hr).mean(1)  # per element: independent of N
            total = estimate if total is None else total + estimate
        assert total is not None
        return total / probes


def _quantise(flat: Tensor, theta: Tensor, phi: Tensor, timesteps: int) -> Tensor:
    """[C, M] levels * theta / T for per-channel theta, phi [C, K] broadcast as [C, K, M]."""
    scaled = flat.unsqueeze(1) * (timesteps / theta.unsqueeze(2)) + phi.unsqueeze(2)
    return torch.floor(scaled.clamp(0, timesteps)) * (theta.unsqueeze(2) / timesteps)


@torch.no_grad()
def refine_channels(
    quantiser: TwinQuantiser,
    part: PartialGraph,
    kept: list[dict[fx.Node, Tensor]],
    x: Tensor,
    target: dict[str, Tensor],
    centred: list[str],
    potentials: tuple[float, ...],
    passes: int,
    values: int | None,
    seed: int,
    snap: Callable[[Tensor], Tensor] | None = None,
) -> float:
    """Refine ``quantiser``'s per-channel theta and phi (in place) against the consumers'
    error; ``x`` is the activation's input [N, C, ...] on the twin; ``snap`` maps candidate
    thresholds [C, K] to those the neurons will have. Returns the final error."""
    objective = _Objective(part, kept, quantiser, target, centred)
    error = objective.error()
    if quantiser.threshold.dim() == 0:
        return error
    generator = torch.Generator().manual_seed(seed)
    flat = channel_columns(x)
    keep = None
    if values is not None and flat.shape[1] > values:
        keep = torch.randperm(flat.shape[1], generator=generator)[:values].to(flat.device)
        flat = flat[:, keep]
    share = flat.shape[1] / channel_columns(x).shape[1]
    timesteps = quantiser.timesteps
    phi_grid = torch.tensor(potentials, dtype=flat.dtype, device=flat.device)
    factor_grid = torch.tensor(FACTORS, dtype=flat.dtype, device=flat.device)
    for _ in range(passes):
        theta = quantiser.threshold.detach().clone()
        phi = quantiser.initial_potential.detach().clone().expand_as(theta).clone()
        _, grad = objective.gradient(objective.means())
        curvature = objective.curvature(2, generator).clamp(min=0)
        g = channel_columns(grad)
        if keep is not None:
            g = g[:, keep]
        current = _quantise(flat, theta.unsqueeze(1), phi.unsqueeze(1), timesteps)[:, 0]
        cand_theta = (theta.unsqueeze(1) * factor_grid).repeat_interleave(len(potentials), 1)
        cand_phi = phi_grid.repeat(len(FACTORS)).expand(theta.numel(), -1)
        if snap is not None:
            cand_theta = snap(cand_theta)
        q = _quantise(flat, cand_theta, cand_phi, timesteps)  # [C, K, M]
        delta = q - current.unsqueeze(1)
        # per element of the whole set: subsampled sums scaled back up
        predicted = (
            (delta * g.unsqueeze(1)).sum(2) + 0.5 * curvature.unsqueeze(1) * delta.pow(2).sum(2)
        ) / share
        best, index = predicted.min(1)
        improve = best < 0
        if not improve.any():
            break
        channels = torch.arange(theta.numel(), device=theta.device)
        new_theta = torch.where(improve, cand_theta[channels, index], theta)
        new_phi = torch.where(improve, cand_phi[channels, index], phi)
        accepted = False
        order = torch.argsort(best)  # largest predicted gain first
        for fraction in (1.0, 0.5, 0.25):
            chosen = torch.zeros_like(improve)
            chosen[order[: max(1, int(improve.sum().item() * fraction))]] = True
            chosen &= improve
            quantiser.set_threshold(torch.where(chosen, new_theta, theta))
            quantiser.set_initial_potential(torch.where(chosen, new_phi, phi))
            trial = objective.error()
            if trial < error:
                error, accepted = trial, True
                break
        if not accepted:
            quantiser.set_threshold(theta)
            quantiser.set_initial_potential(phi)
            break
    return error
