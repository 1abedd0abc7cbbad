"""Paper figures of a comparison: latency-accuracy, energy-accuracy, per-layer firing rates.

Figures are built on :class:`matplotlib.figure.Figure` directly (the Agg canvas, no pyplot and
no global backend change), with labelled axes and units, a legend naming route and method, and
distinct markers and line styles per network so they read in greyscale.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .io import save_figure

MARKERS = ["s", "^", "D", "v", "P", "X", "h", "<", ">", "p"]
LINESTYLES = ["--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (5, 2, 1, 2, 1, 2))]
# Okabe-Ito: distinguishable with colour-vision deficiencies, darkest first so the first curves
# stay visible in greyscale; greyscale readers tell curves apart by marker and line style.
COLORS = ["#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#999999", "#F0E442"]
DIRECT_STYLE = {"color": "black", "marker": "o", "linestyle": "-", "linewidth": 2.0}
ANN_STYLE = {"color": "0.35", "linestyle": (0, (8, 3)), "linewidth": 1.4}
ROUTE_NAMES = {"conversion": "conversion", "direct": "direct", "stdp": "unsupervised", "ann": "ANN"}
METHOD_NAMES: dict[str, str] = {}
"""Method -> how plots and reports name it; each threshold method and route registers its own
label where it is defined (:func:`register_label`), so a label is written once."""


def register_label(method: str, label: str) -> None:
    """Name ``method`` ``label`` in legends and tables (e.g. ``channel-wise (Kim 2020)``)."""
    METHOD_NAMES[method] = label


def network_label(route: str, method: str) -> str:
    """Legend text naming route and method, e.g. ``conversion: channel-wise (Kim 2020)``; a
    network of graded spikes (``<method>-K<K>``) adds ``(graded, K = <K>)``, a fine-tuned one
    (``<method>+ftN``) ``twin fine-tuned N steps``."""
    from .labels import base_method, finetune_steps_of, spike_levels_of

    base = base_method(method)
    steps, k = finetune_steps_of(method), spike_levels_of(method)
    # a graded network's legend is short (several K share one plot; the long names collapsed
    # its axes): the method's own name, then K
    name = METHOD_NAMES.get(base, base) if k == 1 else base
    if steps:  # retrained: said in every legend
        name += f", twin fine-tuned {steps} steps"
    if k > 1:
        name += f" (graded, K = {k})"
    return f"{ROUTE_NAMES.get(route, route)}: {name}"


STYLE_ORDER = tuple(m for m in METHOD_NAMES if m != "stbp-tdbn")
"""The one style table: a method's colour, marker and line style follow its place here, so
every figure of every command (``convert`` with one method, ``compare`` with all) draws a
method alike; a method not listed takes the next free place."""


def network_styles(networks: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """A fixed style per (route, method): the direct route solid black, every other method the
    style of its place in :data:`STYLE_ORDER`."""
    styles: dict[tuple[str, str], dict] = {}
    extra = len(STYLE_ORDER)
    for key in networks:
        if key[0] == "direct":
            styles[key] = dict(DIRECT_STYLE)
            continue
        if key[1] in STYLE_ORDER:
            i = STYLE_ORDER.index(key[1])
        else:
            i, extra = extra, extra + 1
        styles[key] = {
            "color": COLORS[i % len(COLORS)],
            "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "linewidth": 1.8,
        }
    return styles


def _networks(frame: pd.DataFrame) -> list[tuple[str, str]]:
    keys = list(dict.fromkeys(zip(frame["route"], frame["method"])))
    return [k for k in keys if k[0] != "direct"] + [k for k in keys if k[0] == "direct"]


def _powers_of_two(t_max: int) -> list[int]:
    steps = [2**k for k in range(int(math.log2(max(t_max, 1))) + 1)]
    return steps if steps[-1] == t_max else steps + [t_max]


def _new_figure(width: float = 6.6, height: float = 5.0) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), constrained_layout=True)
    ax = fig.add_subplot()
    ax.grid(True, which="major", color="0.88", linewidth=0.7)
    ax.set_axisbelow(True)
    return fig, ax


def _legend_below(ax, title: str | None = None) -> None:
    """Legend under the axes, out of the data's way (constrained layout makes room for it)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8,
                  frameon=False, handlelength=3.2, title=title, title_fontsize=8)  # fmt: skip


def _percent(ax, axis: str = "y") -> None:
    fmt = FuncFormatter(lambda v, _pos: f"{v:g}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def latency_accuracy_figure(
    accuracy: pd.DataFrame,
    ann_accuracy: float | None = None,
    title: str = "",
    ann_label: str = "ANN",
) -> Figure:
    """Accuracy (%) after t steps for every network, log-scale t; the ANN as a horizontal line.

    Args:
        accuracy: columns route, method, timesteps, accuracy (fraction).
        ann_accuracy: the ANN's accuracy (fraction), drawn as a dashed line.
    """
    fig, ax = _new_figure()
    networks = _networks(accuracy)
    styles = network_styles(networks)
    t_max = int(accuracy["timesteps"].max()) if len(accuracy) else 1
    marks = set(_powers_of_two(t_max))
    for key in networks:
        rows = accuracy[(accuracy["route"] == key[0]) & (accuracy["method"] == key[1])].sort_values(
            "timesteps"
        )
        t = rows["timesteps"].to_numpy()
        every = [i for i, v in enumerate(t) if int(v) in marks]
        style = dict(styles[key])
        if len(t) < int(t.max()):  # one network per target T (calibrated): each its own point
            every, style["linestyle"] = list(range(len(t))), ":"
        ax.plot(
            t,
            100 * rows["accuracy"].to_numpy(),
            label=network_label(*key),
            markevery=every,
            markersize=6,
            markerfacecolor="white" if key[0] != "direct" else "black",
            **style,
        )
    if ann_accuracy is not None and math.isfinite(ann_accuracy):
        ax.axhline(
            100 * ann_accuracy, label=f"{ann_label} ({100 * ann_accuracy:.2f} %)", **ANN_STYLE
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(marks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(0.9, t_max * 1.1)
    ax.set_xlabel("latency: simulation timesteps T (log scale)")
    ax.set_ylabel("test accuracy (%)")
    _percent(ax)
    ax.set_title(title or "accuracy against latency")
    _legend_below(ax)
    return fig


def energy_accuracy_figure(
    accuracy: pd.DataFrame,
    energy: pd.DataFrame,
    title: str = "",
    e_mac: float = 4.6,
    e_ac: float = 0.9,
    ann_label: str = "ANN",
) -> Figure:
    """Accuracy (%) against energy per inference (µJ, log scale) as T grows, one curve per SNN.

    Markers sit at T = 1, 2, 4, ...; the ANN is one star (and a dotted line at its accuracy).

    Args:
        accuracy: columns route, method, timesteps, accuracy, energy_pJ (cumulative to t).
        energy: the energy table; its ``ann`` row gives the ANN point.
    """
    fig, ax = _new_figure()
    networks = _networks(accuracy)
    styles = network_styles(networks)
    t_max = int(accuracy["timesteps"].max()) if len(accuracy) else 1
    marks = set(_powers_of_two(t_max))
    for key in networks:
        rows = accuracy[(accuracy["route"] == key[0]) & (accuracy["method"] == key[1])].sort_values(
            "timesteps"
        )
        every = [i for i, v in enumerate(rows["timesteps"]) if int(v) in marks]
        ax.plot(
            rows["energy_pJ"].to_numpy() / 1e6,
            100 * rows["accuracy"].to_numpy(),
            label=network_label(*key),
            markevery=every,
            markersize=6,
            markerfacecolor="white" if key[0] != "direct" else "black",
            **styles[key],
        )
    ann = energy[energy["route"] == "ann"]
    if len(ann):
        row = ann.iloc[0]
        e, a = float(row["energy_pJ"]) / 1e6, 100 * float(row["accuracy"])
        ax.plot(
            [e],
            [a],
            marker="*",
            markersize=14,
            color="0.2",
            linestyle="none",
            label=f"{ann_label} ({a:.2f} %, {e:.3g} µJ)",
        )
        ax.axhline(a, color="0.55", linestyle=":", linewidth=1.0)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.set_xlabel(f"energy per inference (µJ, log scale; E_MAC = {e_mac:g} pJ, E_AC = {e_ac:g} pJ)")
    ax.set_ylabel("test accuracy (%)")
    _percent(ax)
    ax.set_title(title or "accuracy against energy per inference")
    _legend_below(ax, f"markers at T = {', '.join(map(str, sorted(marks)))}")
    return fig


def firing_rate_figure(
    layers: pd.DataFrame, timesteps: int | None = None, title: str = ""
) -> Figure:
    """Firing rate (spikes per neuron per step, %) of every spiking layer, in network order.

    Args:
        layers: the layer table (rows with ``kind == "neuron"`` are plotted).
    """
    fig, ax = _new_figure()
    neurons = layers[layers["kind"] == "neuron"]
    if "network" not in neurons.columns:  # a table without one network per row group
        neurons = neurons.assign(network=neurons["method"], timesteps=pd.NA)
    networks = _networks(neurons)
    styles = network_styles(networks)
    depth = 0
    for key in networks:
        of_method = neurons[(neurons["route"] == key[0]) & (neurons["method"] == key[1])]
        names = list(dict.fromkeys(of_method["network"]))
        for n, name in enumerate(names):  # calibrated: one line per network (per target T)
            rows = of_method[of_method["network"] == name].sort_values("index")
            x = list(range(1, len(rows) + 1))
            depth = max(depth, len(x))
            style = dict(styles[key])
            label = network_label(*key)
            if len(names) > 1:
                t = rows["timesteps"].iloc[0]
                short = f"{ROUTE_NAMES.get(key[0], key[0])}: {key[1]}"
                label = f"{short}, T = {int(t)}" if pd.notna(t) else f"{short}: {name}"
                style["marker"] = MARKERS[n % len(MARKERS)]
                style["linestyle"] = LINESTYLES[n % len(LINESTYLES)]
            ax.plot(
                x,
                100 * rows["firing_rate"].to_numpy(),
                label=label,
                markersize=6,
                markerfacecolor="white" if key[0] != "direct" else "black",
                **style,
            )
    ax.set_xticks(list(range(1, depth + 1)))
    ax.set_xlabel("spiking layer (input side → output side)")
    ax.set_ylabel("firing rate (% of neurons spiking per step)")
    ax.set_ylim(bottom=0)
    suffix = f" over T = {timesteps} steps" if timesteps else ""
    ax.set_title(title or f"per-layer firing rates{suffix}")
    _legend_below(ax)
    return fig


def energy_models_figure(energy: pd.DataFrame, title: str = "") -> Figure:
    """Accuracy (%) against energy per inference (µJ, log scale), one panel per energy model
    (the ``energy_<model>_pJ`` columns): every spiking network at its T, the float ANN as a star,
    the quantised ANNs (route ``ann-quantised``) as squares labelled by their T."""
    models = [c for c in energy.columns
              if c.startswith("energy_") and c.endswith("_pJ") and c != "energy_pJ"]  # fmt: skip
    cols = max(1, min(len(models), 2))
    rows_n = max(1, math.ceil(len(models) / cols))
    fig = Figure(figsize=(6.4 * cols, 4.4 * rows_n), layout="constrained")
    for i, col in enumerate(models or [None]):
        ax = fig.add_subplot(rows_n, cols, i + 1)
        if col is None:
            break
        for j, r in enumerate(energy.to_dict("records")):  # names with '-' too
            route, method, t = r["route"], r["method"], r["timesteps"]
            e, a = float(r[col]) / 1e6, 100 * float(r["accuracy"])
            if not (e > 0 and math.isfinite(e)):
                continue
            if route == "ann":
                style = dict(marker="*", markersize=14, color="0.2")
                label = f"ANN, {method} (float)"
            elif route == "ann-quantised":
                style = dict(marker="s", markersize=7, color="0.45", markerfacecolor="white")
                label = f"quantised ANN, {method}, T={int(t)}"
            else:
                style = dict(marker=MARKERS[j % len(MARKERS)], markersize=8,
                             color=COLORS[j % len(COLORS)])  # fmt: skip
                label = f"{network_label(route, method)}, T={int(t)}"
            ax.plot([e], [a], linestyle="none", label=label, **style)
        ax.set_xscale("log")
        ax.set_xlabel("energy per inference (µJ, log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(col[len("energy_") : -len("_pJ")])
        if i == 0:
            ax.legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def history_figure(history: pd.DataFrame, title: str = "") -> Figure:
    """Training history of every network trained: loss (left) and train / validation accuracy
    (%, right) per epoch; train solid, validation dashed.

    Args:
        history: the ``history.csv`` table (route, network, epoch, loss, *_accuracy_pct).
    """
    fig = Figure(figsize=(9.0, 4.2), constrained_layout=True)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax in (loss_ax, acc_ax):
        ax.grid(True, which="major", color="0.88", linewidth=0.7)
        ax.set_axisbelow(True)
        ax.set_xlabel("epoch")
    keys = list(dict.fromkeys(zip(history["route"], history["network"])))
    for i, (route, name) in enumerate(keys):
        rows = history[(history["route"] == route) & (history["network"] == name)]
        color = "black" if route == "direct" else COLORS[i % len(COLORS)]
        label = "ANN" if route == "ann" else network_label(route, name)
        epochs = rows["epoch"].to_numpy()
        loss_ax.plot(epochs, rows["loss"].to_numpy(), marker="o", color=color, label=label)
        acc_ax.plot(epochs, rows["train_accuracy_pct"].to_numpy(), marker="o", color=color,
                    label=f"{label}: train")  # fmt: skip
        if rows["validation_accuracy_pct"].notna().any():
            acc_ax.plot(epochs, rows["validation_accuracy_pct"].to_numpy(), marker="s",
                        linestyle="--", color=color, markerfacecolor="white",
                        label=f"{label}: validation")  # fmt: skip
    loss_ax.set_ylabel("training loss (cross-entropy)")
    acc_ax.set_ylabel("accuracy (%)")
    loss_ax.legend(fontsize=8, frameon=False)
    acc_ax.legend(fontsize=8, frameon=False)
    fig.suptitle(title or "training history")
    return fig


PLOT_NAMES = ("latency_accuracy", "energy_accuracy", "firing_rates", "training_history")


def save_plots(figures: dict[str, Figure], out: str | Path, dpi: int = 160) -> list[Path]:
    """Write each figure as ``NAME.png`` and ``NAME.svg`` in ``out`` (atomically)."""
    out = Path(out)
    paths = []
    for name, fig in figures.items():
        paths.append(save_figure(out / f"{name}.png", fig, dpi=dpi, bbox_inches="tight"))
        paths.append(save_figure(out / f"{name}.svg", fig, bbox_inches="tight"))
    return paths


__all__ = [
    "PLOT_NAMES",
    "energy_accuracy_figure",
    "energy_models_figure",
    "firing_rate_figure",
    "history_figure",
    "latency_accuracy_figure",
    "network_label",
    "register_label",
    "network_styles",
    "save_plots",
]
