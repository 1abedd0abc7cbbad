"""The NIR graph being written by :func:`~spikebridge.interop.export_nir`: its nodes and edges,
the values flowing between them with their spike amplitudes, and the export's errors.

A converted IF neuron emits spikes of amplitude theta (SPEC 1.3, second form); NIR's IF emits unit
spikes. Every value is therefore tracked with the factor that turns what the NIR graph carries into
what spikebridge computes (:class:`ExportValue`). The amplitude moves into the weights of the
conv/linear layer that reads the spikes (:func:`weights_with_amplitude`, exact in float64), or into
a ``Scale`` node where spikes meet a residual addition (:meth:`ExportGraph.ann_units`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .nir_metadata import node_metadata


class NIRExportWarning(UserWarning):
    """A node's meaning needs spikebridge's metadata; a reader that ignores it computes another
    network. The message names the node and what differs."""


class NIRExportError(ValueError):
    """The network cannot be written as NIR (the message names the layer and what to do), or
    ``strict=True`` refused a node that needs metadata."""


@dataclass
class ExportValue:
    """What an fx node's output is in the NIR graph: the sum of the outputs of ``sources``, times
    ``amplitude`` (None: 1) to give spikebridge's value. ``shape`` excludes the batch."""

    sources: list[str]
    shape: tuple[int, ...]
    amplitude: Tensor | None = None  # full shape, float32


@dataclass
class ExportGraph:
    """The nodes and edges written so far (``nir``: the imported ``nir`` package), the nodes
    whose meaning needs spikebridge's metadata (``lossy``: name, why) and the Scale nodes already
    made for values that meet in ANN units."""

    nir: Any
    nodes: dict[str, Any] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    lossy: list[tuple[str, str]] = field(default_factory=list)
    in_ann_units: dict[int, ExportValue] = field(default_factory=dict)

    def add(self, name: str, node: Any, inputs: list[str]) -> str:
        if name in self.nodes:
            raise NIRExportError(f"two layers map to the NIR node name {name!r}")
        self.nodes[name] = node
        self.edges += [(src, name) for src in inputs]
        return name

    def ann_units(self, value: ExportValue) -> ExportValue:
        """``value`` without amplitude: unit spikes meet a Scale node that restores theta."""
        if value.amplitude is None:
            return value
        key = id(value)
        if key not in self.in_ann_units:
            name = "+".join(value.sources) + ".amplitude"
            node = self.nir.Scale(
                scale=value.amplitude.double().numpy(),
                metadata=node_metadata(op="spike_amplitude"),
            )
            self.add(name, node, value.sources)
            self.in_ann_units[key] = ExportValue([name], value.shape)
        return self.in_ann_units[key]


def full_amplitude(values: Tensor, shape: tuple[int, ...]) -> Tensor:
    """A scalar or per-channel [C] tensor broadcast to the full (unbatched) ``shape``."""
    v = values.detach().float().cpu()
    if v.dim() == 0:
        return v.expand(shape).clone()
    return v.view(-1, *([1] * (len(shape) - 1))).expand(shape).clone()


def channel_amplitude(value: ExportValue, layer: str) -> Tensor:
    """The per-channel amplitude [C] of a value whose amplitude is constant over positions."""
    amp = value.amplitude
    assert amp is not None
    per_channel = amp.reshape(amp.shape[0], -1)[:, 0]
    if not torch.equal(amp, per_channel.view(-1, *([1] * (amp.dim() - 1))).expand_as(amp)):
        raise NIRExportError(
            f"{layer}: the spikes it receives carry amplitudes that vary within a channel, which "
            "cannot be folded into its weights"
        )
    return per_channel


def amplitude_factor(per_input: Tensor, weight_shape: tuple[int, ...], groups: int = 1) -> Tensor:
    """float64 factor, broadcastable to a conv/linear weight of ``weight_shape``, that multiplies
    each weight by the amplitude of the input channel (conv, [C_in]) or feature (linear, [F]) it
    reads. Grouped convolutions read channel g * C_in/groups + j in group g."""
    amp = torch.as_tensor(per_input).double().reshape(-1)
    if len(weight_shape) > 2:
        out_per_group = weight_shape[0] // groups
        in_per_group = weight_shape[1]
        if amp.numel() != in_per_group * groups:
            raise NIRExportError(
                f"{amp.numel()} input amplitudes for a convolution reading {in_per_group * groups} "
                "channels"
            )
        group = torch.arange(weight_shape[0]).div(out_per_group, rounding_mode="floor")
        index = group[:, None] * in_per_group + torch.arange(in_per_group)[None, :]
        return amp[index].view(*weight_shape[:2], *([1] * (len(weight_shape) - 2)))
    if amp.numel() != weight_shape[1]:
        raise NIRExportError(
            f"{amp.numel()} input amplitudes for a linear layer reading {weight_shape[1]} features"
        )
    return amp[None, :]


def weights_with_amplitude(
    layer: str, weight: Tensor, value: ExportValue, groups: int = 1
) -> tuple[np.ndarray, np.ndarray | None]:
    """The layer's weights times the amplitude of its input (float64, exact), and that amplitude
    per input channel/feature (None when the input carries none)."""
    w = weight.detach().cpu()
    if value.amplitude is None:
        return w.numpy(), None
    per_input = (
        channel_amplitude(value, layer) if w.dim() > 2 else value.amplitude.reshape(-1).clone()
    )
    try:
        factor = amplitude_factor(per_input, tuple(w.shape), groups)
    except NIRExportError as err:
        raise NIRExportError(f"{layer}: {err}") from None
    return (w.double() * factor).numpy(), per_input.numpy()


__all__ = [
    "ExportGraph",
    "ExportValue",
    "NIRExportError",
    "NIRExportWarning",
    "amplitude_factor",
    "channel_amplitude",
    "full_amplitude",
    "weights_with_amplitude",
]
