"""The conversion route's public face: prepare once, calibrate once, build an SNN per method."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..activations import QCFS
from ..encoding import make_encoder
from ..network import SpikingNetwork
from ..normalization import calibrate, channel_norm, max_norm, percentile_norm
from ..normalization.calibrate import CalibrationStatistics, activation_layers
from .build import MethodNotApplicable, build_snn
from .prepare import prepare

METHODS: tuple[str, ...] = ("model", "max", "percentile", "channel", "spike-norm", "qcfs")
DATA_FREE = ("model", "qcfs")


def applicable_methods(model: nn.Module) -> list[str]:
    """Methods that apply to ``model`` (``qcfs`` only for QCFS-trained networks)."""
    acts = activation_layers(prepare(model, maxpool="avg"))
    is_qcfs = bool(acts) and all(isinstance(a, QCFS) for a in acts.values())
    return [m for m in METHODS if m != "qcfs" or is_qcfs]


class Converter:
    """Convert one ANN with several normalisation methods, calibrating only once.

    Args:
        model: the trained ANN (left untouched).
        calibration: iterable of (x, y) batches or a tensor [N, ...] of inputs; not needed by the
            data-free methods (``model``, ``qcfs``).
        maxpool: ``spiking`` (spiking max-pool gate) or ``avg`` (replace by AvgPool).
        percentile: p for the ``percentile`` and ``channel`` methods (default 99.9).
        exact: exact percentiles (keeps every activation; for small calibration sets).
    """

    def __init__(
        self,
        model: nn.Module,
        calibration: Iterable | Tensor | None = None,
        maxpool: str = "spiking",
        percentile: float = 99.9,
        device: torch.device | str = "cpu",
        exact: bool = False,
        progress: bool = False,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.calibration = calibration
        self.maxpool = maxpool
        self.percentile = percentile
        self.device = torch.device(device)
        self.exact = exact
        self.progress = progress
        self.seed = seed
        self.prepared_ = prepare(model, maxpool=maxpool).to(self.device)
        self.stats_: CalibrationStatistics | None = None

    def statistics(self) -> CalibrationStatistics:
        """Activation statistics of the calibration data (computed on first use)."""
        if self.stats_ is None:
            if self.calibration is None:
                raise ValueError(
                    "this method needs calibration data: pass `calibration` (a data loader)"
                )
            self.stats_ = calibrate(
                self.prepared_, self.calibration, self.device, self.exact, self.progress
            )
        return self.stats_

    def scales(self, method: str) -> dict[str, Tensor]:
        """Thresholds per activation layer for ``method`` (see :data:`METHODS`)."""
        acts = activation_layers(self.prepared_)
        if method == "qcfs":
            for name, act in acts.items():
                if not isinstance(act, QCFS):
                    raise MethodNotApplicable(
                        f"{name}: method 'qcfs' needs an ANN trained with QCFS activations "
                        f"(found {type(act).__name__}); train with --activation qcfs or pick another method"
                    )
            return {name: act.lambda_.detach().abs().clone() for name, act in acts.items()}
        if method == "max":
            return max_norm(self.statistics(), self.prepared_)
        if method == "percentile":
            return percentile_norm(self.statistics(), self.percentile)
        if method == "channel":
            return channel_norm(self.statistics(), self.percentile)
        if method == "model":
            from ..normalization.model_based import model_based_norm

            return model_based_norm(self.prepared_)
        if method == "spike-norm":
            from ..normalization.spike_norm import spike_norm

            if self.calibration is None:
                raise ValueError(
                    "spike-norm needs calibration data: pass `calibration` (a data loader)"
                )
            return spike_norm(self.prepared_, self.calibration, device=self.device, seed=self.seed)
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")

    def build(
        self,
        method: str = "channel",
        reset: str = "subtract",
        encoding: str = "analog",
        initial_potential: float | None = None,
        chunk_size: int | None = None,
    ) -> SpikingNetwork:
        """The spiking network for ``method``; ``initial_potential`` defaults to 0.5 for qcfs, else 0."""
        if initial_potential is None:
            initial_potential = 0.5 if method == "qcfs" else 0.0
        module = build_snn(
            self.prepared_, self.scales(method), reset, initial_potential, self.maxpool, method
        )
        return SpikingNetwork(module, make_encoder(encoding, self.seed), chunk_size).to(self.device)


def convert(
    model: nn.Module,
    calibration: Iterable | Tensor | None = None,
    method: str = "channel",
    *,
    reset: str = "subtract",
    encoding: str = "analog",
    percentile: float = 99.9,
    initial_potential: float | None = None,
    maxpool: str = "spiking",
    seed: int = 0,
    device: torch.device | str = "cpu",
    chunk_size: int | None = None,
) -> SpikingNetwork:
    """Convert a trained ANN into a :class:`SpikingNetwork` in one call.

    Example:
        >>> snn = convert(ann, calib_loader, method="channel")       # doctest: +SKIP
        >>> sim = snn.simulate(images, timesteps=32)                 # doctest: +SKIP
        >>> sim.accuracy(labels)  # [32] accuracy after every step    # doctest: +SKIP
    """
    converter = Converter(model, calibration, maxpool, percentile, device, seed=seed)
    return converter.build(method, reset, encoding, initial_potential, chunk_size)
