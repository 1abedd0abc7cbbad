"""Directly trained SNNs built from the same specs as the ANNs (Zheng et al. 2021, SPEC 2.5).

:func:`build_snn` calls :func:`spikebridge.models.build_model` with LIF neurons as activations and
tdBN as norms, so a direct SNN has exactly the conv and linear layers of the ANN of the same name
and width (cnn, vgg11, resnet20, resnet19 with the tdBN residual block and alpha = 1/sqrt(2) at
junctions). The result is a :class:`~spikebridge.network.SpikingNetwork`: the encoding layer is the
first conv fed the analog input at every step, and the decoding layer is the last linear layer,
whose per-step outputs are averaged over T (Q = (1/T) sum_t M o[t]).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..encoding import AnalogEncoder, PoissonEncoder, make_encoder
from ..models import MODEL_NAMES, build_model, no_norm
from ..network import Simulation, SpikingNetwork, default_chunk_size
from .lif import LIFNeuron
from .tdbn import tdbn_factory

ENCODINGS: tuple[str, ...] = ("analog", "poisson", "events")


class EventEncoder:
    """Feeds event data that is already binned in time: x [B, T_data, ...] -> [steps, B, ...].

    Successive calls within one simulation return successive frames; :meth:`reset` (called by
    :meth:`DirectSNN.simulate` and the trainer) goes back to frame 0.
    """

    static = False
    name = "events"

    def __init__(self) -> None:
        self._cursor = 0

    def reset(self) -> None:
        self._cursor = 0

    def __call__(self, x: Tensor, steps: int) -> Tensor:
        if x.dim() < 3:
            raise ValueError(
                f"event input must be [B, T, ...] frames, got shape {tuple(x.shape)}; static images "
                "need the analog or poisson encoder"
            )
        end = self._cursor + steps
        if end > x.shape[1]:
            raise ValueError(
                f"the event input has {x.shape[1]} time bins but step {end} was asked for; bin the "
                "events into at least as many frames as simulation timesteps"
            )
        frames = x[:, self._cursor : end].transpose(0, 1)
        self._cursor = end
        return frames

    def __repr__(self) -> str:
        return "EventEncoder()"


Encoder = AnalogEncoder | PoissonEncoder | EventEncoder


class DirectSNN(SpikingNetwork):
    """A :class:`SpikingNetwork` made by :func:`build_snn`; ``spec`` records how to rebuild it."""

    def __init__(
        self, module, encoder=None, chunk_size=None, spec: dict[str, Any] | None = None
    ) -> None:
        super().__init__(module, encoder, chunk_size)
        self.spec = dict(spec or {})

    def encode(self, x: Tensor, timesteps: int) -> Tensor:
        """A batch from the loader -> the [T, B, ...] input sequence of one training step."""
        if not isinstance(timesteps, int) or timesteps <= 0:
            raise ValueError(f"timesteps must be a positive integer, got {timesteps!r}")
        if hasattr(self.encoder, "reset"):
            self.encoder.reset()
        return self.encoder(x, timesteps)

    def simulate(self, x: Tensor, timesteps: int, record_spikes: bool = False) -> Simulation:
        """As :meth:`SpikingNetwork.simulate`; event input x is [B, T_data, ...] with T_data >= T."""
        if hasattr(self.encoder, "reset"):
            self.encoder.reset()
        if not isinstance(self.encoder, EventEncoder):
            return super().simulate(x, timesteps, record_spikes)
        return self._simulate_events(x, timesteps, record_spikes)

    @torch.no_grad()
    def _simulate_events(self, x: Tensor, timesteps: int, record_spikes: bool) -> Simulation:
        """The chunked simulation for inputs that already have a time axis ([B, T_data, ...])."""
        if not isinstance(timesteps, int) or timesteps <= 0:
            raise ValueError(f"timesteps must be a positive integer, got {timesteps!r}")
        self.reset()
        chunk = self.chunk_size or default_chunk_size(x.device)
        spikes: dict[str, list[Tensor]] = {}
        neurons: dict[str, int] = {}
        handles = []
        if record_spikes:
            for name, neuron in self.neurons().items():
                spikes[name] = []

                def hook(mod, _inp, out, name=name):
                    neurons[name] = out[0].numel()
                    spikes[name].append(out.reshape(mod.steps, -1).ne(0).sum(1))

                handles.append(neuron.register_forward_hook(hook))
        total = None
        readouts = []
        try:
            for start in range(0, timesteps, chunk):
                out = self.forward(self.encoder(x, min(chunk, timesteps - start)))
                cumulative = out.cumsum(0) if total is None else out.cumsum(0) + total
                total = cumulative[-1]
                readouts.append(cumulative)
        finally:
            for h in handles:
                h.remove()
        readout = torch.cat(readouts)
        steps = torch.arange(1, timesteps + 1, device=readout.device, dtype=readout.dtype)
        readout /= steps.view(-1, *([1] * (readout.dim() - 1)))
        return Simulation(readout, {k: torch.cat(v) for k, v in spikes.items()}, neurons)


def build_snn(
    arch: str,
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
    width: float = 1.0,
    threshold: float = 0.5,
    tau_decay: float = 0.25,
    surrogate: str = "rectangular",
    surrogate_width: float = 1.0,
    detach_reset: bool = False,
    norm: bool = True,
    pool: str = "avg",
    encoding: str = "analog",
    chunk_size: int | None = None,
) -> DirectSNN:
    """A directly trainable SNN of architecture ``arch`` (one of ``cnn``, ``vgg11``, ``resnet20``,
    ``resnet19``): LIF neurons (SPEC 2.1-2.2) and tdBN (SPEC 2.3) around the ANN's conv/linear
    layers. ``norm=False`` leaves the norms out (for ablations). ``encoding`` is ``analog``
    (the tdBN encoding layer, default), ``poisson`` or ``events`` (inputs [B, T, ...]).

    Input [T, B, in_channels, image_size, image_size] -> output [T, B, num_classes].
    """
    if arch not in MODEL_NAMES:
        raise ValueError(
            f"the direct route builds {', '.join(MODEL_NAMES)}; got {arch!r} (torchvision models "
            "have no place to put LIF neurons and tdBN)"
        )
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}: choose one of {', '.join(ENCODINGS)}")

    def neuron() -> LIFNeuron:
        return LIFNeuron(threshold, tau_decay, surrogate, surrogate_width, detach_reset)

    neuron()  # validate the neuron settings once, before building
    module = build_model(
        arch,
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        width=width,
        activation=neuron,
        norm=tdbn_factory(threshold) if norm else no_norm,
        pool=pool,
    )
    encoder: Encoder = EventEncoder() if encoding == "events" else make_encoder(encoding)
    spec = dict(
        arch=arch,
        num_classes=num_classes,
        in_channels=in_channels,
        image_size=image_size,
        width=width,
        threshold=threshold,
        tau_decay=tau_decay,
        surrogate=surrogate,
        surrogate_width=surrogate_width,
        detach_reset=detach_reset,
        norm=norm,
        pool=pool,
        encoding=encoding,
    )
    return DirectSNN(module, encoder, chunk_size, spec)


__all__ = ["ENCODINGS", "DirectSNN", "EventEncoder", "build_snn"]
