"""``estimate_energy``: the energy of one inference of a network under one energy model."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn

from ..engine.encoding import EventEncoder
from ..engine.network import SpikingNetwork
from ..evaluation import Evaluation, evaluate
from .base import EnergyModel, get_energy_model
from .counts import NetworkCounts, ann_counts, snn_counts

LAYER_TABLE_COLUMNS = ["layer", "module", "kind", "component", "energy_pJ"]


@dataclass
class EnergyReport:
    """Energy of one inference (the mean over the images counted).

    Attributes:
        model: the energy model's name.
        total_pj: every component, pJ.
        breakdown_pj: component -> pJ (the model's own components first, then those outside
            its source's scope: pooling, residual, leak, signed, readout).
        paper_pj: the components of the model's source only.
        layers: one row per layer and component: layer, module, kind, component, energy_pJ.
        counts: what was priced (:class:`~spikebridge.energy.counts.NetworkCounts`).
    """

    model: str
    total_pj: float
    breakdown_pj: dict[str, float]
    paper_pj: float
    layers: pd.DataFrame
    counts: NetworkCounts


def price(model: EnergyModel | str, counts: NetworkCounts) -> EnergyReport:
    """Price ``counts`` with ``model`` (a name or an instance)."""
    model = get_energy_model(model)
    terms = model.layer_energy(counts)
    kinds = {layer.name: (layer.module, layer.kind) for layer in counts.layers}
    kinds.update({n.name: (n.module, "neuron") for n in counts.neurons})
    rows = [
        {
            "layer": t.layer,
            "module": kinds.get(t.layer, ("", t.layer))[0],
            "kind": kinds.get(t.layer, ("", t.layer))[1],
            "component": t.component,
            "energy_pJ": float(t.pj),
        }
        for t in terms
    ]
    table = pd.DataFrame(rows, columns=LAYER_TABLE_COLUMNS)
    table = table.groupby(["layer", "module", "kind", "component"], sort=False, as_index=False)[
        "energy_pJ"
    ].sum()
    breakdown: dict[str, float] = {c: 0.0 for c in model.paper_components}
    for t in terms:
        breakdown[t.component] = breakdown.get(t.component, 0.0) + float(t.pj)
    paper = sum(v for k, v in breakdown.items() if k in model.paper_components)
    return EnergyReport(model.name, sum(breakdown.values()), breakdown, paper, table, counts)


def count_energy_inputs(
    network: nn.Module, inputs: Tensor, timesteps: int | None = None, bits: int = 32
) -> tuple[NetworkCounts, Evaluation]:
    """Counts of one inference of ``network`` on ``inputs`` (mean over the batch).

    A :class:`SpikingNetwork` takes a [B, ...] batch with ``timesteps`` (its encoder applied) or
    a [T, B, ...] sequence fed as it is (``timesteps`` None); any other module is an ANN and
    takes [B, ...]; ``bits`` is an ANN's activation width (a quantised ANN: fewer than 32).
    """
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a tensor, got {type(inputs).__name__}")
    if isinstance(network, SpikingNetwork):
        if timesteps is None:
            if inputs.dim() < 3:
                raise ValueError(
                    f"inputs of shape {tuple(inputs.shape)}: without timesteps a spiking network "
                    "takes a [T, B, ...] sequence; pass timesteps=T for a [B, ...] batch"
                )
            steps = inputs.shape[0]
            runner = copy.copy(network)
            runner._modules = dict(network._modules)
            runner.encoder = EventEncoder()
            batch = inputs.transpose(0, 1)
        else:
            runner, steps, batch = network, timesteps, inputs
        labels = torch.zeros(batch.shape[0], dtype=torch.long)
        ev = evaluate(runner, [(batch, labels)], steps, count_ops=True)
        return snn_counts(ev, network), ev
    if timesteps is not None:
        raise ValueError(
            f"timesteps={timesteps!r} given for a {type(network).__name__}: an ANN runs once "
            "(timesteps=None); convert it first to estimate a spiking network"
        )
    labels = torch.zeros(inputs.shape[0], dtype=torch.long)
    ev = evaluate(network, [(inputs, labels)], None, count_ops=True)
    return ann_counts(ev, bits), ev


def estimate_energy(
    network: nn.Module,
    inputs: Tensor,
    energy_model: EnergyModel | str = "lemaire",
    timesteps: int | None = None,
    bits: int = 32,
) -> EnergyReport:
    """Energy of one inference of ``network`` under ``energy_model``, the mean over ``inputs``.

    Args:
        network: an ANN (any module the converter accepts; [B, ...] -> [B, K]) or a
            :class:`SpikingNetwork`.
        inputs: [B, ...] images; for a spiking network with ``timesteps`` None, a [T, B, ...]
            sequence fed as it is (no encoder).
        energy_model: a name of :data:`~spikebridge.energy.ENERGY_MODELS` (``ops``,
            ``lemaire``, ``reuse``, ``loihi``) or an instance with its own constants.
        timesteps: T for a [B, ...] batch given to a spiking network (its encoder applied).
        bits: an ANN's activation width: a quantised ANN (:mod:`.fair_ann`) is priced with
            integer operations and buffers of that width.

    Returns:
        :class:`EnergyReport` with ``total_pj``, ``breakdown_pj`` and the per-layer ``layers``
        table. It does not depend on the batch size (every count is per image).

    Example:
        >>> report = estimate_energy(snn, images[:16], "lemaire", timesteps=8)   # doctest: +SKIP
        >>> report.total_pj, report.breakdown_pj["memory_potential"]             # doctest: +SKIP
    """
    model = get_energy_model(energy_model)
    counts, _ = count_energy_inputs(network, inputs, timesteps, bits)
    return price(model, counts)


__all__ = ["EnergyReport", "count_energy_inputs", "estimate_energy", "price"]
