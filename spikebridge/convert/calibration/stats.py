"""Error statistics of calibration. Shapes: [N, C, ...] or [N, F] (channels on dim 1)."""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor


def channel_mean(x: Tensor) -> Tensor:
    """[C] mean over every dimension but 1."""
    if x.dim() == 1:
        return x.mean().reshape(1)
    return x.transpose(0, 1).reshape(x.shape[1], -1).mean(1)


def relative_error(
    out: dict[str, Tensor], target: dict[str, Tensor], centred: Iterable[str] = ()
) -> float:
    """Mean over layers of MSE / variance of the float input; for the ``centred`` layers the
    per-channel mean of the difference is removed first (what bias correction will remove)."""
    centred = set(centred)
    errors = []
    for n in target:
        diff = out[n] - target[n]
        if n in centred:
            shape = [1] * diff.dim()
            if diff.dim() > 1:
                shape[1] = diff.shape[1]
            diff = diff - channel_mean(diff).reshape(shape)
        errors.append(float(diff.pow(2).mean() / target[n].var().clamp(min=1e-12)))
    return sum(errors) / len(errors)


def channel_columns(x: Tensor) -> Tensor:
    """[N, C, ...] -> [C, N*...] (or [N, F] -> [F, N]; a 1-d tensor -> [1, N])."""
    if x.dim() == 1:
        return x.reshape(1, -1)
    return x.transpose(0, 1).reshape(x.shape[1], -1)
