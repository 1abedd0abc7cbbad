"""Writing a comparison's results into DIR: CSV tables, plots, ``results.json``, ``report.html``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..io import write_csv, write_json
from .config import Settings
from .plots import energy_accuracy_figure, firing_rate_figure, latency_accuracy_figure, save_plots
from .report import write_report

if TYPE_CHECKING:
    from .pipeline import Comparison


def _title(s: Settings) -> str:
    return f"{s.arch} on {s.dataset}"


def write_outputs(result: Comparison, s: Settings) -> list[Path]:
    """Write the CSVs, the plots, ``results.json`` and ``report.html`` (each atomically)."""
    out = result.out
    assert out is not None
    files = [
        write_csv(out / "accuracy_vs_timesteps.csv", result.accuracy),
        write_csv(out / "energy.csv", result.energy),
        write_csv(out / "layers.csv", result.layers),
    ]
    files += [write_csv(out / f"{name}.csv", frame) for name, frame in result.extra.items()]
    ann_label = f"ANN, {s.activation}"
    title = _title(s)
    figures = {
        "latency_accuracy": latency_accuracy_figure(
            result.accuracy, result.ann_accuracy, f"{title}: accuracy against latency", ann_label
        ),
        "energy_accuracy": energy_accuracy_figure(
            result.accuracy,
            result.energy,
            f"{title}: accuracy against energy per inference",
            s.e_mac,
            s.e_ac,
            ann_label,
        ),
        "firing_rates": firing_rate_figure(
            result.layers, s.timesteps, f"{title}: firing rates over T = {s.timesteps}"
        ),
    }
    files += save_plots(figures, out)
    files.append(
        write_json(
            out / "results.json",
            {
                "settings": result.settings,
                "ann_accuracy": result.ann_accuracy,
                "notes": result.notes,
                "timings_seconds": result.timings,
                "summary": json.loads(result.energy.to_json(orient="records")),
            },
        )
    )
    captions = {
        "latency_accuracy": "Test accuracy after t simulation steps (log-scale t); the ANN as a dashed line.",
        "energy_accuracy": "Accuracy against energy per inference as T grows (markers at T = 1, 2, 4, ...); the ANN as a star.",
        "firing_rates": f"Firing rate of each spiking layer over T = {s.timesteps} steps.",
    }
    files.append(
        write_report(
            out / "report.html",
            title=f"spikebridge comparison: {title}",
            accuracy=result.accuracy,
            energy=result.energy,
            layers=result.layers,
            figures=figures,
            settings=result.settings,
            notes=result.notes,
            captions=captions,
        )
    )
    return files
