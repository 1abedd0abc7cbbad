"""Bias correction (Nagel et al. 2019; Li et al. 2021, "A free lunch from ANN"): the mean shift,
per channel, of each next layer's input against the float ANN is subtracted from the bias of the
conv/linear layer that produces it. Shapes: inputs [N, C, ...] or [N, F]; biases [C]."""

from __future__ import annotations

import torch
from torch import Tensor, fx, nn

from .graph import CalibrationGraph
from .stats import channel_mean


@torch.no_grad()
def correct_biases(
    twin: fx.GraphModule, graph: CalibrationGraph, out: dict[str, Tensor], target: dict[str, Tensor]
) -> list[str]:
    corrected = []
    for consumer, value in out.items():
        producer = graph.producer(consumer)
        if producer is None:
            continue
        layer = twin.get_submodule(producer)
        shift = channel_mean(value - target[consumer])
        if layer.bias is None:
            zeros = torch.zeros(layer.weight.shape[0], device=layer.weight.device)
            layer.bias = nn.Parameter(zeros, requires_grad=False)
        if layer.bias.shape != shift.shape:
            continue
        layer.bias -= shift.to(layer.bias)
        corrected.append(producer)
    return corrected
