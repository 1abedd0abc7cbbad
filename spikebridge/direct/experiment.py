"""One direct-training experiment from settings: the data, the SNN, STBP training, its files
(what ``spikebridge train`` runs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..data import dataset_info, make_loaders
from ..io import output_dir, write_csv, write_json
from ..runtime import seed_everything
from ..settings import ExperimentSettings, TrainingSettings
from .snn import build_direct_snn
from .trainer import TrainResult, train_direct

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_COLUMNS = ["epoch", "loss", "train_accuracy", "test_accuracy", "seconds"]


def run_training_experiment(
    experiment: ExperimentSettings,
    training: TrainingSettings,
    out: str | Path,
    *,
    resume: bool = False,
    workers: int = 0,
    progress: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    write: bool = True,
) -> TrainResult:
    """Train the direct SNN of ``experiment.arch`` with the ``direct_*`` settings of
    ``training``, checkpointing to ``out/checkpoint.pt`` every epoch (``resume`` continues from
    it); with ``write`` (rank 0 under torchrun) also ``history.csv``,
    ``accuracy_vs_timesteps.csv`` and ``summary.json``. Event datasets are fed as frames."""
    start = time.perf_counter()
    e, t = experiment, training
    timesteps = t.direct_timesteps
    out = output_dir(out)
    info = dataset_info(e.dataset)
    train_loader, test_loader = make_loaders(
        e.dataset, e.data_root, e.batch_size, e.limit, e.seed, e.download,
        timesteps=timesteps if info.is_event else None, num_workers=workers,
        train_limit=e.train_limit,
    )  # fmt: skip
    seed_everything(e.seed)
    network = build_direct_snn(
        e.arch, info.num_classes, info.in_channels, info.image_size, e.width,
        threshold=t.direct_threshold, tau_decay=t.direct_tau_decay,
        surrogate=t.direct_surrogate, surrogate_width=t.direct_surrogate_width, pool=e.pool,
        encoding="events" if info.is_event else "analog",
    )  # fmt: skip
    result = train_direct(
        network, train_loader, test_loader, timesteps=timesteps, epochs=t.direct_epoch_count(),
        optimizer=t.direct_optimizer, lr=t.direct_learning_rate(), momentum=t.direct_momentum,
        weight_decay=t.direct_weight_decay, schedule=t.direct_schedule, seed=e.seed,
        checkpoint_path=out / CHECKPOINT_NAME, resume=resume, device=e.device,
        progress=progress, on_epoch=on_epoch,
    )  # fmt: skip
    if write:
        summary = {
            "route": "direct", "method": "stbp-tdbn", "arch": e.arch, "width": e.width,
            "dataset": e.dataset, "timesteps": timesteps, "epochs": t.direct_epoch_count(),
            "optimizer": t.direct_optimizer, "lr": t.direct_learning_rate(),
            "schedule": t.direct_schedule, "weight_decay": t.direct_weight_decay,
            "batch_size": e.batch_size, "seed": e.seed,
            "train_samples": len(train_loader.dataset),
        }  # fmt: skip
        write_training_outputs(out, result, summary, time.perf_counter() - start)
    return result


def write_training_outputs(out: Path, result: TrainResult, summary: dict, seconds: float) -> None:
    """``history.csv``, ``accuracy_vs_timesteps.csv`` (the test accuracy after every step of one
    simulation) and ``summary.json`` in ``out``, each written atomically."""
    write_csv(out / "history.csv", pd.DataFrame(result.history, columns=HISTORY_COLUMNS))
    ev = result.evaluation
    accuracy = ev.accuracy.tolist() if ev is not None else []
    curve = pd.DataFrame(
        {
            "route": "direct",
            "method": "stbp-tdbn",
            "timesteps": list(range(1, len(accuracy) + 1)),
            "accuracy": accuracy,
        },
        columns=["route", "method", "timesteps", "accuracy"],
    )
    write_csv(out / "accuracy_vs_timesteps.csv", curve)
    write_json(
        out / "summary.json",
        {
            **summary,
            "test_samples": ev.total if ev is not None else 0,
            "test_accuracy": accuracy[-1] if accuracy else None,
            "accuracy_vs_timesteps": accuracy,
            "spec": getattr(result.network, "spec", {}),
            "checkpoint": str(out / CHECKPOINT_NAME),
            "seconds": seconds,
        },
    )
