"""Robust normalisation (Rueckauer et al. 2017): the p-th percentile of each layer's activations."""

from __future__ import annotations

from dataclasses import dataclass

from ...normalization import percentile_norm
from ...settings import DEFAULT_PERCENTILE, setting
from . import MethodSettings, ThresholdMethod, register


@dataclass(frozen=True)
class PercentileSettings(MethodSettings):
    """Settings of the methods that clip at a percentile p (``percentile``, ``channel``); on
    the command line p is ``--percentile`` (a number or ``auto``, chosen on held-out images)."""

    percentile: float = setting(DEFAULT_PERCENTILE, "p of the percentile (in (0, 100])", flag=False)


def thresholds(source, settings: PercentileSettings):
    """The p-th percentile of each layer's positive calibration activations."""
    return percentile_norm(source.statistics(), settings.percentile)


register(
    ThresholdMethod(
        name="percentile",
        paper="Rueckauer 2017",
        help="p-th percentile of each layer's calibration activations (--percentile)",
        plot_label="percentile (Rueckauer 2017)",
        build=thresholds,
        settings=PercentileSettings,
        calibrates=True,
        uses_percentile=True,
        order=30,
    )
)
