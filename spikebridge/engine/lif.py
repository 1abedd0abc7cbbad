"""Iterative leaky integrate-and-fire neuron for STBP training (Wu et al. 2018; Zheng et al. 2021).

SPEC 2.1:  u[t] = tau_decay * u[t-1] * (1 - o[t-1]) + x[t];  o[t] = H(u[t] - V_th).

The state kept between calls (``self.v``) is the potential after the hard reset,
h[t] = u[t] * (1 - o[t]), so that u[t+1] = tau_decay * h[t] + x[t+1].

Gradient convention: as in the tdBN paper's code (``mem = mem * decay * (1 - spike) + x`` with the
spike not detached), the gradient flows through the reset term (1 - o[t-1]) using the surrogate
derivative: dh/du = (1 - o) - u * h'(u). ``detach_reset=True`` drops the second part
(dh/du = 1 - o). The fast path (:class:`LIFFunction`) and the unrolled reference
(:func:`lif_reference`) follow the same convention and give the same gradients.

Memory: the fast path runs the whole time loop inside one autograd function and saves only the
membrane potentials u ([T, B, ...], one tensor the size of the input); spikes, resets and
surrogate values are recomputed from u in the backward pass. Plain autograd over the unrolled loop
keeps several tensors per step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .neurons import SpikingNeuron
from .surrogate import check_surrogate, spike, surrogate_gradient


class LIFFunction(torch.autograd.Function):
    """The LIF time loop as one autograd function.

    forward(x_seq [T, B, ...], v0 [B, ...]) -> (spikes [T, B, ...], h_T [B, ...]).

    Per step the forward makes three passes over memory (charge, fire, reset); the backward
    recomputes spikes and surrogate values from the saved potentials one step at a time, so its
    temporaries are the size of one step, not of the whole sequence.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x_seq: Tensor,
        v0: Tensor,
        threshold: float,
        tau: float,
        surrogate: str,
        width: float,
        detach_reset: bool,
    ) -> tuple[Tensor, Tensor]:
        potentials = torch.empty_like(x_seq, memory_format=torch.contiguous_format)
        out = torch.empty_like(potentials)
        h = v0
        for t in range(x_seq.shape[0]):
            u = torch.add(x_seq[t], h, alpha=tau, out=potentials[t])  # u = x + tau * h
            o = torch.gt(u, threshold, out=out[t])
            h = torch.addcmul(u, u, o, value=-1.0)  # u * (1 - o), exact for o in {0, 1}
        ctx.save_for_backward(potentials)
        ctx.settings = (threshold, tau, surrogate, width, detach_reset)
        return out, h

    @staticmethod
    def backward(ctx, grad_out: Tensor | None, grad_h: Tensor | None):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        threshold, tau, surrogate, width, detach_reset = ctx.settings
        grad_x = torch.empty_like(u)
        grad_next = grad_h  # dL/dh[t], flowing back from step t + 1
        # dL/du[t] = dL/do[t] * s + dL/dh[t] * dh/du,  dh/du = (1 - o) - u * s  (or 1 - o with a
        # detached reset), s = h'(u[t]) the surrogate; dL/dh[t-1] = tau * dL/du[t].
        for t in range(u.shape[0] - 1, -1, -1):
            u_t, g = u[t], grad_x[t]
            if surrogate == "rectangular":
                _rectangular_step(g, u_t, grad_out, grad_next, t, threshold, width, detach_reset)
            else:
                slope = surrogate_gradient(surrogate, u_t - threshold, width)
                if grad_out is not None:
                    torch.mul(grad_out[t], slope, out=g)
                else:
                    g.zero_()
                if grad_next is not None:
                    below = u_t <= threshold
                    through = (
                        below.to(u.dtype) if detach_reset else slope.mul_(u_t).neg_().add_(below)
                    )
                    g.addcmul_(grad_next, through)
            grad_next = g * tau
        grad_v0 = grad_next if ctx.needs_input_grad[1] else None
        return grad_x, grad_v0, None, None, None, None, None


def _rectangular_step(
    g: Tensor,
    u_t: Tensor,
    grad_out: Tensor | None,
    grad_next: Tensor | None,
    t: int,
    threshold: float,
    width: float,
    detach_reset: bool,
) -> None:
    """One backward step for the rectangular surrogate s = 1[|u - V_th| < a/2] / a, written into g.

    g = s * (dL/do - dL/dh * u) + dL/dh * 1[u <= V_th]: seven passes over one step instead of
    twelve for the generic formula (this loop is memory-bound on CPUs).
    """
    window = torch.sub(u_t, threshold).abs_()
    torch.lt(window, width / 2, out=window)  # 0/1 as floats
    through_reset = grad_next is not None and not detach_reset
    if grad_out is not None and through_reset:
        torch.addcmul(grad_out[t], grad_next, u_t, value=-1.0, out=g)
    elif grad_out is not None:
        g.copy_(grad_out[t])
    else:
        g.zero_()
        if through_reset:
            g.addcmul_(grad_next, u_t, value=-1.0)
    g.mul_(window)
    if width != 1.0:
        g.mul_(1.0 / width)
    if grad_next is not None:
        below = torch.le(u_t, threshold, out=window)
        g.addcmul_(grad_next, below)


def lif_reference(
    x_seq: Tensor,
    v0: Tensor | None = None,
    threshold: float = 0.5,
    tau_decay: float = 0.25,
    surrogate: str = "rectangular",
    width: float = 1.0,
    detach_reset: bool = False,
) -> tuple[Tensor, Tensor]:
    """Unrolled LIF with plain autograd (one surrogate spike function per step).

    The definition the fast path is tested against. x_seq: [T, B, ...] -> (spikes [T, B, ...],
    final post-reset potential [B, ...]).
    """
    h = torch.zeros_like(x_seq[0]) if v0 is None else v0
    spikes = []
    for t in range(x_seq.shape[0]):
        u = x_seq[t] + tau_decay * h
        o = spike(u, threshold, surrogate, width)
        h = u * (1 - (o.detach() if detach_reset else o))
        spikes.append(o)
    return torch.stack(spikes), h


@torch.no_grad()
def lif_inference(
    x_seq: Tensor, v0: Tensor | None, threshold: float, tau: float
) -> tuple[Tensor, Tensor]:
    """The LIF loop without autograd bookkeeping, in place on one state tensor."""
    h = torch.zeros_like(x_seq[0]) if v0 is None else v0.clone()
    out = torch.empty_like(x_seq, memory_format=torch.contiguous_format)
    for t in range(x_seq.shape[0]):
        u = torch.add(x_seq[t], h, alpha=tau, out=h)
        o = torch.gt(u, threshold, out=out[t])
        h.addcmul_(u, o, value=-1.0)
    return out, h


class LIFNeuron(SpikingNeuron):
    """Multi-step LIF neuron with an STBP surrogate gradient (SPEC 2.1, 2.2).

    Spikes are 0/1 (the tdBN convention; the following tdBN rescales). Input and output are
    folded ``[T*B, ...]`` (through :meth:`forward`) or ``[T, B, ...]`` (:meth:`forward_sequence`).

    Args:
        threshold: V_th (default 0.5, the tdBN paper's code).
        tau_decay: leak factor of the potential per step, in [0, 1] (default 0.25).
        surrogate: ``rectangular`` (default), ``polynomial``, ``sigmoid`` or ``gaussian``.
        width: the surrogate's width a (default 1).
        detach_reset: stop the gradient through the reset term (default False, as the paper's code).
    """

    def __init__(
        self,
        threshold: float = 0.5,
        tau_decay: float = 0.25,
        surrogate: str = "rectangular",
        width: float = 1.0,
        detach_reset: bool = False,
    ) -> None:
        super().__init__()
        if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
            raise ValueError(
                f"LIFNeuron: threshold V_th must be a finite positive number, got {threshold!r}"
            )
        if not (isinstance(tau_decay, (int, float)) and 0 <= tau_decay <= 1):
            raise ValueError(f"LIFNeuron: tau_decay must be in [0, 1], got {tau_decay!r}")
        check_surrogate(surrogate, width)
        self.threshold = float(threshold)
        self.tau_decay = float(tau_decay)
        self.surrogate = surrogate
        self.width = float(width)
        self.detach_reset = bool(detach_reset)

    def extra_repr(self) -> str:
        return (
            f"threshold={self.threshold}, tau_decay={self.tau_decay}, surrogate={self.surrogate}, "
            f"width={self.width}" + (", detach_reset=True" if self.detach_reset else "")
        )

    def forward_sequence(self, x_seq: Tensor) -> Tensor:
        """x_seq: [T, B, ...] input currents -> [T, B, ...] spikes in {0, 1}."""
        v0 = self.v
        if v0 is not None and v0.shape != x_seq.shape[1:]:
            raise ValueError(
                f"LIFNeuron: the stored potential has shape {tuple(v0.shape)} but the input step has "
                f"shape {tuple(x_seq.shape[1:])}; call SpikingNetwork.reset() before a new batch"
            )
        needs_grad = torch.is_grad_enabled() and (
            x_seq.requires_grad or (v0 is not None and v0.requires_grad)
        )
        if needs_grad:
            start = torch.zeros_like(x_seq[0]) if v0 is None else v0
            out, h = LIFFunction.apply(
                x_seq,
                start,
                self.threshold,
                self.tau_decay,
                self.surrogate,
                self.width,
                self.detach_reset,
            )
        else:
            out, h = lif_inference(x_seq, v0, self.threshold, self.tau_decay)
        self.v = h
        return out


__all__ = ["LIFFunction", "LIFNeuron", "lif_inference", "lif_reference"]
