"""Spiking neurons as NIR nodes (Pedersen et al. 2024).

- A converted IF neuron (per-layer or per-channel threshold theta) becomes
  ``IF(v_threshold=theta, r=1, v_reset=0)`` emitting unit spikes; the returned value carries the
  amplitude theta, folded into the next layer. Subtractive reset, an initial potential, negative
  spikes (Wang 2022, Hu 2023) and signed neurons (Kim 2020) are named in the graph's lossy notes.
  A graded neuron (``levels`` K > 1: k = floor(v / theta) units, up to K per step) is written
  as the same IF node with ``levels`` in its metadata (spikebridge's import rebuilds it exactly)
  and a lossy note: NIR has no graded-spike neuron, so strict export refuses it.
- A direct-route LIF neuron (Wu 2018; Zheng 2021: u[t] = tau_decay u[t-1] (1 - o[t-1]) + x[t],
  o[t] = H(u[t] - V_th)) is NIR's LIF discretised with step dt: tau = dt / (1 - tau_decay),
  R = 1 / (1 - tau_decay), v_leak = 0, v_reset = 0 (or CubaLIF with tau_syn = dt, w_in = 1); with
  no leak, NIR's IF.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..engine.lif import LIFNeuron
from ..engine.neurons import SignedIFNeuron
from .nir_export_graph import ExportGraph, ExportValue, full_amplitude
from .nir_metadata import node_metadata


def export_neuron(
    b: ExportGraph,
    name: str,
    mod: nn.Module,
    value: ExportValue,
    shape: tuple[int, ...],
    dt: float,
    lif_node: str,
) -> ExportValue:
    nir = b.nir
    ones = np.ones(shape, dtype=np.float32)
    zeros = np.zeros(shape, dtype=np.float32)
    if isinstance(mod, LIFNeuron):
        facts = node_metadata(
            neuron="LIFNeuron",
            tau_decay=mod.tau_decay,
            threshold=mod.threshold,
            dt=dt,
            spike_condition="u > threshold",
            surrogate=mod.surrogate,
            width=mod.width,
            detach_reset=mod.detach_reset,
        )
        thr = np.full(shape, mod.threshold, dtype=np.float64)
        if mod.tau_decay >= 1.0:  # no leak: NIR's IF (which also fires on v > v_threshold)
            node = nir.IF(r=ones.astype(np.float64), v_threshold=thr, v_reset=zeros, metadata=facts)
        else:
            tau = np.full(shape, dt / (1.0 - mod.tau_decay))
            r = np.full(shape, 1.0 / (1.0 - mod.tau_decay))
            if lif_node == "CubaLIF":
                node = nir.CubaLIF(
                    tau_syn=np.full(shape, dt),
                    tau_mem=tau,
                    r=r,
                    v_leak=np.zeros(shape),
                    v_threshold=thr,
                    v_reset=np.zeros(shape),
                    w_in=np.ones(shape),
                    metadata=facts,
                )
            else:
                node = nir.LIF(
                    tau=tau,
                    r=r,
                    v_leak=np.zeros(shape),
                    v_threshold=thr,
                    v_reset=np.zeros(shape),
                    metadata=facts,
                )
        b.add(name, node, value.sources)
        return ExportValue([name], shape)
    theta = mod.threshold.detach().float().cpu()
    amplitude = full_amplitude(theta, shape)
    threshold_kind = "scalar" if theta.dim() == 0 else "channel"
    levels = int(getattr(mod, "levels", 1))
    graded = {"levels": levels} if levels > 1 else {}  # K = 1: the metadata as before
    if levels > 1:
        b.lossy.append(
            (
                name,
                f"graded spikes: emits k = floor(v / v_threshold) threshold units, up to {levels} "
                "per step, as one spike of value k (NIR has no graded-spike neuron; its IF "
                "fires 0 or 1)",
            )
        )
    if isinstance(mod, SignedIFNeuron):
        facts = node_metadata(
            neuron="SignedIFNeuron",
            threshold_kind=threshold_kind,
            alpha=mod.alpha,
            initial_potential=mod.initial_potential,
            reset="subtract",
            spike_amplitude="v_threshold",
            **graded,
        )
        b.lossy.append(
            (
                name,
                f"signed neuron (Kim 2020): also fires -1 when v <= -v_threshold/{mod.alpha:g} and "
                "resets by subtraction",
            )
        )
    else:
        facts = node_metadata(
            neuron="IFNeuron",
            threshold_kind=threshold_kind,
            reset=mod.reset,
            initial_potential=mod.initial_potential,
            negative_spikes=mod.negative_spikes,
            spike_condition="v >= v_threshold",
            spike_amplitude="v_threshold",
            **graded,
        )
        why = []
        if mod.reset == "subtract":
            why.append("resets by subtracting v_threshold, not to v_reset = 0")
        u0 = torch.as_tensor(mod.initial_potential)
        if bool(u0.ne(0).any()):
            start = f"{float(u0):g}" if u0.dim() == 0 else "a per-channel fraction of"
            why.append(f"starts at v = {start} * v_threshold, not 0")
        if mod.negative_spikes:
            why.append("fires -1 to take back an earlier spike when v < 0 (Wang 2022, Hu 2023)")
        if why:
            b.lossy.append((name, "; ".join(why)))
    node = nir.IF(
        r=ones,
        v_threshold=amplitude.numpy(),
        v_reset=zeros,
        metadata=facts,
    )
    b.add(name, node, value.sources)
    return ExportValue([name], shape, amplitude)


__all__ = ["export_neuron"]
