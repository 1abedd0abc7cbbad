"""What every phase of greedy layer-wise STDP training shares: one history row per epoch, passed
to the caller's callback, and the stops that name the layer when training diverges or falls
silent (:class:`~spikebridge.stdp.model.StdpDivergenceError`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .model import LAYER_NAMES, StdpDivergenceError

HistoryCallback = Callable[[dict], None]


def record_epoch(rows: list[dict], row: dict, on_epoch: HistoryCallback | None) -> None:
    """Append ``row`` to the history ``rows`` and pass it to ``on_epoch`` (when given)."""
    rows.append(row)
    if on_epoch is not None:
        on_epoch(row)


def check_finite(weight: Tensor, layer: str, epoch: int, batch: int) -> None:
    """Stop, naming ``layer``, when its weights are no longer finite."""
    if not torch.isfinite(weight).all():
        raise StdpDivergenceError(
            f"{LAYER_NAMES[layer]}: weights became NaN/inf at epoch {epoch}, batch {batch}; "
            "lower the learning rate of this layer"
        )


class SilenceWatch:
    """Stops training when a layer has produced no spike for ``limit`` consecutive batches."""

    def __init__(self, layer: str, limit: int, hint: str) -> None:
        self.layer, self.limit, self.hint, self.silent = layer, limit, hint, 0

    def update(self, spikes: float, epoch: int, batch: int) -> None:
        self.silent = 0 if spikes > 0 else self.silent + 1
        if self.silent >= self.limit:
            raise StdpDivergenceError(
                f"{LAYER_NAMES[self.layer]}: no neuron won (fired) in {self.silent} consecutive "
                f"batches (up to epoch {epoch}, batch {batch}); {self.hint}"
            )


__all__ = ["HistoryCallback", "SilenceWatch", "check_finite", "record_epoch"]
