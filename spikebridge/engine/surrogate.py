"""Surrogate gradients of the spike function for STBP (Wu et al. 2018, SPEC 2.2).

The forward pass of a spiking neuron is the Heaviside step o = H(u - V_th); its derivative is
replaced in the backward pass by one of four pseudo-derivatives of width ``a`` (each integrates to
1 over u). The rectangular one is the tdBN paper's choice (Zheng et al. 2021) and the default.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SURROGATES: tuple[str, ...] = ("rectangular", "polynomial", "sigmoid", "gaussian")


def check_surrogate(name: str, width: float) -> None:
    """Raise a clear error for an unknown surrogate name or a non-positive width."""
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}: choose one of {', '.join(SURROGATES)}")
    if not (isinstance(width, (int, float)) and math.isfinite(width) and width > 0):
        raise ValueError(f"surrogate width a must be a finite positive number, got {width!r}")


def surrogate_gradient(name: str, delta: Tensor, width: float = 1.0) -> Tensor:
    """dO/du evaluated at ``delta`` = u - V_th (any shape); returns a new tensor of the same shape.

    - ``rectangular`` (h1): (1/a) * 1[|delta| < a/2]
    - ``polynomial`` (h2): (sqrt(a)/2 - (a/4)|delta|) * 1[|delta| < 2/sqrt(a)]
    - ``sigmoid`` (h3): (1/a) * s(1 - s) with s = sigmoid(delta / a)
    - ``gaussian`` (h4): exp(-delta^2 / (2a)) / sqrt(2 pi a)
    """
    a = float(width)
    if name == "rectangular":
        return (delta.abs() < a / 2).to(delta.dtype).mul_(1.0 / a)
    if name == "polynomial":
        return delta.abs().mul_(-a / 4).add_(math.sqrt(a) / 2).clamp_(min=0.0)
    if name == "sigmoid":
        s = torch.sigmoid(delta / a)
        return s.mul_(1 - s).mul_(1.0 / a)
    if name == "gaussian":
        return delta.square().mul_(-1.0 / (2 * a)).exp_().mul_(1.0 / math.sqrt(2 * math.pi * a))
    raise ValueError(f"unknown surrogate {name!r}: choose one of {', '.join(SURROGATES)}")


class SpikeFunction(torch.autograd.Function):
    """o = H(u - V_th) forward (strict ``>``, as in the tdBN paper's code), surrogate backward.

    One step; used by the unrolled reference LIF (:func:`spikebridge.engine.lif.lif_reference`).
    """

    @staticmethod
    def forward(ctx, u: Tensor, threshold: float, name: str, width: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(u)
        ctx.threshold, ctx.name, ctx.width = threshold, name, width
        return (u > threshold).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        return (
            grad_out * surrogate_gradient(ctx.name, u - ctx.threshold, ctx.width),
            None,
            None,
            None,
        )


def spike(
    u: Tensor, threshold: float = 0.5, name: str = "rectangular", width: float = 1.0
) -> Tensor:
    """Heaviside spike of ``u`` ([...]) with a surrogate gradient."""
    return SpikeFunction.apply(u, threshold, name, width)


__all__ = ["SURROGATES", "SpikeFunction", "check_surrogate", "spike", "surrogate_gradient"]
