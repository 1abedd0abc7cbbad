"""Spike-Norm (Sengupta et al. 2019): thresholds balanced layer by layer on Poisson spike trains."""

from __future__ import annotations

from ...normalization.spike_norm import spike_norm
from . import ThresholdMethod, register


def _thresholds(converter, timesteps):
    if converter.calibration is None:
        raise ValueError("spike-norm needs calibration data: pass `calibration` (a data loader)")
    return spike_norm(
        converter.prepared_,
        converter.calibration,
        device=converter.device,
        seed=converter.seed,
        timesteps=converter.spike_norm_window,
        samples=converter.spike_norm_samples,
        maxpool=converter.maxpool,
        progress=converter.progress,
    )


register(
    ThresholdMethod(
        name="spike-norm",
        paper="Sengupta 2019",
        help="largest weighted spike input per layer, balanced layer by layer on Poisson input",
        build=_thresholds,
        order=50,
    )
)
