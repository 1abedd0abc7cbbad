"""The conversion route's public face: prepare once, calibrate once, build an SNN per method."""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..engine.encoding import make_encoder
from ..engine.graph import MethodNotApplicable
from ..engine.network import SpikingNetwork
from ..normalization import calibrate
from ..normalization.calibrate import CalibrationStatistics, activation_layers
from .build import build_spiking_module
from .calibration import LowLatencySettings
from .calibration.result import set_initial_potentials
from .methods import get_method, method_names
from .prepare import prepare


def applicable_methods(model: nn.Module) -> list[str]:
    """The registered methods whose activation types fit ``model`` (``qcfs`` only for QCFS-trained
    networks); a method may still refuse a layer when it builds (e.g. ``channel`` after a Linear
    on a 3-d tensor)."""
    with warnings.catch_warnings():  # an inspection: the conversion itself warns (once)
        warnings.simplefilter("ignore")
        acts = activation_layers(prepare(model, maxpool="avg"))
    applicable = []
    for name in method_names():
        if get_method(name).activations is not None and not acts:
            continue
        try:
            get_method(name).check_activations(acts)
        except MethodNotApplicable:
            continue
        applicable.append(name)
    return applicable


class Converter:
    """Convert one ANN with several normalisation methods, calibrating only once.

    Args:
        model: the trained ANN (left untouched).
        calibration: iterable of (x, y) batches or a tensor [N, ...] of inputs; not needed by the
            data-free methods (``model``, ``qcfs``).
        maxpool: ``spiking`` (spiking max-pool gate) or ``avg`` (replace by AvgPool).
        percentile: p for the ``percentile`` and ``channel`` methods (default 99.9).
        exact: exact percentiles (keeps every activation; for small calibration sets).
        spike_norm_window: Spike-Norm's balancing window n in steps (Sengupta 2019: about the
            inference window).
        spike_norm_samples: calibration inputs Spike-Norm simulates (it runs the SNN once per
            layer, so it uses fewer than the statistics pass); ``None`` for all of them.
        input_bound: largest input value, for the model-based method (1 for images in [0, 1]).
        low_latency: options of method ``calibrated``
            (:class:`~spikebridge.convert.calibration.LowLatencySettings`).
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
        spike_norm_window: int = 256,
        spike_norm_samples: int | None = 256,
        input_bound: float = 1.0,
        low_latency: LowLatencySettings | None = None,
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
        self.spike_norm_window = spike_norm_window
        self.spike_norm_samples = spike_norm_samples
        self.input_bound = input_bound
        self.low_latency = low_latency or LowLatencySettings(progress=progress, seed=seed)
        self.stats_: CalibrationStatistics | None = None
        self.statistics_seconds_ = 0.0
        self._scales: dict[tuple[str, int | None], dict[str, Tensor]] = {}

    def with_percentile(self, percentile: float) -> Converter:
        """A converter for another p that shares this one's prepared model and statistics."""
        other = copy.copy(self)
        other.percentile = percentile
        other.stats_ = self.statistics() if self.calibration is not None else None
        other._scales = {
            k: s for k, s in self._scales.items() if not get_method(k[0]).uses_percentile
        }
        return other

    def statistics(self) -> CalibrationStatistics:
        """Activation statistics of the calibration data (computed on first use)."""
        if self.stats_ is None:
            if self.calibration is None:
                raise ValueError(
                    "this method needs calibration data: pass `calibration` (a data loader)"
                )
            start = time.perf_counter()
            self.stats_ = calibrate(
                self.prepared_, self.calibration, self.device, self.exact, self.progress
            )
            self.statistics_seconds_ = time.perf_counter() - start
        return self.stats_

    def scales(self, method: str, timesteps: int | None = None) -> dict[str, Tensor]:
        """Thresholds per activation layer for ``method`` (see :data:`METHODS`), cached per method
        (and per target T for a ``per_timesteps`` method, which needs ``timesteps``)."""
        entry = get_method(method)
        if entry.per_timesteps and timesteps is None:
            raise ValueError(f"method {method!r} builds one network per T: pass timesteps")
        key = (method, timesteps if entry.per_timesteps else None)
        if key not in self._scales:
            entry.check_activations(activation_layers(self.prepared_))
            self._scales[key] = entry.build(self, key[1])
        return {name: value.clone() for name, value in self._scales[key].items()}

    def build(
        self,
        method: str = "channel",
        reset: str = "subtract",
        encoding: str = "analog",
        initial_potential: float | None = None,
        chunk_size: int | None = None,
        negative_spikes: bool | None = None,
        timesteps: int | None = None,
    ) -> SpikingNetwork:
        """The spiking network for ``method`` (for a ``per_timesteps`` method: the one built for
        ``timesteps`` steps).

        ``initial_potential`` (u[0] / theta) and ``negative_spikes`` default to the method's own
        (and, for a method with per-layer ``potentials`` such as calibrated, to those)
        (:class:`~spikebridge.convert.methods.ThresholdMethod`): 0.5 and signed IF neurons for
        qcfs, where they remove the unevenness error that keeps plain IF neurons far from the
        ANN at T = L (docs/normalization.md; Wang 2022, Hu 2023), else 0 and the papers' IF neuron.
        """
        entry = get_method(method)
        own_potentials = initial_potential is None and entry.potentials is not None
        if initial_potential is None:
            initial_potential = entry.initial_potential
        if negative_spikes is None:
            negative_spikes = entry.negative_spikes
        # the model first: a method that calibrates per kind of neuron then has the thresholds
        model = (
            entry.model(self, timesteps, negative_spikes)
            if entry.model is not None
            else self.prepared_
        )
        scales = self.scales(method, timesteps)
        module = build_spiking_module(
            model,
            scales,
            reset,
            initial_potential,
            self.maxpool,
            method,
            negative_spikes,
            entry.max_pool_rule,
        )
        if own_potentials:
            set_initial_potentials(module, entry.potentials(self, timesteps, negative_spikes))
        return SpikingNetwork(module, make_encoder(encoding, self.seed), chunk_size).to(self.device)


def convert_model(
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
    spike_norm_window: int = 256,
    spike_norm_samples: int | None = 256,
    negative_spikes: bool | None = None,
    timesteps: int | None = None,
) -> SpikingNetwork:
    """Convert a trained ANN into a :class:`SpikingNetwork` in one call.

    ``method`` is one of :data:`METHODS`; ``spike_norm_window``/``spike_norm_samples`` configure
    Spike-Norm (see :class:`Converter`); ``timesteps`` is the target T of a ``per_timesteps``
    method.

    Example:
        >>> snn = convert_model(ann, calib_loader, method="channel")       # doctest: +SKIP
        >>> sim = snn.simulate(images, timesteps=32)                 # doctest: +SKIP
        >>> sim.accuracy(labels)  # [32] accuracy after every step    # doctest: +SKIP
    """
    converter = Converter(
        model,
        calibration,
        maxpool,
        percentile,
        device,
        seed=seed,
        spike_norm_window=spike_norm_window,
        spike_norm_samples=spike_norm_samples,
    )
    return converter.build(
        method, reset, encoding, initial_potential, chunk_size, negative_spikes, timesteps
    )
