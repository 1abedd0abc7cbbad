"""Ways of choosing the scale lambda of each neuron layer (SPEC 1.3-1.4).

A method is a function returning :data:`Scales`: activation layer name -> lambda, a 0-d tensor
(one threshold per layer) or a [C] tensor (one per channel). After conversion a neuron's threshold
is lambda and its spikes carry amplitude lambda, which is the same network as scaling the weights
by lambda_{l-1}/lambda_l with unit thresholds (SPEC 1.3).
"""

from __future__ import annotations

import torch
from torch import Tensor, fx

from ..engine import graph as g
from ..settings import DEFAULT_PERCENTILE, check_percentile
from .calibrate import CalibrationStatistics

Scales = dict[str, Tensor]


def _positive(value: Tensor, fallback: Tensor | float) -> Tensor:
    """Replace zero scales (layers or channels that never fired in calibration) by ``fallback``."""
    fallback = torch.as_tensor(fallback, dtype=torch.float32)
    value = value.float()
    return torch.where(value > 0, value, fallback.expand_as(value) if fallback.dim() else fallback)


def _layer_fallback(value: float) -> float:
    return value if value > 0 else 1.0


def max_weight(gm: fx.GraphModule, layer: str) -> float:
    """Largest weight of the conv/linear layers feeding activation ``layer``."""
    node = next(n for n in gm.graph.nodes if n.op == "call_module" and n.target == layer)
    weights = [
        gm.get_submodule(name).weight.detach().max().item()
        for name in g.feeding_synaptic_layers(gm, node)
    ]
    return max(weights, default=0.0)


def max_norm(stats: CalibrationStatistics, model: fx.GraphModule) -> Scales:
    """Data-based normalisation (Diehl et al. 2015): lambda_l = max(max a_l, max W_l)."""
    return {
        name: torch.tensor(_layer_fallback(max(s.layer_max, max_weight(model, name))))
        for name, s in stats.layers.items()
    }


def percentile_norm(stats: CalibrationStatistics, p: float = DEFAULT_PERCENTILE) -> Scales:
    """Robust normalisation (Rueckauer et al. 2017): lambda_l = p-th percentile of a_l > 0."""
    _check_p(p)
    return {
        name: torch.tensor(_layer_fallback(s.percentile(p))) for name, s in stats.layers.items()
    }


def channel_norm(stats: CalibrationStatistics, p: float = DEFAULT_PERCENTILE) -> Scales:
    """Channel-wise normalisation (Kim et al. 2020, Spiking-YOLO): lambda_l[j] = p-th percentile of channel j.

    Channels that never fired during calibration take the layer's percentile.
    """
    _check_p(p)
    scales = {}
    for name, s in stats.layers.items():
        layer = _layer_fallback(s.percentile(p))
        scales[name] = _positive(s.channel_percentile(p), layer)
    return scales


def _check_p(p: float) -> None:
    check_percentile(p)
