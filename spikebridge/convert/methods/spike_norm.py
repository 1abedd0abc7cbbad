"""Spike-Norm (Sengupta et al. 2019): thresholds balanced layer by layer on Poisson spike trains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...normalization.spike_norm import DEFAULT_WINDOW, spike_norm
from ...settings import MAX_SAMPLES, MAX_TIMESTEPS, setting
from . import MethodSettings, ThresholdMethod, register


@dataclass(frozen=True)
class SpikeNormSettings(MethodSettings):
    """Settings of method ``spike-norm`` (flags ``--spike-norm-window``, ``--spike-norm-samples``).

    Attributes:
        window: the balancing window n in steps (Sengupta 2019: about the inference window).
        samples: calibration inputs it simulates (it runs the SNN once per layer, so it uses
            fewer than the statistics pass); None: all of them.
    """

    prefix: ClassVar[str] = "spike_norm_"
    window: int = setting(DEFAULT_WINDOW, "Spike-Norm's balancing window in steps", positive=True,
                         maximum=MAX_TIMESTEPS)  # fmt: skip
    samples: int | None = setting(256, "calibration inputs Spike-Norm simulates",
                                  positive=True, maximum=MAX_SAMPLES)  # fmt: skip


def thresholds(source, settings: SpikeNormSettings):
    """Each layer's largest weighted spike input, balanced layer by layer."""
    return spike_norm(
        source.prepared,
        source.require_calibration("spike-norm"),
        device=source.device,
        seed=source.seed,
        window=settings.window,
        samples=settings.samples,
        maxpool=source.maxpool,
        progress=source.progress,
    )


register(
    ThresholdMethod(
        name="spike-norm",
        paper="Sengupta 2019",
        help="largest weighted spike input per layer, balanced layer by layer on Poisson input",
        plot_label="Spike-Norm (Sengupta 2019)",
        build=thresholds,
        settings=SpikeNormSettings,
        order=50,
    )
)
