"""Energy per inference and the comparison's tables (SPEC 3.2; Horowitz 2014, 45 nm CMOS).

E_ANN = E_MAC * MACs (+ E_AC per residual addition), E_SNN = E_MAC * MACs_analog + E_AC * SOPs,
a graded spike's synaptic operation (K > 1: weight times payload) at E_MAC rather than E_AC, with
E_MAC = 4.6 pJ (32-bit float multiply-accumulate) and E_AC = 0.9 pJ (32-bit float add) by
default; both are parameters, since neuromorphic chips quote their own energy per SOP. This is
the ``energy_pJ`` column; :class:`spikebridge.energy.book.EnergyBook` adds one
``energy_<model>_pJ`` column per energy model (memory, addressing, neuron updates:
docs/energy.md), the quantised-ANN rows (Yan 2024) and the break-even firing rates.
Firing rate of a layer = spikes / (neurons * T), spikes per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from torch import Tensor

from ..evaluation import Evaluation

E_MAC_PJ = 4.6
E_AC_PJ = 0.9

ACCURACY_COLUMNS = [
    "route",
    "method",
    "timesteps",
    "accuracy",
    "macs",
    "sops",
    "energy_pJ",
    "spikes",
]
ENERGY_COLUMNS = [
    "route",
    "method",
    "timesteps",
    "accuracy",
    "macs",
    "sops",
    "adds",
    "energy_pJ",
    "energy_vs_ann",
    "spikes",
    "firing_rate",
    "spike_units",
    "payload_bits",
    "samples",
    "train_seconds",
    "convert_seconds",
    "inference_seconds",
    "inference_ms_per_sample",
]
LAYER_COLUMNS = [
    "route",
    "method",
    "index",
    "layer",
    "module",
    "kind",
    "analog",
    "neurons",
    "spikes",
    "firing_rate",
    "inputs",
    "sops",
    "macs",
    "adds",
]


def energy_pj(
    macs: float | Tensor, acs: float | Tensor, e_mac: float = E_MAC_PJ, e_ac: float = E_AC_PJ
) -> float | Tensor:
    """Energy in picojoules: ``e_mac * macs + e_ac * acs`` (elementwise for tensors)."""
    if e_mac < 0 or e_ac < 0:
        raise ValueError(f"energies per operation must be >= 0 pJ, got e_mac={e_mac}, e_ac={e_ac}")
    return e_mac * macs + e_ac * acs


def firing_rate(spikes: float, neurons: int, timesteps: int) -> float:
    """Spikes per neuron per step: ``spikes / (neurons * timesteps)`` (spikes of one sample)."""
    if neurons <= 0 or timesteps <= 0:
        raise ValueError(
            f"firing rate needs neurons > 0 and timesteps > 0, got {neurons}, {timesteps}"
        )
    return float(spikes) / (neurons * timesteps)


def snn_accuracy_frame(
    route: str,
    method: str,
    ev: Evaluation,
    e_mac: float = E_MAC_PJ,
    e_ac: float = E_AC_PJ,
    steps: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Rows t = 1..T: accuracy after t steps and the operations/energy per inference up to t.

    Columns: route, method, timesteps, accuracy, macs, sops, energy_pJ, spikes (per sample,
    cumulative over steps 1..t). ``steps`` keeps only those t (a network built for one T is
    reported at that T only).
    """
    n = max(ev.total, 1)
    macs = ev.macs().cumsum(0) / n
    sops = ev.sops().cumsum(0) / n
    graded = ev.graded_sops().cumsum(0) / n
    adds = ev.adds().cumsum(0) / n
    spikes = torch.zeros(ev.timesteps, dtype=torch.float64)
    for counts in ev.spikes.values():
        spikes += counts.double()
    frame = pd.DataFrame(
        {
            "route": route,
            "method": method,
            "timesteps": range(1, ev.timesteps + 1),
            "accuracy": ev.accuracy.tolist(),
            "macs": macs.tolist(),
            "sops": sops.tolist(),
            "energy_pJ": energy_pj(macs + graded, sops - graded + adds, e_mac, e_ac).tolist(),
            "spikes": (spikes.cumsum(0) / n).tolist(),
        },
        columns=ACCURACY_COLUMNS,
    )
    if steps is not None:
        frame = frame[frame["timesteps"].isin(list(steps))].reset_index(drop=True)
    return frame


def snn_energy_row(
    route: str,
    method: str,
    ev: Evaluation,
    e_mac: float = E_MAC_PJ,
    e_ac: float = E_AC_PJ,
    ann_energy: float | None = None,
    train_seconds: float = float("nan"),
    convert_seconds: float = float("nan"),
) -> dict:
    """One row of the energy table for a spiking network evaluated for T steps (per inference)."""
    n = max(ev.total, 1)
    macs = float(ev.macs().sum()) / n
    sops = float(ev.sops().sum()) / n
    graded = float(ev.graded_sops().sum()) / n  # weight x payload: a MAC each
    adds = float(ev.adds().sum()) / n
    spikes = sum(float(c.sum()) for c in ev.spikes.values()) / n
    neurons = sum(ev.neurons.values())
    energy = float(energy_pj(macs + graded, sops - graded + adds, e_mac, e_ac))
    return {
        "route": route,
        "method": method,
        "timesteps": ev.timesteps,
        "accuracy": float(ev.accuracy[-1]),
        "macs": macs,
        "sops": sops,
        "adds": adds,
        "energy_pJ": energy,
        "energy_vs_ann": energy / ann_energy if ann_energy else float("nan"),
        "spikes": spikes,
        "firing_rate": firing_rate(spikes, neurons, ev.timesteps) if neurons else float("nan"),
        "spike_units": float(ev.spike_units().sum()) / n,
        "payload_bits": ev.payload_bits,
        "samples": ev.total,
        "train_seconds": train_seconds,
        "convert_seconds": convert_seconds,
        "inference_seconds": ev.seconds,
        "inference_ms_per_sample": 1000 * ev.seconds / n,
    }


def ann_energy_row(
    method: str,
    ev: Evaluation,
    e_mac: float = E_MAC_PJ,
    e_ac: float = E_AC_PJ,
    train_seconds: float = float("nan"),
) -> dict:
    """The ANN's row of the energy table from its evaluation with counted operations
    (``method`` names its activation, e.g. ``relu``)."""
    macs, acs, samples, seconds = ev.macs_per_sample, ev.acs_per_sample, ev.total, ev.seconds
    energy = float(energy_pj(macs, acs, e_mac, e_ac))
    return {
        "route": "ann",
        "method": method,
        "timesteps": float("nan"),
        "accuracy": float(ev.accuracy[-1]),
        "macs": float(macs),
        "sops": 0.0,
        "adds": float(acs),
        "energy_pJ": energy,
        "energy_vs_ann": 1.0,
        "spikes": float("nan"),
        "firing_rate": float("nan"),
        "samples": samples,
        "train_seconds": train_seconds,
        "convert_seconds": float("nan"),
        "inference_seconds": seconds,
        "inference_ms_per_sample": 1000 * seconds / max(samples, 1),
    }


def energy_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """The energy table: :data:`ENERGY_COLUMNS`, then the energy models' columns in order."""
    extra: list[str] = []
    for row in rows:
        extra += [k for k in row if k not in ENERGY_COLUMNS and k not in extra]
    return pd.DataFrame(list(rows), columns=ENERGY_COLUMNS + extra)


def snn_layer_frame(route: str, method: str, ev: Evaluation) -> pd.DataFrame:
    """Per layer of a spiking network: neuron layers (spikes, firing rate) and counted layers
    (non-zero inputs, SOPs, analog MACs), per inference over T steps, in network order."""
    n = max(ev.total, 1)
    steps = ev.timesteps
    rows = []
    for name, neurons in ev.neurons.items():
        spikes = float(ev.spikes[name].sum()) / n if name in ev.spikes else 0.0
        rows.append(
            {
                "layer": name,
                "module": ev.types.get(name, ""),
                "kind": "neuron",
                "analog": False,
                "neurons": neurons,
                "spikes": spikes,
                "firing_rate": firing_rate(spikes, neurons, steps),
            }
        )
    for name, op in ev.layers.items():
        rows.append(
            {
                "layer": name,
                "module": op.module,
                "kind": op.kind,
                "analog": op.analog,
                "inputs": float(op.inputs.sum()) / n if op.inputs is not None else float("nan"),
                "sops": float(op.sops.sum()) / n if op.sops is not None and not op.analog else 0.0,
                "macs": float(op.macs_per_sample * steps) if op.analog else 0.0,
                "adds": float(op.acs_per_sample * steps) if op.analog else 0.0,
            }
        )
    frame = pd.DataFrame(
        rows, columns=[c for c in LAYER_COLUMNS if c not in ("route", "method", "index")]
    )
    frame.insert(0, "index", range(len(frame)))
    frame.insert(0, "method", method)
    frame.insert(0, "route", route)
    return frame[LAYER_COLUMNS]


def ann_layer_frame(method: str, ev: Evaluation) -> pd.DataFrame:
    """Per counted layer of the ANN: dense MACs and additions of one inference."""
    rows = [
        {
            "layer": name,
            "module": op.module,
            "kind": op.kind,
            "analog": True,
            "macs": float(op.macs_per_sample),
            "adds": float(op.acs_per_sample),
        }
        for name, op in ev.layers.items()
    ]
    frame = pd.DataFrame(
        rows, columns=[c for c in LAYER_COLUMNS if c not in ("route", "method", "index")]
    )
    frame.insert(0, "index", range(len(frame)))
    frame.insert(0, "method", method)
    frame.insert(0, "route", "ann")
    return frame[LAYER_COLUMNS]


__all__ = [
    "ACCURACY_COLUMNS",
    "ENERGY_COLUMNS",
    "E_AC_PJ",
    "E_MAC_PJ",
    "LAYER_COLUMNS",
    "ann_energy_row",
    "ann_layer_frame",
    "energy_frame",
    "energy_pj",
    "firing_rate",
    "snn_accuracy_frame",
    "snn_energy_row",
    "snn_layer_frame",
]
