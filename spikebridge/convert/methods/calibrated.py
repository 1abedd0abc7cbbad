"""Method ``calibrated``: one network per target T, calibrated on its quantised twin.

Thresholds and biases for a target T from unlabelled calibration images (layer-wise per-channel
search, bias correction, optional reconstruction; Nagel 2019, Li et al. 2021 "A free lunch from
ANN"); signed IF neurons with u0 = theta/2 by default, where the network equals the T-level
quantised ANN it was calibrated on. See :mod:`spikebridge.convert.low_latency` and
docs/normalization.md.
"""

from __future__ import annotations

from ..calibration import LowLatencyCalibration, calibrate_low_latency, for_neurons
from ..quantised_twin import check_calibratable
from . import ThresholdMethod, register


def calibration_for(
    converter, timesteps: int, negative_spikes: bool = True
) -> LowLatencyCalibration:
    """The converter's calibration for target T and the given neurons (computed once per T and
    kind, kept on the converter as ``low_latency_[(T, negative_spikes)]``; the second kind of
    neuron reuses the first one's search and redoes only its SNN correction)."""
    cache = converter.__dict__.setdefault("low_latency_", {})
    key = (timesteps, negative_spikes)
    if key in cache:
        return cache[key]
    if converter.calibration is None:
        raise ValueError("method 'calibrated' needs calibration images: pass `calibration`")
    check_calibratable(converter.prepared_)
    other = cache.get((timesteps, not negative_spikes))
    if other is None:
        cache[key] = calibrate_low_latency(
            converter.prepared_,
            converter.calibration,
            timesteps,
            converter.low_latency,
            negative_spikes,
        )
    else:
        cache[key] = for_neurons(
            other,
            converter.prepared_,
            converter.calibration,
            negative_spikes,
            converter.low_latency,
        )
    return cache[key]


def _thresholds(converter, timesteps):
    # the same for both kinds of neuron: whichever was calibrated (plain-only users never pay
    # for a signed network's correction)
    cache = converter.__dict__.get("low_latency_", {})
    for signed in (True, False):
        if (timesteps, signed) in cache:
            return cache[(timesteps, signed)].thresholds
    return calibration_for(converter, timesteps).thresholds


def _model(converter, timesteps, negative_spikes):
    return calibration_for(converter, timesteps, negative_spikes).prepared


def _potentials(converter, timesteps, negative_spikes):
    return calibration_for(converter, timesteps, negative_spikes).initial_potentials


register(
    ThresholdMethod(
        name="calibrated",
        paper="Li 2021",
        help="one network per target T: thresholds and biases calibrated on the T-level "
        "quantised twin from unlabelled images; signed IF neurons, u0 calibrated per channel",
        build=_thresholds,
        model=_model,
        potentials=_potentials,
        per_timesteps=True,
        calibrates=False,
        initial_potential=0.5,
        negative_spikes=True,
        max_pool_rule="running",
        order=70,
    )
)
