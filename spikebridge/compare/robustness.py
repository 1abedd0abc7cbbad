"""Noise robustness of every route: accuracy on the same seeded noisy test images.

Each network is scored on the clean test set and on every (noise kind, level) of
:mod:`spikebridge.compare.noise`; the table has one row per (route, method, noise, level) with
the accuracy and the loss against the same network's clean accuracy (Tavanaei & Maida 2017
report this loss for their spiking CNN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader

from ..evaluation import evaluate_ann, evaluate_snn
from ..io import save_figure
from ..network import SpikingNetwork
from .noise import NoiseSpec, noise_conditions, noisy_loader
from .plots import ANN_STYLE, network_label, network_styles

COLUMNS = ["route", "method", "noise", "level", "timesteps", "accuracy", "loss"]


@dataclass
class Scored:
    """A network to score: an ANN (``timesteps`` None) or a spiking network read out at T."""

    route: str
    method: str
    model: nn.Module
    timesteps: int | None = None


def _accuracy(entry: Scored, loader: DataLoader, device: str) -> float:
    if isinstance(entry.model, SpikingNetwork):
        if entry.timesteps is None:
            raise ValueError(f"{entry.route}/{entry.method}: a spiking network needs timesteps")
        ev = evaluate_snn(entry.model, loader, entry.timesteps, device)
        return float(ev.correct[-1].item() / max(ev.total, 1))
    return float(evaluate_ann(entry.model, loader, device))


def robustness_table(
    entries: Sequence[Scored],
    test_loader: DataLoader,
    specs: Sequence[NoiseSpec],
    seed: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Accuracy (fraction) of every entry, clean (level 0) and under every noise level.

    Every entry reads the same noisy images: :func:`noisy_loader` derives sample i's noise
    from (seed, kind, level, i) only.
    """
    rows = []
    conditions = [("clean", 0.0)] + noise_conditions(specs)
    loaders = {
        (kind, level): test_loader
        if kind == "clean"
        else noisy_loader(test_loader, kind, level, seed)
        for kind, level in conditions
    }
    for entry in entries:
        clean = None
        for kind, level in conditions:
            acc = _accuracy(entry, loaders[(kind, level)], device)
            clean = acc if kind == "clean" else clean
            rows.append(
                {
                    "route": entry.route,
                    "method": entry.method,
                    "noise": kind,
                    "level": level,
                    "timesteps": entry.timesteps,
                    "accuracy": acc,
                    "loss": (clean - acc) if clean is not None else 0.0,
                }
            )
            if log is not None:
                log(f"robustness {entry.route}/{entry.method} {kind} {level:g}: {acc:.4f}")
    return pd.DataFrame(rows, columns=COLUMNS)


def plot_robustness(table: pd.DataFrame, path: str | Path) -> Path:
    """Accuracy against noise level, one panel per noise kind, one curve per network; the
    clean accuracy is the point at level 0."""
    kinds = [k for k in dict.fromkeys(table["noise"]) if k != "clean"]
    if not kinds:
        raise ValueError("plot_robustness: the table has no noisy rows")
    networks = list(dict.fromkeys(zip(table["route"], table["method"])))
    styles = network_styles([n for n in networks if n[0] != "ann"])
    fig = Figure(figsize=(4.2 * len(kinds), 3.6), constrained_layout=True)
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    for ax, kind in zip(axes, kinds):
        for route, method in networks:
            rows = table[(table["route"] == route) & (table["method"] == method)]
            part = rows[rows["noise"].isin(["clean", kind])].sort_values("level")
            style = ANN_STYLE if route == "ann" else styles[(route, method)]
            ax.plot(
                part["level"],
                100 * part["accuracy"],
                label=network_label(route, method),
                **style,
            )
        ax.set_title(kind)
        ax.set_xlabel("density" if kind == "salt-pepper" else "sigma")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    return save_figure(path, fig, dpi=130)


__all__ = ["COLUMNS", "Scored", "plot_robustness", "robustness_table"]
