"""The conversion route's public face: prepare once, calibrate once, build an SNN per method.

The :class:`Converter` keeps the prepared ANN and the calibration statistics and builds
networks; what each method needs to know is in its own settings
(:class:`~spikebridge.convert.methods.MethodSettings`), given per method name.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from ..engine.graph import MethodNotApplicable
from ..engine.network import SpikingNetwork
from ..normalization import calibrate
from ..normalization.calibrate import CalibrationStatistics, activation_layers
from ..settings import ConversionSettings, SimulationSettings
from .build import spiking_network
from .methods import MethodInput, MethodOutput, MethodSettings, get_method, method_names
from .prepare import prepare

_CONVERSION, _SIMULATION = ConversionSettings(), SimulationSettings()  # the defaults' one home


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
    """Convert one ANN with several threshold methods, calibrating only once.

    Args:
        model: the trained ANN (left untouched).
        calibration: iterable of (x, y) batches or a tensor [N, ...] of inputs; not needed by the
            data-free methods (``model``, ``qcfs``).
        maxpool: ``spiking`` (spiking max-pool gate) or ``avg`` (replace by AvgPool).
        device: where the networks run.
        exact: exact percentiles (keeps every activation; for small calibration sets).
        progress: tqdm progress bars.
        seed: seed of the encoders and of the methods that draw at random.
        settings: method name -> its settings (e.g. ``{"spike-norm": SpikeNormSettings(window=64)}``);
            a method not named uses its settings' defaults.

    Attributes:
        prepared_: the prepared ANN. stats_: the calibration statistics (after the first use).
        outputs_: (method, settings, target T, kind of neuron) -> what the method gave.
    """

    def __init__(
        self,
        model: nn.Module,
        calibration: Iterable | Tensor | None = None,
        maxpool: str = _CONVERSION.maxpool,
        device: torch.device | str = "cpu",
        exact: bool = False,
        progress: bool = False,
        seed: int = 0,
        settings: Mapping[str, MethodSettings] | None = None,
    ) -> None:
        self.model = model
        self.calibration = calibration
        self.maxpool = maxpool
        self.device = torch.device(device)
        self.exact = exact
        self.progress = progress
        self.seed = seed
        self.settings: dict[str, MethodSettings] = dict(settings or {})
        self.prepared_ = prepare(model, maxpool=maxpool).to(self.device)
        self.stats_: CalibrationStatistics | None = None
        self.statistics_seconds_ = 0.0
        self.outputs_: dict[tuple, MethodOutput] = {}

    def settings_of(self, method: str) -> MethodSettings:
        """The settings ``method`` builds with: the given ones, else its defaults."""
        entry = get_method(method)
        settings = self.settings.get(method)
        if settings is None:
            return entry.settings()
        if not isinstance(settings, entry.settings):
            raise TypeError(
                f"method {method!r} takes {entry.settings.__name__}, got {type(settings).__name__}"
            )
        return settings

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

    def output(
        self,
        method: str,
        target: int | None = None,
        negative_spikes: bool | None = None,
        settings: MethodSettings | None = None,
        spike_levels: int = 1,
    ) -> MethodOutput:
        """What ``method`` gives with ``settings`` (default :meth:`settings_of`) for target T
        ``target`` (a ``per_timesteps`` method needs one), ``negative_spikes`` neurons
        (default: the method's) and graded spikes of ``spike_levels`` units (a ``per_timesteps``
        method calibrates for K*T levels; the others' thresholds do not depend on K); built
        once per distinct request."""
        entry = get_method(method)
        if entry.per_timesteps and target is None:
            raise ValueError(f"method {method!r} builds one network per T: pass target")
        settings = self.settings_of(method) if settings is None else settings
        if negative_spikes is None:
            negative_spikes = entry.negative_spikes
        target = target if entry.per_timesteps else None
        kind = negative_spikes if entry.per_neuron else None
        levels = spike_levels if entry.per_timesteps else 1
        key = (method, settings, target, kind) + ((levels,) if levels > 1 else ())
        if key not in self.outputs_:
            entry.check_activations(activation_layers(self.prepared_))
            other = (
                self.outputs_.get((method, settings, target, not kind, *key[4:]))
                if entry.per_neuron
                else None
            )
            source = MethodInput(
                self.prepared_, self.calibration, self.statistics, self.device, self.seed,
                self.maxpool, self.progress, target, negative_spikes, other, levels,
            )  # fmt: skip
            built = entry.build(source, settings)
            self.outputs_[key] = built if isinstance(built, MethodOutput) else MethodOutput(built)
        return self.outputs_[key]

    def scales(
        self, method: str, target: int | None = None, settings: MethodSettings | None = None
    ) -> dict[str, Tensor]:
        """Thresholds per activation layer for ``method`` (a copy; ``target``: the target T
        of a ``per_timesteps`` method)."""
        thresholds = self.output(method, target, settings=settings).thresholds
        return {name: value.clone() for name, value in thresholds.items()}

    def build(
        self,
        method: str = "channel",
        reset: str = _CONVERSION.reset,
        encoding: str = _SIMULATION.encoding,
        initial_potential: float | None = None,
        chunk_size: int | None = None,
        negative_spikes: bool | None = None,
        target: int | None = None,
        settings: MethodSettings | None = None,
        spike_levels: int = 1,
    ) -> SpikingNetwork:
        """The spiking network for ``method`` (for a ``per_timesteps`` method: the one built for
        target T = ``target``; it is simulated for any T), with ``settings`` (default :meth:`settings_of`).

        ``spike_levels`` = K > 1 gives graded neurons: up to K units of threshold / K per step,
        the levels of a binary network at K*T steps in T (:class:`~spikebridge.engine.neurons.IFNeuron`;
        a ``per_timesteps`` method such as calibrated calibrates its twin at K*T levels).

        ``initial_potential`` (u[0] / theta) and ``negative_spikes`` default to the method's own
        (and, for a method with per-layer potentials such as calibrated, to those)
        (:class:`~spikebridge.convert.methods.ThresholdMethod`): 0.5 and signed IF neurons for
        qcfs, where they remove the unevenness error that keeps plain IF neurons far from the
        ANN at T = L (docs/normalization.md; Wang 2022, Hu 2023), else 0 and the papers' IF neuron.
        """
        entry = get_method(method)
        if negative_spikes is None:
            negative_spikes = entry.negative_spikes
        out = self.output(method, target, negative_spikes, settings, spike_levels)
        potentials = out.potentials if initial_potential is None else None
        return spiking_network(
            out.model if out.model is not None else self.prepared_,
            out.thresholds,
            reset=reset,
            initial_potential=entry.initial_potential
            if initial_potential is None
            else initial_potential,
            maxpool=self.maxpool,
            method=method,
            negative_spikes=negative_spikes,
            max_pool_rule=entry.max_pool_rule,
            potentials=potentials,
            encoding=encoding,
            seed=self.seed,
            chunk_size=chunk_size,
            spike_levels=spike_levels,
        ).to(self.device)


def convert_model(
    model: nn.Module,
    calibration: Iterable | Tensor | None = None,
    method: str = "channel",
    *,
    reset: str = _CONVERSION.reset,
    encoding: str = _SIMULATION.encoding,
    initial_potential: float | None = None,
    maxpool: str = _CONVERSION.maxpool,
    seed: int = 0,
    device: torch.device | str = "cpu",
    chunk_size: int | None = None,
    negative_spikes: bool | None = None,
    target: int | None = None,
    settings: MethodSettings | None = None,
    spike_levels: int = 1,
) -> SpikingNetwork:
    """Convert a trained ANN into a :class:`SpikingNetwork` in one call.

    ``method`` is one of :data:`METHODS`; ``settings`` its settings (e.g.
    ``PercentileSettings(percentile=99.99)``, ``SpikeNormSettings(window=64)``; default: the
    method's defaults); ``target`` is the target T of a ``per_timesteps`` method;
    ``spike_levels`` = K > 1 gives graded spikes of up to K threshold units (see
    :meth:`Converter.build`).

    Example:
        >>> snn = convert_model(ann, calib_loader, method="channel")       # doctest: +SKIP
        >>> sim = snn.simulate(images, timesteps=32)                 # doctest: +SKIP
        >>> sim.accuracy(labels)  # [32] accuracy after every step    # doctest: +SKIP
    """
    converter = Converter(model, calibration, maxpool, device, seed=seed)
    return converter.build(
        method, reset, encoding, initial_potential, chunk_size, negative_spikes, target, settings,
        spike_levels,
    )  # fmt: skip
