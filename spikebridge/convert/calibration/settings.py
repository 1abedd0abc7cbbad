"""Options of method ``calibrated`` (:class:`LowLatencySettings`) and its errors."""

from __future__ import annotations

from dataclasses import dataclass

ALPHAS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 21))  # 0.05 .. 1.0
BETAS: tuple[float, ...] = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4)


class ReconstructionDiverged(RuntimeError):
    """The reconstruction loss became NaN or infinite; the message names the layers."""


@dataclass
class LowLatencySettings:
    """Options of method ``calibrated`` (defaults: the documented recipe).

    Attributes:
        samples: calibration images used (the first ``samples`` of the calibration data).
        batch_size: images per twin pass (and per reconstruction step).
        per_channel: one threshold per channel (else one per layer).
        alphas: per-channel grid, fractions of the channel's largest input.
        potentials: per-channel grid of initial potentials phi = u[0] / theta, searched jointly
            with alpha ((0.5,): rounding to nearest, no potential calibration).
        search_values: at most this many entries per channel (a fixed random subset) in the
            per-channel search (None: all).
        betas: layer-wise factors tried on the next layer's reconstruction error.
        refine_passes: passes refining each channel's (theta, phi) against the next layer's
            actual error after the search (0: none; :mod:`.refine`).
        bias_correction: correct the next layers' biases for the mean shift.
        snn_correction: after the search, correct the biases again layer by layer for the mean
            shift of the *simulated* network's inputs (its burst error; Li et al. 2021).
        snn_samples: calibration images the SNN correction simulates (the first ones).
        output_check: compare the searched twin with the twin of channel-wise 99.9th-percentile
            thresholds by their outputs' KL divergence from the float ANN on the calibration
            images, and keep the closer (:mod:`.guard`).
        iterations: reconstruction steps per unit (0: no reconstruction).
        reconstruct_weights: let reconstruction change the weights too (else thresholds,
            initial potentials and biases only).
        reconstruct_potentials: let reconstruction change the initial potentials u[0] / theta.
        block: activation layers per reconstruction unit (1: layer-wise).
        learning_rate: Adam's step for thresholds, initial potentials and biases.
        weight_lr_scale: the weights' step as a multiple of ``learning_rate`` (resnet20 on
            MNIST at T = 2, 100 steps per layer: 85.35 % at 0.1, 91.70 % at 1.0).
        seed: order of the reconstruction batches.
        progress: tqdm progress bars.
        cache_bytes: keep the float ANN's activation inputs for all calibration images when they
            fit in this many bytes (one pass instead of one per layer).
    """

    samples: int = 512
    batch_size: int = 128
    per_channel: bool = True
    alphas: tuple[float, ...] = ALPHAS
    potentials: tuple[float, ...] = (0.5,)
    search_values: int | None = 32768
    betas: tuple[float, ...] = BETAS
    refine_passes: int = 3
    bias_correction: bool = True
    snn_correction: bool = True
    snn_samples: int = 256
    output_check: bool = True
    iterations: int = 0
    reconstruct_weights: bool = False
    reconstruct_potentials: bool = True
    block: int = 1
    learning_rate: float = 1e-3
    weight_lr_scale: float = 1.0
    seed: int = 0
    progress: bool = False
    cache_bytes: int = 512 * 2**20

    def validate(self) -> None:
        for name in ("samples", "batch_size", "block", "snn_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.refine_passes, bool) or self.refine_passes < 0:
            raise ValueError(f"refine_passes must be >= 0, got {self.refine_passes!r}")
        if isinstance(self.iterations, bool) or self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations!r}")
        if not self.alphas or not self.betas or min(*self.alphas, *self.betas) <= 0:
            raise ValueError("alphas and betas must be non-empty and positive")
        if not self.potentials or not all(0 <= p < 1 for p in self.potentials):
            raise ValueError(
                f"potentials (u[0] / theta) must be non-empty and in [0, 1), got {self.potentials}"
            )
        if self.search_values is not None and (
            isinstance(self.search_values, bool) or self.search_values <= 0
        ):
            raise ValueError(f"search_values must be positive or None, got {self.search_values!r}")
        if isinstance(self.cache_bytes, bool) or self.cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0, got {self.cache_bytes!r}")
        for name in ("learning_rate", "weight_lr_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")


def low_latency_settings(
    conversion, *, seed: int = 0, progress: bool = False
) -> LowLatencySettings:
    """The options of method ``calibrated`` in a
    :class:`~spikebridge.settings.ConversionSettings` (``calibrated_samples``,
    ``calibrated_iterations``, ``calibrated_weights``)."""
    return LowLatencySettings(
        samples=conversion.calibrated_samples,
        iterations=conversion.calibrated_iterations,
        reconstruct_weights=conversion.calibrated_weights,
        seed=seed,
        progress=progress,
    )
