"""Optional reconstruction (AdaRound, Nagel 2020; BRECQ, Li 2021; Li et al. 2021's advanced
pipeline): Adam on a unit's thresholds and the following layers' biases (and weights), the
rounding passed straight through. Shapes: calibration images [N, ...]."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, fx

from ...progress import progress_bar
from .errors import ReconstructionDiverged
from .graph import CalibrationGraph, FloatReference, PartialGraph
from .stats import relative_error

if TYPE_CHECKING:
    from ..methods.calibrated import CalibratedSettings


def reconstruct(
    twin: fx.GraphModule,
    reference: FloatReference,
    graph: CalibrationGraph,
    unit: list[str],
    x: Tensor,
    settings: CalibratedSettings,
) -> float:
    """Adam on the unit's thresholds (and initial potentials) and the next layers' biases (and
    weights); returns the relative error of the unit's outputs after it (rolled back if it did
    not improve)."""
    exits = sorted({c for n in unit for c in graph.consumers(n) if c not in unit})
    target = reference.get(exits)
    producers = sorted({p for c in exits if (p := graph.producer(c)) is not None})
    producers += [
        p for n in unit[1:] if (p := graph.producer(n)) is not None and p not in producers
    ]
    # the layers before the unit do not change: their outputs are computed once
    part = PartialGraph(twin, unit[0], exits)
    kept = part.prefix(x, settings.batch_size)
    cached = {node: torch.cat([env[node] for env in kept]) for node in part.boundary}
    producers = [p for p in producers if graph.nodes[p] in part.dependent]
    quantised = [twin.get_submodule(n) for n in unit]
    params: list[dict] = [{"params": [q.threshold for q in quantised]}]
    if settings.reconstruct_potentials:
        params[0]["params"] += [q.initial_potential for q in quantised]
    for p in producers:
        layer = twin.get_submodule(p)
        if layer.bias is not None:
            params[0]["params"].append(layer.bias)
        if settings.weights:
            params.append(
                {"params": [layer.weight], "lr": settings.learning_rate * settings.weight_lr_scale}
            )
    trained = [t for group in params for t in group["params"]]
    saved = [t.detach().clone() for t in trained]
    before = relative_error(part.suffix(kept), target)
    floor = [twin.get_submodule(n).threshold.detach() * 1e-3 for n in unit]
    for t in trained:
        t.requires_grad_(True)
    optimiser = torch.optim.Adam(params, lr=settings.learning_rate)
    generator = torch.Generator().manual_seed(settings.seed)
    label = ", ".join(unit)
    try:
        for step in progress_bar(
            range(settings.iterations), settings.progress, f"reconstruct {label}"
        ):
            idx = torch.randperm(x.shape[0], generator=generator)[: settings.batch_size]
            values = {node: v[idx.to(v.device)] for node, v in cached.items()}
            goal = {n: v[idx.to(v.device)] for n, v in target.items()}
            out = part.run(values)
            loss = sum(
                (out[n] - goal[n]).pow(2).mean() / goal[n].var().clamp(min=1e-12) for n in exits
            )
            if not torch.isfinite(loss):
                raise ReconstructionDiverged(
                    f"{label}: the reconstruction loss became {float(loss.detach())} at iteration "
                    f"{step + 1}; lower the learning rate ({settings.learning_rate}) or turn "
                    "reconstruction off (iterations=0). Nothing was built"
                )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                for n, low in zip(unit, floor, strict=True):
                    twin.get_submodule(n).threshold.clamp_(min=low)
    finally:
        for t in trained:
            t.requires_grad_(False)
    after = relative_error(part.suffix(kept), target)
    if after >= before:
        with torch.no_grad():
            for t, old in zip(trained, saved, strict=True):
                t.copy_(old)
        return before
    return after
