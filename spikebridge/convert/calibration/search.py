"""The per-channel threshold search on the quantised twin, layer by layer (issue 11, step 1).

Per channel c, theta_c = alpha_c * m_c with m_c the channel's largest input and alpha_c the grid
value minimising the quantisation error against the float ANN's activation; one common factor
beta is then chosen on the next layer's actual reconstruction error (a partial twin pass per
candidate). Shapes: activation inputs [N, C, ...] or [N, F]; thresholds 0-d or [C].
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, fx, nn

from ...engine import graph as g
from ...engine.graph import set_submodule
from ..quantised_twin import TwinQuantiser, snn_threshold
from .bias import correct_biases
from .graph import CalibrationGraph, FloatReference, PartialGraph, capture
from .refine import refine_channels
from .result import LayerCalibration
from .stats import channel_columns, relative_error

if TYPE_CHECKING:
    from ..methods.calibrated import CalibratedSettings


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
    potentials: tuple[float, ...] = (0.5,),
    values: int | None = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Per channel, (theta_c, phi_c) minimising the channel's quantisation error against the
    float activation (``centred``: its variance, the part bias correction of the next layer
    leaves), over theta_c = alpha * (the channel's largest input) for ``alphas`` and
    phi_c = u[0] / theta_c in ``potentials`` (Li et al. 2021's potential calibration: with phi
    free, T = 1 gets a step whose position and height are both chosen).

    x: the twin's input of the activation, target: the float ANN's, both [N, C, ...] (channels
    on dim 1) or [N, F]; ``values``: at most this many entries per channel, a fixed random
    subset (seeded), enter the errors. Returns theta [C] and phi [C].
    """
    flat = channel_columns(x)
    goal = channel_columns(act(target))
    if values is not None and flat.shape[1] > values:
        generator = torch.Generator().manual_seed(seed)
        keep = torch.randperm(flat.shape[1], generator=generator)[:values].to(flat.device)
        flat, goal = flat[:, keep], goal[:, keep]
    peak = flat.amax(1)
    alive = peak > 0
    peak = torch.where(alive, peak, peak[alive].mean() if alive.any() else torch.ones(()))
    best = torch.full_like(peak, float("inf"))
    chosen = peak.clone()
    chosen_phi = torch.full_like(peak, 0.5 if 0.5 in potentials else potentials[0])
    for alpha in alphas:
        theta = (alpha * peak).unsqueeze(1)
        scaled = flat * (timesteps / theta)
        for phi in potentials:
            q = torch.floor(scaled + phi).clamp_(0, timesteps).mul_(theta / timesteps)
            diff = q.sub_(goal)
            err = diff.pow(2).mean(1)
            if centred:
                err -= diff.mean(1).pow(2)
            better = err < best
            best = torch.where(better, err, best)
            chosen = torch.where(better, alpha * peak, chosen)
            chosen_phi = torch.where(better, torch.full_like(peak, phi), chosen_phi)
    return chosen, chosen_phi


def calibrate_layer(
    twin: fx.GraphModule,
    reference: FloatReference,
    graph: CalibrationGraph,
    name: str,
    act: nn.Module,
    x: Tensor,
    timesteps: int,
    settings: CalibratedSettings,
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
    search = dict(
        timesteps=timesteps,
        alphas=settings.alphas,
        centred=centre,
        potentials=settings.potentials,
        values=settings.search_values,
        seed=settings.seed,
    )
    if settings.per_channel and per_channel_allowed(twin, graph, name, xq):
        theta, phi = channel_search(act, xq, floats[name], **search)
    else:
        flat_x, flat_f = xq.reshape(-1, 1), floats[name].reshape(-1, 1)
        theta, phi = channel_search(act, flat_x, flat_f, **search)
        theta, phi = theta.reshape(()), phi.reshape(())
    quantiser = TwinQuantiser(act, snn_threshold(name, act, theta), timesteps, True, phi)
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
    if settings.refine_passes and quantiser.threshold.dim() == 1:

        def snap(candidates: Tensor) -> Tensor:
            return snn_threshold(name, act, candidates.flatten()).reshape(candidates.shape)

        refine_channels(
            quantiser, part, kept, xq, target, centred, settings.potentials,
            settings.refine_passes, settings.search_values, settings.seed, snap,
        )  # fmt: skip
        out = part.suffix(kept)
        error = relative_error(out, target, centred)
    corrected: list[str] = []
    if settings.bias_correction:
        corrected = correct_biases(twin, graph, out, target)
        if corrected:
            inside = all(graph.nodes[p] in part.dependent for p in corrected)
            out = part.suffix(kept) if inside else capture(twin, x, consumers, size)
            error = relative_error(out, target)
    return LayerCalibration(name, beta, error, corrected)
