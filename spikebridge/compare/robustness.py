"""Noise robustness of every route: accuracy on the same seeded noisy test images.

The comparison's ``robustness`` pass (:mod:`spikebridge.compare.passes.robustness`) scores every
network on each condition ``kind:level``; :func:`robustness_frame` adds the noise kind, the level
and the loss against the same network's clean accuracy (the figure Tavanaei & Maida 2017 report
for their spiking CNN), :func:`robustness_figure` plots accuracy against noise level.
:func:`robustness_table` does the same for networks outside a comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader

from ..engine.network import SpikingNetwork
from ..evaluation import evaluate
from ..plots import ANN_STYLE, network_label, network_styles
from .noise import NoiseSpec, noise_conditions, noisy_loader

COLUMNS = [
    "route", "method", "noise", "level", "timesteps", "accuracy", "clean_accuracy",
    "accuracy_drop",
]  # fmt: skip
"""Columns of the robustness table: accuracy and its drop against clean (clean - noisy) are
fractions here; ``robustness.csv`` holds them in % (``accuracy_pct``, ``clean_accuracy_pct``)
and percentage points (``accuracy_drop_points``)."""


def condition_label(kind: str, level: float) -> str:
    """``gaussian:0.1``: the condition of one noise kind and level."""
    return f"{kind}:{level:g}"


def parse_condition(label: str) -> tuple[str, float]:
    """``'gaussian:0.1'`` -> ('gaussian', 0.1); ``'clean'`` -> ('clean', 0.0)."""
    if label == "clean":
        return "clean", 0.0
    kind, _, level = label.partition(":")
    return kind, float(level)


def _step_key(timesteps) -> int | None:
    """A timesteps value as a dict key (None for an ANN's NaN)."""
    try:
        return None if timesteps is None or timesteps != timesteps else int(timesteps)
    except (TypeError, ValueError):
        return None


def robustness_frame(rows: pd.DataFrame, clean: pd.DataFrame) -> pd.DataFrame:
    """The pass's rows (route, method, condition, timesteps, accuracy) with the noise kind, the
    level, the same network's clean accuracy after the same number of steps (from ``clean``:
    route, method, timesteps, accuracy; NaN timesteps for an ANN) and the accuracy drop; each network's
    clean rows come first (level 0)."""
    clean_acc = {
        (r.route, r.method, _step_key(r.timesteps)): float(r.accuracy)
        for r in clean.itertuples(index=False)
    }
    out = []
    for (route, method), part in rows.groupby(["route", "method"], sort=False):
        steps = {_step_key(t): t for t in part["timesteps"]}  # NaN (an ANN) once
        for t in steps.values():
            base = clean_acc.get((route, method, _step_key(t)), float("nan"))
            out.append([route, method, "clean", 0.0, t, base, base, 0.0])
        for r in part.itertuples(index=False):
            kind, level = parse_condition(r.condition)
            acc = float(r.accuracy)
            base = clean_acc.get((route, method, _step_key(r.timesteps)), float("nan"))
            out.append([route, method, kind, level, r.timesteps, acc, base, base - acc])
    return pd.DataFrame(out, columns=COLUMNS)


def at_final_step(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of :data:`COLUMNS` at each network's largest T (an ANN's single rows)."""
    keep = []
    for _, part in frame.groupby(["route", "method"], sort=False):
        t = part["timesteps"]
        keep.append(part if t.isna().all() else part[t == t.max()])
    return pd.concat(keep) if keep else frame


def robustness_figure(frame: pd.DataFrame, title: str = "") -> Figure:
    """Accuracy (%) against noise level: one panel per noise kind, one curve per network at its
    largest T (the clean accuracy at level 0). ``frame``: :data:`COLUMNS`."""
    frame = at_final_step(frame)
    kinds = [k for k in dict.fromkeys(frame["noise"]) if k != "clean"]
    if not kinds:
        raise ValueError("robustness_figure: the table has no noisy rows")
    networks = list(dict.fromkeys(zip(frame["route"], frame["method"])))
    styles = network_styles([n for n in networks if n[0] != "ann"])
    fig = Figure(figsize=(4.4 * len(kinds), 4.6), constrained_layout=True)
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    for ax, kind in zip(axes, kinds):
        for route, method in networks:
            rows = frame[(frame["route"] == route) & (frame["method"] == method)]
            part = rows[rows["noise"].isin(["clean", kind])].sort_values("level")
            style = ANN_STYLE if route == "ann" else styles[(route, method)]
            label = f"ANN ({method})" if route == "ann" else network_label(route, method)
            ax.plot(part["level"], 100 * part["accuracy"], label=label, **style)
        ax.set_title(kind)
        ax.set_xlabel("density of replaced pixels" if kind == "salt-pepper" else "sigma")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def robustness_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per network (at its largest T), one column per condition: accuracy % (its change
    against clean, in points)."""
    frame = at_final_step(frame)
    rows = []
    for (route, method), part in frame.groupby(["route", "method"], sort=False):
        label = f"ANN ({method})" if route == "ann" else network_label(route, method)
        row = {"network": label}
        for r in part.itertuples(index=False):
            if r.noise == "clean":
                row["clean"] = f"{100 * r.accuracy:.2f}"
            else:
                key = condition_label(r.noise, r.level)
                row[key] = f"{100 * r.accuracy:.2f} ({-100 * r.accuracy_drop:+.2f})"
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class Scored:
    """A network to score outside a comparison: an ANN (``timesteps`` None) or a spiking
    network read out after ``timesteps`` steps."""

    route: str
    method: str
    model: nn.Module
    timesteps: int | None = None


def robustness_table(
    entries: Sequence[Scored],
    test_loader: DataLoader,
    specs: Sequence[NoiseSpec],
    seed: int = 0,
    device: str | None = None,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Accuracy of every entry, clean and under every noise level (:data:`COLUMNS`).

    Every entry reads the same noisy images: sample i's noise depends only on (seed, kind,
    level, i).
    """
    rows, clean = [], []
    for entry in entries:
        if isinstance(entry.model, SpikingNetwork) and entry.timesteps is None:
            raise ValueError(f"{entry.route}/{entry.method}: a spiking network needs timesteps")
        ev = evaluate(entry.model, test_loader, entry.timesteps, device=device)
        clean.append((entry.route, entry.method, entry.timesteps, float(ev.accuracy[-1])))
        for kind, level in noise_conditions(specs):
            loader = noisy_loader(test_loader, kind, level, seed)
            acc = float(evaluate(entry.model, loader, entry.timesteps, device=device).accuracy[-1])
            label = condition_label(kind, level)
            rows.append((entry.route, entry.method, label, entry.timesteps, acc))
            if log is not None:
                log(f"robustness {entry.route}/{entry.method} {label}: {acc:.4f}")
    frame = pd.DataFrame(rows, columns=["route", "method", "condition", "timesteps", "accuracy"])
    clean_frame = pd.DataFrame(clean, columns=["route", "method", "timesteps", "accuracy"])
    return robustness_frame(frame, clean_frame)


__all__ = [
    "COLUMNS",
    "Scored",
    "at_final_step",
    "condition_label",
    "parse_condition",
    "robustness_figure",
    "robustness_frame",
    "robustness_summary",
    "robustness_table",
]
