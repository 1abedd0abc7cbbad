"""Model-based thresholds (Diehl et al. 2015): bounds propagated through the weights, no data."""

from __future__ import annotations

from ...normalization.model_based import model_based_norm
from . import ThresholdMethod, register


def _thresholds(converter, timesteps):
    return model_based_norm(converter.prepared_, converter.input_bound)


register(
    ThresholdMethod(
        name="model",
        paper="Diehl 2015",
        help="worst-case input bound per layer from the weights; needs no data, slow to fire",
        build=_thresholds,
        needs_data=False,
        order=10,
    )
)
