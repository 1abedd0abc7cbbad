"""Channel-wise normalisation (Kim et al. 2020, Spiking-YOLO): one threshold per channel."""

from __future__ import annotations

import torch
from torch import nn

from ...engine.graph import MethodNotApplicable, feeding_synaptic_layers
from ...normalization import activation_layers, channel_norm
from ...normalization.calibrate import input_batches
from . import ThresholdMethod, register
from .percentile import PercentileSettings


def thresholds(source, settings: PercentileSettings):
    """The p-th percentile of each channel's positive calibration activations."""
    check_channel_axes(source.prepared, source.calibration, source.device)
    return channel_norm(source.statistics(), settings.percentile)


@torch.no_grad()
def check_channel_axes(gm, calibration, device) -> None:
    """Channel-wise thresholds apply along dim 1; refuse layers whose channels lie elsewhere.

    A Linear layer applied to a [B, L, F] tensor (features on the last axis) feeds an
    activation whose dim 1 is not a channel axis: per-channel thresholds would be per
    position, and would not fit inputs of another length.
    """
    if calibration is None:
        return
    found: dict[str, int] = {}
    acts = activation_layers(gm)

    def record(name: str):
        def hook(_module, _inputs, out) -> None:
            found.setdefault(name, out.dim())

        return hook

    handles = [gm.get_submodule(name).register_forward_hook(record(name)) for name in acts]
    try:
        batch = next(iter(input_batches(calibration)), None)
        if batch is None:
            return
        gm(batch[:1].to(device))
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


register(
    ThresholdMethod(
        name="channel",
        paper="Kim 2020",
        help="p-th percentile of each channel's calibration activations (--percentile)",
        plot_label="channel-wise (Kim 2020)",
        build=thresholds,
        settings=PercentileSettings,
        calibrates=True,
        uses_percentile=True,
        order=40,
    )
)
