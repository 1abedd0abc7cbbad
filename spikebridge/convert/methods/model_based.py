"""Model-based thresholds (Diehl et al. 2015): bounds propagated through the weights, no data."""

from __future__ import annotations

from dataclasses import dataclass

from ...normalization.model_based import model_based_norm
from ...settings import setting
from . import MethodSettings, ThresholdMethod, register


@dataclass(frozen=True)
class ModelBasedSettings(MethodSettings):
    """Settings of method ``model``."""

    input_bound: float = setting(
        1.0,
        "model: largest input value (1 for images in [0, 1])",
        positive=True,
        maximum=1e6,
        flag=False,
    )


def thresholds(source, settings: ModelBasedSettings):
    """Worst-case bound of each layer's input, propagated from ``settings.input_bound``."""
    return model_based_norm(source.prepared, settings.input_bound)


register(
    ThresholdMethod(
        name="model",
        paper="Diehl 2015",
        help="worst-case input bound per layer from the weights; needs no data, slow to fire",
        plot_label="model-based (Diehl 2015)",
        build=thresholds,
        settings=ModelBasedSettings,
        needs_data=False,
        order=10,
    )
)
