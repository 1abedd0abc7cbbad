"""What calibration returns: per-layer reports and the calibrated network for one target T."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, fx

from ...engine.network import SpikingNetwork
from ..build import spiking_network
from ..quantised_twin import METHOD
from .finetune import FinetuneReport


@dataclass
class LayerCalibration:
    """What calibration chose for one activation layer.

    Attributes:
        name: the activation layer.
        beta: the layer-wise factor chosen on the next layer's error.
        error: relative reconstruction error of the next layer's input (mean over the layers
            it feeds of MSE / variance of the float ANN's input) after threshold search and bias
            correction, and after reconstruction when it ran.
        corrected: the conv/linear layers whose biases were corrected.
        reconstruction_error: the error after reconstruction (None: it did not run).
        snn_corrected: what the SNN correction changed for this layer's input (a bias, or
            ``"<name>.initial_potential"``; None: nothing).
    """

    name: str
    beta: float
    error: float
    corrected: list[str] = field(default_factory=list)
    reconstruction_error: float | None = None
    snn_corrected: str | None = None


@dataclass
class CalibratedResult:
    """The result of :func:`calibrate_target` for one target T.

    Attributes:
        timesteps: the target T.
        prepared: the prepared ANN with corrected biases (and weights): build the network from it.
        thresholds: activation layer -> theta (0-d or [C]).
        initial_potentials: activation layer -> phi = u[0] / theta (0-d or [C]); a layer not
            named starts at theta/2.
        layers: per-layer report.
        seconds: wall time of the calibration.
        cpu_seconds: processor time of the calibration (all threads of this process): the cost
            on an idle machine, which wall time on a shared one overstates.
        negative_spikes: the neurons the SNN correction simulated (signed or plain IF), and
            :meth:`build`'s default.
        searched: the calibration before the SNN correction (None: it did not run; after a
            fine-tune through the network, which skips it, the result itself), from which
            :func:`~spikebridge.convert.calibration.for_neurons` redoes it for the other neurons.
        start: ``"search"`` (the layer-wise search's thresholds and biases) or ``"percentile"``
            (the output check found the percentile twin closer to the float ANN, :mod:`.guard`).
        divergence: the output check's KL divergences, ``{"search": ..., "percentile": ...}``
            (empty: it did not run).
        spike_levels: K, the threshold units one spike carries (graded spikes; 1: binary). The
            twin has K*T levels and :attr:`thresholds` are its thresholds; the network's
            neurons get theta / K and emit up to K units per step (:meth:`build`).
        finetune: the labelled fine-tune's report (None: none ran, post-training only).
    """

    timesteps: int
    prepared: fx.GraphModule
    thresholds: dict[str, Tensor]
    layers: list[LayerCalibration]
    seconds: float
    cpu_seconds: float = 0.0
    initial_potentials: dict[str, Tensor] = field(default_factory=dict)
    negative_spikes: bool = True
    searched: CalibratedResult | None = field(default=None, repr=False)
    start: str = "search"
    divergence: dict[str, float] = field(default_factory=dict)
    spike_levels: int = 1
    finetune: FinetuneReport | None = None

    @property
    def levels(self) -> int:
        """The twin's levels above zero: K*T."""
        return self.timesteps * self.spike_levels

    def twin(self) -> fx.GraphModule:
        """The quantised twin at K*T levels (logits = the network's summed readout / T)."""
        from ..quantised_twin import quantised_twin

        return quantised_twin(
            self.prepared, self.thresholds, self.levels, True, self.initial_potentials
        )

    def build(
        self, negative_spikes: bool | None = None, chunk_size: int | None = None
    ) -> SpikingNetwork:
        """The spiking network: signed IF neurons (equal to the twin wherever no spike is owed
        at T) or plain IF (``negative_spikes=False``; for hardware without signed spikes, not
        exact), by default the kind it was calibrated for (:attr:`negative_spikes`; the other
        kind gets biases corrected for the wrong simulation: use
        :func:`~spikebridge.convert.calibration.for_neurons`), u0 = phi * theta
        (:attr:`initial_potentials`, else theta/2), reset by subtraction, analog input; graded
        with units of theta / K when :attr:`spike_levels` = K > 1."""
        if negative_spikes is None:
            negative_spikes = self.negative_spikes
        return spiking_network(
            self.prepared, self.thresholds, initial_potential=0.5, method=METHOD,
            negative_spikes=negative_spikes, max_pool_rule="running",
            potentials=self.initial_potentials, chunk_size=chunk_size,
            spike_levels=self.spike_levels,
        )  # fmt: skip
