"""Writing a comparison's results into DIR: CSV tables, plots, ``results.json``, ``report.html``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..energy.book import beats_sentences, model_columns
from ..io import write_json
from ..labels import with_finetune_column
from ..plots import (
    energy_accuracy_figure,
    energy_models_figure,
    firing_rate_figure,
    history_figure,
    latency_accuracy_figure,
    save_plots,
)
from ..tables import percent, write_table
from .config import Settings
from .report import write_report
from .robustness import robustness_figure, robustness_frame, robustness_summary

if TYPE_CHECKING:
    from .pipeline import Comparison


def _title(s: Settings) -> str:
    return f"{s.model_label()} on {s.dataset}"


def write_outputs(result: Comparison, s: Settings) -> list[Path]:
    """Write the tables (CSV with accuracy in %, and LaTeX beside each:
    :func:`spikebridge.tables.write_table`), the plots, ``results.json`` and ``report.html``
    (each atomically)."""
    out = result.out
    assert out is not None
    files = [
        *write_table(
            out / "accuracy_vs_timesteps.csv",
            with_finetune_column(percent(result.accuracy, ["accuracy"])),
        ),
        *write_table(
            out / "energy.csv", with_finetune_column(percent(result.energy, ["accuracy"]))
        ),
        *write_table(out / "layers.csv", result.layers),
        *write_table(out / "history.csv", result.history),
    ]
    if len(result.energy_breakdown):
        files.extend(write_table(out / "energy_breakdown.csv", result.energy_breakdown))
    extra = dict(result.extra)
    robustness = extra.get("robustness")
    if robustness is not None and len(robustness):  # noise kind, level and loss per network
        ann = result.energy[result.energy["route"] == "ann"].assign(timesteps=float("nan"))
        columns = ["route", "method", "timesteps", "accuracy"]
        clean = pd.concat([result.accuracy[columns], ann[columns]], ignore_index=True)
        extra["robustness"] = robustness_frame(robustness, clean)
    for name, frame in extra.items():
        frame = percent(frame, ["accuracy", "clean_accuracy"])
        if "accuracy_drop" in frame.columns:  # percentage points
            frame = frame.assign(accuracy_drop=100 * frame["accuracy_drop"])
            frame = frame.rename(columns={"accuracy_drop": "accuracy_drop_points"})
        files += write_table(out / f"{name}.csv", frame)
    ann_label = f"ANN, {s.ann_method()}"
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
    if model_columns(result.energy):
        figures["energy_models"] = energy_models_figure(
            result.energy, f"{title}: accuracy against energy per energy model"
        )
    if len(result.history):
        figures["training_history"] = history_figure(
            result.history, f"{title}: training history (validation: held-out training images)"
        )
    if robustness is not None and len(robustness):
        figures["accuracy_vs_noise"] = robustness_figure(
            extra["robustness"], f"{title}: accuracy on noisy test images"
        )
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
        "energy_models": "Accuracy against energy per inference under each energy model "
        "(docs/energy.md): spiking networks at their T, the float ANN (star) and the ANN quantised "
        "to ceil(log2(T+1))-bit activations (squares, Yan 2024).",
        "firing_rates": f"Firing rate of each spiking layer over T = {s.timesteps} steps "
        "(calibrated: one line per network, each over its own T).",
        "training_history": "Loss and accuracy per epoch of every network trained: on the "
        "training batches (solid) and on held-out training images (dashed).",
        "accuracy_vs_noise": "Accuracy on the same seeded noisy test images for every network "
        "(level 0: clean), one panel per noise type.",
    }
    tables = {}
    if robustness is not None and len(robustness):
        tables["Accuracy (%) on noisy test images (change against clean, points)"] = (
            robustness_summary(extra["robustness"])
        )
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
            extra_tables=tables,
            energy_sentences=beats_sentences(result.energy),
            flags=result.flags,
        )
    )
    return files
