"""The output check of method ``calibrated``: the layer-wise search against plain percentile
thresholds, judged by the whole twin's output.

Every stage of the search judges a layer by its own or the next layer's reconstruction error.
On some networks that local error and the network's function part: on a torchvision ResNet-18
trained briefly on upsampled digits, the searched twin at T = 2 kept 37.5 % (ANN 89.9 %) where
the same twin with method ``channel``'s thresholds (the 99.9th percentile of each channel's
positive activations; Rueckauer 2017, per channel as in Kim 2020) kept 74.6 %. So the search's
twin is compared with that percentile twin on the calibration images by the KL divergence of
its softmax output from the float ANN's (no labels), and the closer one is kept. Shapes: images [N, ...], logits [N, K].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from ...normalization import channel_norm, percentile_norm
from ...normalization.calibrate import calibrate
from ...settings import DEFAULT_PERCENTILE
from ..quantised_twin import quantised_twin, snn_threshold
from .graph import OUTPUT, FloatReference


class CalibrationWarning(UserWarning):
    """The output check replaced the layer-wise search's thresholds by percentile ones."""


def percentile_thresholds(
    reference: fx.GraphModule,
    acts: dict[str, nn.Module],
    x: Tensor,
    searched: dict[str, Tensor],
    batch_size: int,
    percentile: float = DEFAULT_PERCENTILE,
) -> dict[str, Tensor]:
    """The thresholds of methods ``channel`` (where the searched threshold of a layer is [C])
    and ``percentile`` (where it is 0-d): the ``percentile``-th percentile of the float ANN's
    positive activations on the images x [N, ...] (:func:`~spikebridge.normalization.calibrate`)."""
    stats = calibrate(reference, x.split(batch_size), x.device)
    per_channel = channel_norm(stats, percentile)
    layer_wise = percentile_norm(stats, percentile)
    return {
        name: snn_threshold(
            name, act, per_channel[name] if searched[name].dim() == 1 else layer_wise[name]
        )
        for name, act in acts.items()
    }


@torch.no_grad()
def output_divergence(twin: nn.Module, x: Tensor, logits: Tensor, batch_size: int) -> float:
    """KL(float ANN || twin) of the softmax outputs, averaged over the images x [N, ...];
    ``logits`` [N, K] are the float ANN's."""
    total = 0.0
    for start in range(0, x.shape[0], batch_size):
        out = F.log_softmax(twin(x[start : start + batch_size]), 1)
        ref = F.log_softmax(logits[start : start + batch_size], 1)
        total += float(F.kl_div(out, ref, log_target=True, reduction="sum"))
    return total / x.shape[0]


def check_against_percentile(
    searched_twin: fx.GraphModule,
    prepared: fx.GraphModule,
    acts: dict[str, nn.Module],
    floats: FloatReference,
    x: Tensor,
    timesteps: int,
    thresholds: dict[str, Tensor],
    batch_size: int,
) -> tuple[dict[str, Tensor] | None, float, float]:
    """(the percentile thresholds if their twin is closer to the float ANN, else None;
    the searched twin's divergence; the percentile twin's)."""
    logits = floats.get([OUTPUT])[OUTPUT]
    percentile = percentile_thresholds(prepared, acts, x, thresholds, batch_size)
    baseline = quantised_twin(prepared, percentile, timesteps, True, 0.5)
    searched = output_divergence(searched_twin, x, logits, batch_size)
    plain = output_divergence(baseline, x, logits, batch_size)
    return (percentile if plain < searched else None), searched, plain


__all__ = [
    "CalibrationWarning",
    "check_against_percentile",
    "output_divergence",
    "percentile_thresholds",
]
