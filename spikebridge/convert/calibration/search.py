"""The per-channel threshold search on the quantised twin, layer by layer (issue 11, step 1).

Per channel c, theta_c = alpha_c * m_c with m_c the channel's largest input and alpha_c the grid
value minimising the quantisation error against the float ANN's activation; one common factor
beta is then chosen on the next layer's actual reconstruction error (a partial twin pass per
candidate). Shapes: activation inputs [N, C, ...] or [N, F]; thresholds 0-d or [C].
"""

from __future__ import annotations

import torch
from torch import Tensor, fx, nn

from ...engine import graph as g
from ...engine.graph import set_submodule
from ..quantised_twin import TwinQuantiser, snn_threshold
from .bias import correct_biases
from .graph import CalibrationGraph, FloatReference, PartialGraph, capture
from .result import LayerCalibration
from .settings import LowLatencySettings
from .stats import relative_error


def per_channel_allowed(gm: fx.GraphModule, graph: CalibrationGraph, name: str, x: Tensor) -> bool:
    """Channels on dim 1: a conv's output, or a linear layer's [B, F] output."""
    if x.dim() == 2:
        return True
    feeding = g.feeding_synaptic_layers(gm, graph.nodes[name])
    return not any(isinstance(gm.get_submodule(layer), nn.Linear) for layer in feeding)


def channel_search(
    act: nn.Module,
    x: Tensor,
    target: Tensor,
    timesteps: int,
    alphas: tuple[float, ...],
    centred: bool = False,
) -> Tensor:
    """[C] thresholds minimising each channel's quantisation error against the float activation
    (``centred``: its variance, the part that bias correction of the next layer leaves)."""
    flat = x.transpose(0, 1).reshape(x.shape[1], -1) if x.dim() > 1 else x.reshape(1, -1)
    goal = act(target)
    goal = goal.transpose(0, 1).reshape(goal.shape[1], -1) if goal.dim() > 1 else goal.view(1, -1)
    peak = flat.amax(1)
    alive = peak > 0
    peak = torch.where(alive, peak, peak[alive].mean() if alive.any() else torch.ones(()))
    best = torch.full_like(peak, float("inf"))
    chosen = peak.clone()
    for alpha in alphas:
        theta = (alpha * peak).unsqueeze(1)
        q = (
            torch.floor(flat * (timesteps / theta) + 0.5)
            .clamp_(0, timesteps)
            .mul_(theta / timesteps)
        )
        diff = q.sub_(goal)
        err = diff.pow(2).mean(1)
        if centred:
            err -= diff.mean(1).pow(2)
        better = err < best
        best = torch.where(better, err, best)
        chosen = torch.where(better, alpha * peak, chosen)
    return chosen


def calibrate_layer(
    twin: fx.GraphModule,
    reference: FloatReference,
    graph: CalibrationGraph,
    name: str,
    act: nn.Module,
    x: Tensor,
    timesteps: int,
    settings: LowLatencySettings,
) -> LayerCalibration:
    """Search the layer's thresholds on the twin (a partial pass per candidate), then correct
    the next layers' biases."""
    consumers = graph.consumers(name)
    size = settings.batch_size
    floats = reference.get([name, *consumers])
    target = {c: floats[c] for c in consumers}
    part = PartialGraph(twin, name, consumers)
    kept = part.prefix(x, size)
    xq = part.start_inputs(kept)
    # the mean of a channel's error reaches the next layers as a shift bias correction removes
    centre = settings.bias_correction and all(graph.producer(c) for c in consumers)
    if settings.per_channel and per_channel_allowed(twin, graph, name, xq):
        theta = channel_search(act, xq, floats[name], timesteps, settings.alphas, centre)
    else:
        flat_x, flat_f = xq.reshape(-1, 1), floats[name].reshape(-1, 1)
        theta = channel_search(act, flat_x, flat_f, timesteps, settings.alphas, centre)
        theta = theta.reshape(())
    quantiser = TwinQuantiser(act, snn_threshold(name, act, theta), timesteps)
    set_submodule(twin, name, quantiser.to(xq.device))
    # candidates are judged by the error bias correction will leave
    centred = [c for c in consumers if graph.producer(c)] if settings.bias_correction else []
    best: tuple[float, float, dict[str, Tensor]] | None = None
    for beta in settings.betas:
        quantiser.set_threshold(snn_threshold(name, act, beta * theta))
        out = part.suffix(kept)
        error = relative_error(out, target, centred)
        if best is None or error < best[0]:
            best = (error, beta, out)
    error, beta, out = best
    quantiser.set_threshold(snn_threshold(name, act, beta * theta))
    corrected: list[str] = []
    if settings.bias_correction:
        corrected = correct_biases(twin, graph, out, target)
        if corrected:
            inside = all(graph.nodes[p] in part.dependent for p in corrected)
            out = part.suffix(kept) if inside else capture(twin, x, consumers, size)
            error = relative_error(out, target)
    return LayerCalibration(name, beta, error, corrected)
