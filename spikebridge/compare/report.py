"""A self-contained HTML report of a comparison: plots embedded as base64 PNG, tables as HTML.

The file references nothing outside itself (no scripts, fonts or images to fetch), so it opens
the same from a laptop, a cluster's home directory or an e-mail attachment.
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..io import write_text
from ..plots import network_label

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1500px; color: #111; background: #fff; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
p.meta { color: #444; margin-top: 0; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; }
.figures figure { margin: 0; flex: 1 1 440px; max-width: 620px; }
.figures img { width: 100%; border: 1px solid #ccc; }
figcaption { font-size: 12px; color: #444; }
table.data { border-collapse: collapse; font-size: 12.5px; margin: 6px 0; }
table.data th { background: #d9d9d9; padding: 4px 8px; border: 1px solid #999; text-align: left; }
table.data td { padding: 3px 8px; border: 1px solid #bbb; text-align: right; }
table.data td:first-child, table.data td:nth-child(2) { text-align: left; }
.weak { background: #fde2e1; border: 1px solid #c0392b; padding: 6px 12px; font-size: 13px;
        margin-bottom: 8px; }
.notes { background: #fff7d6; border: 1px solid #d9c26b; padding: 6px 12px; font-size: 13px; }
"""


def figure_png_base64(fig: Figure, dpi: int = 130) -> str:
    """The figure as a base64-encoded PNG (for ``<img src="data:image/png;base64,...">``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _fmt_number(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "–"
        size = abs(value)
        if size >= 100:
            return f"{value:,.1f}"
        if size >= 1:
            return f"{value:.2f}"
        return "0" if value == 0 else f"{value:.3g}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        body.append("<tr>" + "".join(f"<td>{_fmt_number(v)}</td>" for v in row) + "</tr>")
    return (
        f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def summary_frame(energy: pd.DataFrame, flags: dict | None = None) -> pd.DataFrame:
    """The energy table in readable units: accuracy %, MMACs, MSOPs, µJ, ms; with a
    ``warning`` column when ``flags`` ((route, method, T or None) -> why it is weak) flags a
    network."""
    flags = flags or {}
    rows = []
    for r in energy.itertuples(index=False):
        label = network_label(r.route, r.method) if r.route != "ann" else f"ANN ({r.method})"
        rows.append(
            {
                "network": label,
                "T": "–" if r.route == "ann" else int(r.timesteps),
                "accuracy (%)": 100 * r.accuracy,
                "MACs (M)": r.macs / 1e6,
                "SOPs (M)": r.sops / 1e6 if r.route != "ann" else float("nan"),
                "energy (µJ)": r.energy_pJ / 1e6,
                "energy / ANN": r.energy_vs_ann,
                "firing rate (%)": 100 * r.firing_rate,
                "training (s)": r.train_seconds,
                "conversion (s)": r.convert_seconds,
                "inference (ms/sample)": r.inference_ms_per_sample,
            }
        )
        if flags:
            t = None if r.route == "ann" else int(r.timesteps)
            rows[-1]["warning"] = flags.get((r.route, r.method, t), "")
    return pd.DataFrame(rows)


def accuracy_pivot(accuracy: pd.DataFrame, steps: Sequence[int] | None = None) -> pd.DataFrame:
    """Accuracy (%) per network (rows) at T = 1, 2, 4, ... and T_max (columns)."""
    if not len(accuracy):
        return pd.DataFrame()
    t_max = int(accuracy["timesteps"].max())
    if steps is None:
        steps = {2**k for k in range(int(math.log2(t_max)) + 1)} | {t_max}
        # a method with one network per target T (calibrated) is shown at each of its T's
        for _, part in accuracy.groupby(["route", "method"], sort=False):
            if len(part) < int(part["timesteps"].max()):
                steps |= {int(t) for t in part["timesteps"]}
    steps = sorted(steps)
    chosen = accuracy[accuracy["timesteps"].isin(steps)]
    rows = []
    for (route, method), part in chosen.groupby(["route", "method"], sort=False):
        row = {"network": network_label(route, method)}
        for t, a in zip(part["timesteps"], part["accuracy"]):
            row[f"T={int(t)}"] = 100 * a
        rows.append(row)
    frame = pd.DataFrame(rows)
    columns = [f"T={t}" for t in steps if f"T={t}" in frame.columns]
    return frame[["network", *columns]]


def layer_summary(layers: pd.DataFrame) -> pd.DataFrame:
    """Per neuron layer firing rate (%) and per counted layer SOPs (M) of every SNN."""
    snn = layers[layers["route"] != "ann"]
    rows = []
    for r in snn.itertuples(index=False):
        rows.append(
            {
                "network": network_label(r.route, r.method),
                "layer": r.layer,
                "module": r.module,
                "neurons": int(r.neurons) if r.kind == "neuron" else float("nan"),
                "firing rate (%)": 100 * r.firing_rate if r.kind == "neuron" else float("nan"),
                "SOPs (M)": r.sops / 1e6 if r.kind != "neuron" and not r.analog else float("nan"),
                "analog MACs (M)": r.macs / 1e6
                if r.kind != "neuron" and r.analog
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def render_report(
    title: str,
    accuracy: pd.DataFrame,
    energy: pd.DataFrame,
    layers: pd.DataFrame,
    figures: dict[str, Figure],
    settings: dict | None = None,
    notes: Sequence[str] = (),
    captions: dict[str, str] | None = None,
    extra_tables: dict[str, pd.DataFrame] | None = None,
    energy_sentences: Sequence[str] = (),
    flags: dict | None = None,
) -> str:
    """The report as one HTML string (figures embedded as base64 PNG); ``extra_tables``:
    heading -> table, after the per-layer table (e.g. the noise robustness)."""
    captions = captions or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if settings:
        keys = (
            "arch",
            "dataset",
            "timesteps",
            "epochs",
            "direct_epochs",
            "direct_timesteps",
            "encoding",
            "reset",
        )
        meta = ", ".join(f"{k} = {html.escape(str(settings[k]))}" for k in keys if k in settings)
        parts.append(f'<p class="meta">{meta}</p>')
    if flags:
        parts.append(
            '<div class="weak"><strong>Weak networks</strong>: '
            + ", ".join(html.escape(f"{r}: {m}" + (f" at T = {t}" if t else "") + f" ({why})")
                        for (r, m, t), why in flags.items())
            + " (test accuracy near chance or far below training; see the notes and the "
            "training history)</div>"
        )  # fmt: skip
    if notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        parts.append(f'<div class="notes"><strong>Notes</strong><ul>{items}</ul></div>')
    parts.append('<h2>Figures</h2><div class="figures">')
    for name, fig in figures.items():
        caption = captions.get(name, name.replace("_", " "))
        parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{figure_png_base64(fig)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    parts.append("</div>")
    parts.append("<h2>Summary: accuracy, operations and energy per inference</h2>")
    parts.append(_table(summary_frame(energy, flags)))
    if energy_sentences:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in energy_sentences)
        parts.append(f"<h2>Which networks beat which ANN, per energy model</h2><ul>{items}</ul>")
    parts.append("<h2>Accuracy (%) against timesteps</h2>")
    parts.append(_table(accuracy_pivot(accuracy)))
    parts.append("<h2>Per-layer firing rates and synaptic operations (per inference)</h2>")
    parts.append(_table(layer_summary(layers)))
    for heading, frame in (extra_tables or {}).items():
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(_table(frame))
    if settings:
        frame = pd.DataFrame(
            {"setting": list(settings), "value": [str(v) for v in settings.values()]}
        )
        parts.append("<h2>Settings</h2>")
        parts.append(_table(frame))
    parts.append(
        '<p class="meta">Energy (the summary\'s column): Horowitz 2014 (45 nm): E = E_MAC &times; '
        "MACs + E_AC &times; (SOPs + additions); SNN layers fed the analog input cost dense MACs "
        "at every step. The energy_&lt;model&gt;_pJ columns of energy.csv add memory, addressing "
        "and neuron updates (docs/energy.md). Generated by spikebridge.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | Path, **kwargs) -> Path:
    """:func:`render_report` written atomically to ``path``."""
    return write_text(path, render_report(**kwargs))


__all__ = [
    "accuracy_pivot",
    "figure_png_base64",
    "layer_summary",
    "render_report",
    "summary_frame",
    "write_report",
]
