"""The public names of method ``calibrated`` under their first module's name; the code lives in
:mod:`spikebridge.convert.calibration` (settings, graph walking, search, bias correction, SNN
correction, reconstruction)."""

from .calibration import (
    ALPHAS,
    BETAS,
    LayerCalibration,
    LowLatencyCalibration,
    LowLatencySettings,
    ReconstructionDiverged,
    calibrate_low_latency,
    calibration_images,
    low_latency_settings,
)

__all__ = [
    "ALPHAS",
    "BETAS",
    "LayerCalibration",
    "LowLatencyCalibration",
    "LowLatencySettings",
    "ReconstructionDiverged",
    "calibrate_low_latency",
    "calibration_images",
    "low_latency_settings",
]
