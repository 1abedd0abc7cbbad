"""The conversion route's public face: prepare once, calibrate once, build an SNN per method."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..activations import QCFS
from ..encoding import make_encoder
from ..network import SpikingNetwork
from ..normalization import calibrate, channel_norm, max_norm, percentile_norm
from ..normalization.calibrate import CalibrationStatistics, _batches, activation_layers
from .build import MethodNotApplicable, build_snn
from .graph import feeding_synaptic_layers
from .prepare import prepare

METHODS: tuple[str, ...] = ("model", "max", "percentile", "channel", "spike-norm", "qcfs")
PERCENTILE_METHODS = ("percentile", "channel")  # the methods whose thresholds depend on p
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
        spike_norm_window: Spike-Norm's balancing window n in steps (Sengupta 2019: about the
            inference window).
        spike_norm_samples: calibration inputs Spike-Norm simulates (it runs the SNN once per
            layer, so it uses fewer than the statistics pass); ``None`` for all of them.
        input_bound: largest input value, for the model-based method (1 for images in [0, 1]).
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
        self.stats_: CalibrationStatistics | None = None
        self._scales: dict[str, dict[str, Tensor]] = {}

    def with_percentile(self, percentile: float) -> Converter:
        """A converter for another p that shares this one's prepared model and statistics."""
        other = copy.copy(self)
        other.percentile = percentile
        other.stats_ = self.statistics() if self.calibration is not None else None
        other._scales = {m: s for m, s in self._scales.items() if m not in PERCENTILE_METHODS}
        return other

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
        """Thresholds per activation layer for ``method`` (see :data:`METHODS`); cached per method."""
        if method not in self._scales:
            self._scales[method] = self._compute_scales(method)
        return {name: value.clone() for name, value in self._scales[method].items()}

    def _compute_scales(self, method: str) -> dict[str, Tensor]:
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
            self._check_channel_axes()
            return channel_norm(self.statistics(), self.percentile)
        if method == "model":
            from ..normalization.model_based import model_based_norm

            return model_based_norm(self.prepared_, self.input_bound)
        if method == "spike-norm":
            from ..normalization.spike_norm import spike_norm

            if self.calibration is None:
                raise ValueError(
                    "spike-norm needs calibration data: pass `calibration` (a data loader)"
                )
            return spike_norm(
                self.prepared_,
                self.calibration,
                device=self.device,
                seed=self.seed,
                timesteps=self.spike_norm_window,
                samples=self.spike_norm_samples,
                maxpool=self.maxpool,
                progress=self.progress,
            )
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")

    @torch.no_grad()
    def _check_channel_axes(self) -> None:
        """Channel-wise thresholds apply along dim 1; refuse layers whose channels lie elsewhere.

        A Linear layer applied to a [B, L, F] tensor (features on the last axis) feeds an
        activation whose dim 1 is not a channel axis: per-channel thresholds would be per
        position, and would not fit inputs of another length.
        """
        if self.calibration is None:
            return
        gm = self.prepared_
        found: dict[str, int] = {}
        acts = activation_layers(gm)

        def record(name: str):
            def hook(_module, _inputs, out) -> None:
                found.setdefault(name, out.dim())

            return hook

        handles = [gm.get_submodule(name).register_forward_hook(record(name)) for name in acts]
        try:
            batch = next(iter(_batches(self.calibration)), None)
            if batch is None:
                return
            gm(batch[:1].to(self.device))
        except (RuntimeError, ValueError):
            return  # a shape mismatch is reported by the calibration pass, with both shapes
        finally:
            for h in handles:
                h.remove()
        nodes = {str(n.target): n for n in gm.graph.nodes if n.op == "call_module"}
        for name, dims in found.items():
            linear = [
                layer
                for layer in feeding_synaptic_layers(gm, nodes[name])
                if isinstance(gm.get_submodule(layer), nn.Linear)
            ]
            if dims > 2 and linear:
                raise MethodNotApplicable(
                    f"{name}: method 'channel' cannot scale this layer: it follows Linear layer "
                    f"{linear[0]!r} applied to a {dims}-d tensor, so its channels lie on the last "
                    "axis, not on dim 1 where per-channel thresholds apply; use 'percentile' "
                    "(layer-wise) for this network"
                )

    def build(
        self,
        method: str = "channel",
        reset: str = "subtract",
        encoding: str = "analog",
        initial_potential: float | None = None,
        chunk_size: int | None = None,
        negative_spikes: bool | None = None,
    ) -> SpikingNetwork:
        """The spiking network for ``method``.

        ``initial_potential`` (u[0] / theta) defaults to 0.5 for qcfs, else 0. ``negative_spikes``
        chooses signed IF neurons that take back spikes later inputs show to be too many (Wang et
        al. 2022; Hu et al. 2023); it defaults to True for qcfs, where it removes the unevenness
        error that keeps plain IF neurons far from the ANN at T = L (docs/normalization.md), and
        to False (the papers' IF neuron) for the other methods.
        """
        if initial_potential is None:
            initial_potential = 0.5 if method == "qcfs" else 0.0
        if negative_spikes is None:
            negative_spikes = method == "qcfs"
        module = build_snn(
            self.prepared_,
            self.scales(method),
            reset,
            initial_potential,
            self.maxpool,
            method,
            negative_spikes,
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
    spike_norm_window: int = 256,
    spike_norm_samples: int | None = 256,
    negative_spikes: bool | None = None,
) -> SpikingNetwork:
    """Convert a trained ANN into a :class:`SpikingNetwork` in one call.

    ``method`` is one of :data:`METHODS`; ``spike_norm_window``/``spike_norm_samples`` configure
    Spike-Norm (see :class:`Converter`).

    Example:
        >>> snn = convert(ann, calib_loader, method="channel")       # doctest: +SKIP
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
    return converter.build(method, reset, encoding, initial_potential, chunk_size, negative_spikes)
