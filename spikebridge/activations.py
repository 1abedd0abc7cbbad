"""ANN activations designed for conversion.

QCFS (Bu et al. 2022, SPEC 1.8): quantisation-clip-floor-shift,
h(z) = lambda * clamp(floor(z * L / lambda + 0.5) / L, 0, 1), with a trainable lambda and a
straight-through gradient for the floor. An ANN trained with it converts to IF neurons with
theta = lambda, u[0] = theta/2 and reset by subtraction, nearly losslessly at T = L.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .validation import check_positive_int


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad


class QCFS(nn.Module):
    """Quantisation-clip-floor-shift activation with ``levels`` steps and trainable ``lambda_``.

    Input and output: any shape.
    """

    def __init__(self, levels: int = 4, initial_lambda: float = 2.0) -> None:
        super().__init__()
        check_positive_int(levels, "QCFS: levels")
        self.levels = int(levels)
        self.lambda_ = nn.Parameter(torch.tensor(float(initial_lambda)))

    def forward(self, x: Tensor) -> Tensor:
        lam = self.lambda_
        y = _FloorSTE.apply(x * self.levels / lam + 0.5) / self.levels
        return lam * torch.clamp(y, 0, 1)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, lambda={self.lambda_.item():.4g}"
