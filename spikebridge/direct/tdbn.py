"""Threshold-dependent batch normalisation, tdBN (Zheng et al. 2021, SPEC 2.3).

Stateless layers of a :class:`~spikebridge.engine.network.SpikingNetwork` see the T steps folded into the
batch, ``[T*B, C, H, W]``, so ordinary BatchNorm statistics over (T*B, H, W) are exactly tdBN's
statistics over (T, N, H, W). tdBN is therefore BatchNorm with the normalised value scaled by
alpha * V_th before the affine transform:

    x_hat = alpha * V_th * (x - E[x]) / sqrt(Var[x] + eps);   y = lambda * x_hat + beta

which is BatchNorm with effective weight lambda * alpha * V_th (one fused kernel, running
statistics exactly as BatchNorm keeps them).

tdBN layers are :class:`~spikebridge.engine.neurons.TimeAware` (their statistics span the folded time
axis), which also makes them leaf modules when a SpikingNetwork traces its graph: the static
input prefix then ends before the first tdBN (tdBN normalises the T-fold input).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.neurons import TimeAware


class _ThresholdDependent:
    """Mixin over ``nn.modules.batchnorm._BatchNorm`` adding alpha and V_th."""

    alpha: float
    threshold: float

    def _set_scale(self, alpha: float, threshold: float) -> None:
        for name, value in (("alpha", alpha), ("threshold", threshold)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(
                    f"{type(self).__name__}: {name} must be a finite positive number, got {value!r}"
                )
        self.alpha = float(alpha)
        self.threshold = float(threshold)

    @property
    def scale(self) -> float:
        """alpha * V_th."""
        return self.alpha * self.threshold

    def effective_weight(self) -> Tensor:
        """lambda * alpha * V_th per channel ([C]); the BatchNorm weight this layer acts with."""
        if self.weight is not None:  # type: ignore[attr-defined]
            return self.weight * self.scale  # type: ignore[attr-defined]
        return torch.full((self.num_features,), self.scale, device=self.running_mean.device)  # type: ignore[attr-defined]

    def forward(self, x: Tensor) -> Tensor:
        """x: [T*B, C, ...] -> same shape, normalised per channel over everything else."""
        self._check_input_dim(x)  # type: ignore[attr-defined]
        momentum = 0.0 if self.momentum is None else self.momentum  # type: ignore[attr-defined]
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:  # type: ignore[attr-defined]
            self.num_batches_tracked.add_(1)  # type: ignore[attr-defined]
            if self.momentum is None:  # type: ignore[attr-defined]
                momentum = 1.0 / float(self.num_batches_tracked)  # type: ignore[attr-defined]
        use_batch = self.training or (self.running_mean is None and self.running_var is None)  # type: ignore[attr-defined]
        keep = not self.training or self.track_running_stats  # type: ignore[attr-defined]
        weight = self.effective_weight()
        if self.weight is None:  # type: ignore[attr-defined]
            weight = weight.to(x.dtype)
        return F.batch_norm(
            x,
            self.running_mean if keep else None,  # type: ignore[attr-defined]
            self.running_var if keep else None,  # type: ignore[attr-defined]
            weight,
            self.bias,  # type: ignore[attr-defined]
            use_batch,
            momentum,
            self.eps,  # type: ignore[attr-defined]
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, alpha={self.alpha:.4g}, threshold={self.threshold}"  # type: ignore[misc]


class ThresholdDependentBatchNorm1d(_ThresholdDependent, nn.BatchNorm1d, TimeAware):
    """tdBN after a linear layer: input [T*B, C] or [T*B, C, L]."""

    def __init__(
        self, num_features: int, alpha: float = 1.0, threshold: float = 0.5, **kwargs
    ) -> None:
        nn.BatchNorm1d.__init__(self, num_features, **kwargs)
        self._set_scale(alpha, threshold)


class ThresholdDependentBatchNorm2d(_ThresholdDependent, nn.BatchNorm2d, TimeAware):
    """tdBN after a conv layer: input [T*B, C, H, W]."""

    def __init__(
        self, num_features: int, alpha: float = 1.0, threshold: float = 0.5, **kwargs
    ) -> None:
        nn.BatchNorm2d.__init__(self, num_features, **kwargs)
        self._set_scale(alpha, threshold)


def tdbn(num_features: int, dims: int, alpha: float = 1.0, threshold: float = 0.5) -> nn.Module:
    """tdBN for ``dims`` 1 (after Linear) or 2 (after Conv2d); a ``norm`` factory for build_model."""
    if dims == 1:
        return ThresholdDependentBatchNorm1d(num_features, alpha, threshold)
    if dims == 2:
        return ThresholdDependentBatchNorm2d(num_features, alpha, threshold)
    raise ValueError(
        f"tdBN supports 1-d (after Linear) and 2-d (after Conv2d) inputs, got dims={dims}"
    )


def tdbn_factory(threshold: float = 0.5):
    """A ``norm(num_features, dims, alpha)`` factory building tdBN with V_th = ``threshold``."""

    def factory(num_features: int, dims: int, alpha: float = 1.0) -> nn.Module:
        return tdbn(num_features, dims, alpha, threshold)

    return factory


TDBN_TYPES = (ThresholdDependentBatchNorm1d, ThresholdDependentBatchNorm2d)

__all__ = [
    "TDBN_TYPES",
    "ThresholdDependentBatchNorm1d",
    "ThresholdDependentBatchNorm2d",
    "tdbn",
    "tdbn_factory",
]
