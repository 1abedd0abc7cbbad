"""Train the STDP route into a directory, with the same outputs as the direct route.

``DIR/checkpoint.pt`` (after every phase; ``resume`` continues), ``history.csv`` (one row per
phase epoch), ``accuracy_vs_timesteps.csv`` (route, method, timesteps, accuracy: the test
accuracy read out after every step t <= T of one simulation) and ``summary.json``, every file
written atomically.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from torch.utils.data import DataLoader

from ..data import dataset_info, make_loaders
from ..energy.book import write_network_energy
from ..evaluation import evaluate
from ..io import output_dir, write_json
from ..rundir import claim
from ..runtime import seed_everything
from ..settings import ExperimentSettings, SimulationSettings, StdpSettings, runtime_keys
from ..tables import write_table
from .model import StdpConfig, config_for
from .training import StdpResult, train

ROUTE = "stdp"
METHOD = "ae-stdp"
CHECKPOINT_NAME = "checkpoint.pt"
OUTPUT_FILES = (
    CHECKPOINT_NAME, "history.csv", "history.tex", "accuracy_vs_timesteps.csv",
    "accuracy_vs_timesteps.tex", "summary.json", "energy.csv", "energy.tex",
    "energy_breakdown.csv", "energy_breakdown.tex",
)  # fmt: skip
HISTORY_COLUMNS = [
    "phase",
    "layer",
    "epoch",
    "reconstruction_error",
    "spikes_per_input",
    "active_fraction",
    "winner_share_max",
    "train_accuracy_pct",
    "seconds",
]


def describe(row: dict) -> str:
    """One line for a history row (CLI progress)."""
    if row["phase"] == "autoencoder":
        detail = f"reconstruction error {row['reconstruction_error']:.4f}"
    elif row["phase"] == "stdp":
        detail = (
            f"{row['spikes_per_input']:.1f} spikes/image, "
            f"{100 * row['active_fraction']:.0f}% of features won"
        )
    else:
        detail = f"train accuracy {row['train_accuracy']:.4f}"
    return (
        f"{row['phase']} ({row['layer']}) epoch {row['epoch']}: {detail} ({row['seconds']:.1f} s)"
    )


def train_to_directory(
    config: StdpConfig,
    train_loader: DataLoader,
    test_loader: DataLoader,
    out: str | os.PathLike,
    seed: int = 0,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    extra_summary: dict | None = None,
    energy: SimulationSettings | None = None,
) -> tuple[StdpResult, dict]:
    """Train (or resume) the route, score it on ``test_loader``, write the outputs to ``out``.

    Returns the result and the summary written to ``summary.json``; ``energy.csv`` and
    ``energy_breakdown.csv`` under ``energy.energy_models`` (default: every model).
    """
    start = time.perf_counter()
    out = output_dir(out)

    def on_epoch(row: dict) -> None:
        if log is not None:
            log(describe(row))

    result = train(
        config,
        train_loader,
        seed,
        progress,
        on_epoch,
        checkpoint_path=out / CHECKPOINT_NAME,
        resume=resume,
    )
    rows = [{k: row.get(k) for k in HISTORY_COLUMNS} for row in result.history]
    for row, done in zip(rows, result.history):
        accuracy = done.get("train_accuracy")
        row["train_accuracy_pct"] = None if accuracy is None else 100 * accuracy
    write_table(out / "history.csv", pd.DataFrame(rows, columns=HISTORY_COLUMNS))
    ev = evaluate(result.network, test_loader, config.timesteps, progress=progress, count_ops=True)
    write_network_energy(
        out, ROUTE, METHOD, result.network, config.timesteps, test_loader,
        energy or SimulationSettings(), evaluation=ev, train_seconds=sum(result.seconds.values()),
    )  # fmt: skip
    accuracy = ev.accuracy.tolist()
    curve = pd.DataFrame(
        {
            "route": ROUTE,
            "method": METHOD,
            "timesteps": list(range(1, len(accuracy) + 1)),
            "accuracy_pct": [100 * a for a in accuracy],
        },
        columns=["route", "method", "timesteps", "accuracy_pct"],
    )
    write_table(out / "accuracy_vs_timesteps.csv", curve)
    summary = {
        "route": ROUTE,
        "method": METHOD,
        "config": config.to_dict(),
        "seed": seed,
        "train_samples": len(train_loader.dataset),
        "test_samples": ev.total,
        "train_accuracy": result.train_accuracy,
        "test_accuracy": accuracy[-1],
        "accuracy_vs_timesteps": accuracy,
        "phase_seconds": result.seconds,
        "checkpoint": str(Path(out) / CHECKPOINT_NAME),
        "seconds": time.perf_counter() - start,
        **(extra_summary or {}),
    }
    write_json(out / "summary.json", summary)
    return result, summary


def stdp_run_settings(experiment: ExperimentSettings, settings: StdpSettings) -> dict:
    """The settings that determine an STDP run's result: what ``run.json`` records and
    ``--resume`` compares (``stdp_epochs`` and ``stdp_ae_epochs`` may grow)."""
    skip = set(runtime_keys(ExperimentSettings)) | {"activation", "alpha", "levels"}
    values = {k: v for k, v in asdict(experiment).items() if k not in skip}
    return {"route": ROUTE, **values, **asdict(settings)}


def run_training_experiment(
    experiment: ExperimentSettings,
    settings: StdpSettings,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = print,
    energy: SimulationSettings | None = None,
) -> tuple[StdpResult, dict]:
    """What ``spikebridge train --route stdp`` runs: the data of ``experiment``, the route's
    configuration for its architecture (:func:`config_for`), training and the outputs in ``out``.

    ``out`` is taken for this run first (:func:`spikebridge.rundir.claim`): one run at a time, a
    directory holding other results refused unless ``overwrite``, a finished run refused unless
    ``resume`` (same settings; the epoch counts may grow) or ``overwrite``.

    Raises ValueError for event data, :class:`UnsupportedArchitectureError` for an architecture
    the route has no form of.
    """
    e, s = experiment, settings
    if e.export_nir:
        raise ValueError(
            "--export-nir: the stdp route's winner-take-all neurons (k winners per position, "
            "lateral inhibition) have no NIR node, so it cannot be written as NIR; drop "
            "--export-nir (the direct route exports: --route direct)"
        )
    if e.normalize:
        raise ValueError(
            "--normalize: the stdp route encodes intensities in [0, 1] as spike rates, which "
            "normalised inputs are not; drop --normalize for --route stdp"
        )
    info = dataset_info(e.dataset)
    if info.is_event:
        raise ValueError(
            f"the stdp route takes static images (digits, mnist, fashion-mnist, cifar10); "
            f"{e.dataset!r} is event data"
        )
    config = config_for(
        e.arch, info.in_channels, info.image_size, info.num_classes,
        conv_channels=s.stdp_conv_channels, feature_channels=s.stdp_feature_channels,
        ae_epochs=s.stdp_ae_epochs, stdp_epochs=max(s.stdp_epochs, 1),
        timesteps=s.stdp_timesteps,
    )  # fmt: skip
    train_loader, test_loader = make_loaders(
        e.dataset, e.data_root, e.batch_size, e.limit, e.seed, e.download,
        train_limit=e.train_limit,
    )  # fmt: skip
    record = stdp_run_settings(e, s)
    grow = ("stdp_epochs", "stdp_ae_epochs")
    with claim(out, "train", record, overwrite=overwrite, resume=resume, rerun=False,
               may_grow=grow) as run:  # fmt: skip
        if resume and not (run.path / CHECKPOINT_NAME).is_file():
            raise ValueError(f"--resume: no checkpoint at {run.path / CHECKPOINT_NAME} to resume")
        run.begin(remove=run.previous_files() if overwrite else [], planned=OUTPUT_FILES)
        seed_everything(e.seed)
        extra = {"arch": e.arch, "dataset": e.dataset, "batch_size": e.batch_size,
                 "settings": record}  # fmt: skip
        done = train_to_directory(
            config,
            train_loader,
            test_loader,
            run.path,
            e.seed,
            resume,
            progress,
            log,
            extra,
            energy=energy,
        )
        run.finish([run.path / name for name in OUTPUT_FILES])
    return done
