"""Directly trained SNNs built from the same specs as the ANNs (Zheng et al. 2021, SPEC 2.5).

:func:`build_direct_snn` calls :func:`spikebridge.models.build_model` with LIF neurons as activations and
tdBN as norms, so a direct SNN has exactly the conv and linear layers of the ANN of the same name
and width (cnn, vgg11, resnet20, resnet19 with the tdBN residual block and alpha = 1/sqrt(2) at
junctions). The result is a :class:`~spikebridge.engine.network.SpikingNetwork`: the encoding layer is the
first conv fed the analog input at every step, and the decoding layer is the last linear layer,
whose per-step outputs are averaged over T (Q = (1/T) sum_t M o[t]).
"""

from __future__ import annotations

from typing import Any

from ..engine.encoding import ENCODINGS, make_encoder
from ..engine.lif import LIFNeuron
from ..engine.network import SpikingNetwork
from ..models import MODEL_NAMES, build_model, no_norm
from .tdbn import tdbn_factory


class DirectSNN(SpikingNetwork):
    """A :class:`SpikingNetwork` made by :func:`build_direct_snn`; ``spec`` records how to rebuild it."""

    def __init__(
        self, module, encoder=None, chunk_size=None, spec: dict[str, Any] | None = None
    ) -> None:
        super().__init__(module, encoder, chunk_size)
        self.spec = dict(spec or {})


def build_direct_snn(
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
    encoder = make_encoder(encoding)
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


__all__ = ["DirectSNN", "build_direct_snn"]
