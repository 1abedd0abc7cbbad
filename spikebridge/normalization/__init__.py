"""Weight/threshold balancing: calibration statistics and the methods that choose thresholds."""

from .calibrate import CalibrationStatistics, LayerStatistics, activation_layers, calibrate
from .methods import Scales, channel_norm, max_norm, percentile_norm

__all__ = [
    "CalibrationStatistics",
    "LayerStatistics",
    "Scales",
    "activation_layers",
    "calibrate",
    "channel_norm",
    "max_norm",
    "percentile_norm",
]
