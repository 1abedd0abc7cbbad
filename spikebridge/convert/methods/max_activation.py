"""Data-based max normalisation (Diehl et al. 2015): the largest activation seen in calibration."""

from __future__ import annotations

from ...normalization import max_norm
from . import ThresholdMethod, register


def thresholds(source, settings):
    """Each layer's largest calibration activation (or weight, where it is larger)."""
    return max_norm(source.statistics(), source.prepared)


register(
    ThresholdMethod(
        name="max",
        paper="Diehl 2015",
        help="largest calibration activation (or weight) per layer",
        plot_label="data-based max (Diehl 2015)",
        build=thresholds,
        calibrates=True,
        order=20,
    )
)
