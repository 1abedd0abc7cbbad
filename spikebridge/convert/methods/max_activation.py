"""Data-based max normalisation (Diehl et al. 2015): the largest activation seen in calibration."""

from __future__ import annotations

from ...normalization import max_norm
from . import ThresholdMethod, register


def _thresholds(converter, timesteps):
    return max_norm(converter.statistics(), converter.prepared_)


register(
    ThresholdMethod(
        name="max",
        paper="Diehl 2015",
        help="largest calibration activation (or weight) per layer",
        build=_thresholds,
        calibrates=True,
        order=20,
    )
)
