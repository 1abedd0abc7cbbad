"""Method ``calibrated``: one network per target T, calibrated on its quantised twin.

Thresholds and biases for a target T from unlabelled calibration images (layer-wise per-channel
search, bias correction, optional reconstruction; Nagel 2019, Li et al. 2021 "A free lunch from
ANN"); signed IF neurons with u0 = theta/2 by default, where the network equals the T-level
quantised ANN it was calibrated on. The machinery is :mod:`spikebridge.convert.calibration`;
docs/normalization.md explains it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ...labels import finetune_label
from ...settings import MAX_BATCH_SIZE, MAX_SAMPLES, MAX_SEED, SettingsError, setting
from ..calibration import calibrate_target, for_neurons
from ..quantised_twin import check_calibratable
from . import MethodOutput, MethodSettings, ThresholdMethod, register

ALPHAS: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 21))  # 0.05 .. 1.0
"""The per-channel search grid: fractions of a channel's largest input."""
BETAS: tuple[float, ...] = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4)
"""The layer-wise factors tried on the next layer's reconstruction error."""


@dataclass(frozen=True)
class CalibratedSettings(MethodSettings):
    """Settings of method ``calibrated`` (defaults: the documented recipe). Flags and config
    keys: ``--calibrated-samples``, ``--calibrated-iterations``, ``--calibrated-weights``,
    ``--calibrated-finetune-steps`` (alias ``--finetune-steps``); the others are Python-only.

    Attributes:
        samples: calibration images used (the first ``samples`` of the calibration data).
        iterations: reconstruction steps per unit (0: no reconstruction).
        weights: let reconstruction change the weights too (else thresholds, initial potentials
            and biases only).
        batch_size: images per twin pass (and per reconstruction step).
        per_channel: one threshold per channel (else one per layer).
        alphas: per-channel grid, fractions of the channel's largest input.
        potentials: per-channel grid of initial potentials phi = u[0] / theta, searched jointly
            with alpha ((0.5,): rounding to nearest, no potential calibration).
        search_values: at most this many entries per channel (a fixed random subset) in the
            per-channel search (None: all).
        betas: layer-wise factors tried on the next layer's reconstruction error.
        refine_passes: passes refining each channel's (theta, phi) against the next layer's
            actual error after the search (0: none; :mod:`~spikebridge.convert.calibration.refine`).
        bias_correction: correct the next layers' biases for the mean shift.
        snn_correction: after the search, correct the biases again layer by layer for the mean
            shift of the *simulated* network's inputs (its burst error; Li et al. 2021).
        snn_samples: calibration images the SNN correction simulates (the first ones).
        output_check: compare the searched twin with the twin of method ``channel``'s
            thresholds by their outputs' KL divergence from the float ANN on the calibration
            images, and keep the closer (:mod:`~spikebridge.convert.calibration.guard`).
        reconstruct_potentials: let reconstruction change the initial potentials u[0] / theta.
        block: activation layers per reconstruction unit (1: layer-wise).
        learning_rate: Adam's step for thresholds, initial potentials and biases.
        weight_lr_scale: the weights' step as a multiple of ``learning_rate`` (resnet20 on
            MNIST at T = 2, 100 steps per layer: 85.35 % at 0.1, 91.70 % at 1.0).
        seed: order of the reconstruction batches and the search's subsets (None: the
            conversion's seed; 0 when calibrating directly).
        progress: tqdm progress bars.
        cache_bytes: keep the float ANN's activation inputs for all calibration images when they
            fit in this many bytes (one pass instead of one per layer).
        finetune_steps: after the search (and the output check), train the quantised twin for
            this many labelled steps on all calibration images and their labels (retraining,
            issue 23; :mod:`~spikebridge.convert.calibration.finetune`); 0: none.
        finetune_lr: the fine-tune's Adam step as a fraction of each tensor's RMS at the start
            (weights, biases, thresholds; absolute for the potentials), decayed along a cosine.
        finetune_warmup: the share of the fine-tune's steps over which the step rises linearly
            to ``finetune_lr`` (resnet20 on MNIST at T = 2: 3e-2 without a warm-up collapsed to
            chance and was rolled back; with 0.1, 93.45 %).
        finetune_threshold_lr_scale: the thresholds' and initial potentials' step as a multiple
            of ``finetune_lr``.
        finetune_weights: the fine-tune trains the weights too (else thresholds, potentials and
            biases only; resnet20 on digits at T = 2: 77 % against 93 % with them).
        finetune_distill: weight of distillation from the float ANN's logits in the fine-tune's
            loss (0: cross-entropy on the labels only; 1: distillation only).
        finetune_forward: the fine-tune's forward pass: ``"network"``, the simulated network's
            own (tandem learning, Wu et al. 2021: the twin's gradient; no SNN correction after
            it), or ``"twin"``, the quantised twin's (then the SNN correction). resnet20 on
            digits at T = 2, 300 steps: 94.99 % against 92.76 % (benchmarks/RESULTS.md).
    """

    prefix: ClassVar[str] = "calibrated_"
    samples: int = setting(
        512, "calibrated: calibration images its search uses (of --calibration-samples)",
        positive=True, maximum=MAX_SAMPLES,
    )  # fmt: skip
    iterations: int = setting(
        0, "calibrated: reconstruction steps per layer (0: search and bias correction only)",
        non_negative=True, maximum=1_000_000,
    )  # fmt: skip
    weights: bool = setting(
        False, "calibrated: reconstruction also changes weights (else thresholds and biases)"
    )
    batch_size: int = setting(128, "images per twin pass", positive=True, maximum=MAX_BATCH_SIZE,
                          flag=False)  # fmt: skip
    per_channel: bool = setting(True, "one threshold per channel", flag=False)
    alphas: tuple[float, ...] = setting(ALPHAS, "per-channel search grid", flag=False)
    potentials: tuple[float, ...] = setting((0.5,), "initial-potential grid", flag=False)
    search_values: int | None = setting(
        32768, "entries per channel in the search", positive=True, maximum=2**31, flag=False
    )
    betas: tuple[float, ...] = setting(BETAS, "layer-wise factors", flag=False)
    refine_passes: int = setting(3, "refinement passes", non_negative=True, maximum=1000,
                                flag=False)  # fmt: skip
    bias_correction: bool = setting(True, "bias correction", flag=False)
    snn_correction: bool = setting(True, "SNN correction", flag=False)
    snn_samples: int = setting(256, "images the SNN correction simulates", positive=True,
                               maximum=MAX_SAMPLES,
                               flag=False)  # fmt: skip
    output_check: bool = setting(True, "output check against the percentile twin", flag=False)
    reconstruct_potentials: bool = setting(True, "reconstruct u[0] / theta", flag=False)
    block: int = setting(1, "activation layers per reconstruction unit", positive=True, maximum=1000,
                         flag=False)  # fmt: skip
    learning_rate: float = setting(
        1e-3, "reconstruction step (bounded only against overflow: a huge step forces divergence)",
        positive=True, maximum=1e30, flag=False,
    )  # fmt: skip
    weight_lr_scale: float = setting(1.0, "weights' step factor", positive=True, maximum=1e6,
                                      flag=False)  # fmt: skip
    seed: int | None = setting(None, "seed (None: the conversion's)", non_negative=True,
                              maximum=MAX_SEED, flag=False)  # fmt: skip
    progress: bool = setting(False, "progress bars", runtime=True, flag=False)
    cache_bytes: int = setting(512 * 2**20, "activation cache", non_negative=True,
                               maximum=2**40, flag=False)  # fmt: skip
    finetune_steps: int = setting(
        0, "calibrated: labelled steps training the quantised twin after calibration, from the "
        "calibration images' labels (retraining; 0: none, post-training only)",
        non_negative=True, maximum=1_000_000, aliases=("--finetune-steps",),
    )  # fmt: skip
    finetune_lr: float = setting(3e-2, "fine-tune's Adam step, relative to each tensor's RMS "
                                 "(cosine-decayed)", positive=True, maximum=1.0,
                                 flag=False)  # fmt: skip
    finetune_weights: bool = setting(True, "fine-tune the weights too", flag=False)
    finetune_distill: float = setting(0.0, "fine-tune's weight of distillation from the ANN",
                                      non_negative=True, maximum=1.0, flag=False)  # fmt: skip
    finetune_warmup: float = setting(0.1, "fine-tune's share of steps warming the step up",
                                     fraction=True, flag=False)  # fmt: skip
    finetune_forward: str = setting(
        "network", "fine-tune's forward pass: the simulated network's (twin's gradient) or the "
        "twin's", choices=("network", "twin"), flag=False,
    )  # fmt: skip
    finetune_threshold_lr_scale: float = setting(
        1.0, "thresholds' and potentials' fine-tune step factor", positive=True, maximum=1e6,
        flag=False,
    )  # fmt: skip

    def network_label(self, method: str) -> str:
        """``calibrated+ft<N>`` when the twin is fine-tuned (retraining), else ``calibrated``."""
        return finetune_label(method, self.finetune_steps)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.alphas or not self.betas or min(*self.alphas, *self.betas) <= 0:
            raise SettingsError("alphas and betas must be non-empty and positive")
        if not self.potentials or not all(0 <= p < 1 for p in self.potentials):
            raise SettingsError(
                f"potentials (u[0] / theta) must be non-empty and in [0, 1), got {self.potentials}"
            )


def calibrate(source, settings: CalibratedSettings) -> MethodOutput:
    """The calibration for ``source.target`` and ``source.negative_spikes`` neurons; with the
    other kind's already done (``source.other``), its search is reused and only the SNN
    correction is redone."""
    data = source.require_calibration("calibrated")
    check_calibratable(source.prepared)
    settings = dataclasses.replace(
        settings,
        seed=source.seed if settings.seed is None else settings.seed,
        progress=settings.progress or source.progress,
    )
    if source.other is None:
        result = calibrate_target(
            source.prepared, data, source.target, settings, source.negative_spikes,
            source.spike_levels,
        )  # fmt: skip
    else:
        result = for_neurons(
            source.other.detail, source.prepared, data, source.negative_spikes, settings
        )
    return MethodOutput(result.thresholds, result.prepared, result.initial_potentials, result)


register(
    ThresholdMethod(
        name="calibrated",
        paper="Li 2021",
        help="one network per target T: thresholds and biases calibrated on the T-level "
        "quantised twin from unlabelled images; signed IF neurons, u0 calibrated per channel",
        plot_label="calibrated, one network per T (Li 2021)",
        build=calibrate,
        settings=CalibratedSettings,
        per_timesteps=True,
        per_neuron=True,
        initial_potential=0.5,
        negative_spikes=True,
        max_pool_rule="running",
        order=70,
    )
)
