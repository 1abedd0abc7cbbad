"""Robust normalisation (Rueckauer et al. 2017): the p-th percentile of each layer's activations."""

from __future__ import annotations

from ...normalization import percentile_norm
from . import ThresholdMethod, register


def _thresholds(converter, timesteps):
    return percentile_norm(converter.statistics(), converter.percentile)


register(
    ThresholdMethod(
        name="percentile",
        paper="Rueckauer 2017",
        help="p-th percentile of each layer's calibration activations (--percentile)",
        build=_thresholds,
        calibrates=True,
        uses_percentile=True,
        order=30,
    )
)
