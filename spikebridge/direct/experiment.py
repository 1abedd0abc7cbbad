"""One direct-training experiment from settings: the data, the SNN, STBP training, its files
(what ``spikebridge train`` runs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from ..data import dataset_info, make_loaders, split_validation
from ..energy.book import write_network_energy
from ..evaluation import evaluate
from ..io import write_json
from ..rundir import check_resume, claim
from ..runtime import resolve_device, seed_everything
from ..settings import ExperimentSettings, SimulationSettings, TrainingSettings, runtime_keys
from ..tables import history_frame, write_table
from .checkpoint import load_training_checkpoint
from .snn import build_direct_snn
from .trainer import TrainResult, train_direct

CHECKPOINT_NAME = "checkpoint.pt"
OUTPUT_FILES = (
    CHECKPOINT_NAME, "history.csv", "history.tex", "accuracy_vs_timesteps.csv",
    "accuracy_vs_timesteps.tex", "summary.json", "energy.csv", "energy.tex",
    "energy_breakdown.csv", "energy_breakdown.tex",
)  # fmt: skip
HISTORY_COLUMNS = [
    "epoch", "loss", "train_accuracy_pct", "validation_accuracy_pct", "test_accuracy_pct",
    "seconds",
]  # fmt: skip


def training_settings(
    experiment: ExperimentSettings, training: TrainingSettings, timesteps: int | None = None
) -> dict[str, Any]:
    """The settings that determine a direct-training run's result, by their field names (as
    compare's record has them; ``direct_epochs`` and ``direct_lr`` resolved) and ``timesteps``,
    the T the trained network is simulated for (default: its training T): what ``run.json``
    records and ``--resume`` compares."""
    skip = set(runtime_keys(ExperimentSettings)) | {"activation", "alpha", "levels"}
    values = {k: v for k, v in asdict(experiment).items() if k not in skip}
    values.update({k: v for k, v in asdict(training).items() if k.startswith("direct_")})
    values["direct_epochs"] = training.direct_epoch_count()
    values["direct_lr"] = training.direct_learning_rate()
    values["timesteps"] = timesteps if timesteps is not None else training.direct_timesteps
    return values


LEGACY_KEYS = (
    "timesteps", "epochs", "optimizer", "lr", "momentum", "weight_decay", "schedule",
    "threshold", "tau_decay", "surrogate", "surrogate_width",
)  # fmt: skip
"""The direct settings a record of spikebridge 0.x's ``train`` named without ``direct_``."""


def upgrade_record(settings: dict[str, Any]) -> dict[str, Any]:
    """A direct-training record's settings by today's names: a record written before train's
    flags had one meaning (``timesteps`` the training T, ``epochs``, ``lr``, ``optimizer``, ...
    without ``direct_``) gets the ``direct_`` names and ``timesteps``, the simulated T, equal
    to the training T (all such runs simulated at it). Other records are returned as they are."""
    if (
        settings.get("route") == "stdp"
        or "direct_timesteps" in settings
        or ("optimizer" not in settings)
    ):
        return settings
    upgraded = {k: v for k, v in settings.items() if k not in LEGACY_KEYS}
    upgraded.update({f"direct_{k}": settings[k] for k in LEGACY_KEYS if k in settings})
    upgraded["timesteps"] = settings.get("timesteps")
    return upgraded


# checkpoint config key -> training_settings key, for checkpoints written before run.json
_CHECKPOINT_CONFIG = {
    "timesteps": "direct_timesteps", "epochs": "direct_epochs", "optimizer": "direct_optimizer",
    "lr": "direct_lr", "momentum": "direct_momentum", "weight_decay": "direct_weight_decay",
    "schedule": "direct_schedule", "seed": "seed",
}  # fmt: skip


def _check_resumable(path: Path, settings: dict[str, Any], recorded: bool) -> int:
    """Before any compute: the checkpoint to resume exists and reads, and (for a directory
    without a run record) its saved training config equals ``settings`` (epochs may grow).
    Returns the number of epochs the checkpoint holds."""
    saved = load_training_checkpoint(path, resume=True)
    if not recorded:
        config = saved.get("config") or {}
        pairs = {k: v for k, v in _CHECKPOINT_CONFIG.items() if k in config}
        check_resume(
            {v: config[k] for k, v in pairs.items()},
            {v: settings[v] for v in pairs.values()},
            may_grow=("direct_epochs",),
            source=str(path),
        )
    return int(saved.get("epoch", 0))


def run_training_experiment(
    experiment: ExperimentSettings,
    training: TrainingSettings,
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    workers: int = 0,
    progress: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    write: bool = True,
    energy: SimulationSettings | None = None,
    timesteps: int | None = None,
) -> TrainResult:
    """Train the direct SNN of ``experiment.arch`` with the ``direct_*`` settings of
    ``training``, checkpointing to ``out/checkpoint.pt`` every epoch (``resume`` continues from
    it); with ``write`` (rank 0 under torchrun) also ``history.csv``,
    ``accuracy_vs_timesteps.csv``, ``summary.json`` and the trained network's ``energy.csv``
    and ``energy_breakdown.csv`` under ``energy.energy_models`` (default: every model; there is
    no ANN here, so no quantised-ANN rows: ``spikebridge compare`` has them). Event datasets are
    fed as frames. The trained network is simulated for ``timesteps`` steps (default: its
    training T, ``training.direct_timesteps``), as compare simulates it for ``--timesteps``:
    ``accuracy_vs_timesteps.csv`` has a row for every t <= ``timesteps`` and ``energy.csv``
    counts that T.

    ``out`` is taken for this run first (:func:`spikebridge.rundir.claim`): one run at a time, a
    directory holding other results refused unless ``overwrite``, a finished training run
    refused unless ``resume`` (with the same settings; epochs may grow) or ``overwrite``.
    """
    start = time.perf_counter()
    e, t = experiment, training
    if e.export_nir:
        from ..interop import check_nir_available

        check_nir_available()
    simulated = timesteps if timesteps is not None else t.direct_timesteps
    timesteps = t.direct_timesteps
    settings = training_settings(e, t, simulated)
    resolve_device(e.device)  # a missing GPU is an error before the directory is taken
    if t.direct_epoch_count() < 1:
        raise ValueError(
            f"--direct-epochs (--epochs) must be a positive integer to train, got "
            f"{t.direct_epoch_count()}"
        )
    info = dataset_info(e.dataset)
    if info.is_event and simulated != timesteps:
        raise ValueError(
            f"--timesteps {simulated}: {e.dataset} is fed as {timesteps} event frames per sample "
            "(--direct-timesteps), so the network is simulated for those; leave --timesteps out"
        )
    with claim(
        out, "train", settings, overwrite=overwrite, resume=resume, rerun=False,
        may_grow=("direct_epochs",), upgrade=upgrade_record,
    ) as run:  # fmt: skip
        out = run.path
        checkpoint = out / CHECKPOINT_NAME
        resumed_from = 0
        if resume:
            resumed_from = _check_resumable(checkpoint, settings, recorded=bool(run.previous))
        train_loader, test_loader = make_loaders(
            e.dataset, e.data_root, e.batch_size, e.limit, e.seed, e.download,
            timesteps=timesteps if info.is_event else None, num_workers=workers,
            train_limit=e.train_limit, normalize=e.normalize,
        )  # fmt: skip
        train_loader, validation_loader = split_validation(
            train_loader, e.validation_fraction, e.seed
        )
        seed_everything(e.seed)
        network = build_direct_snn(
            e.arch, info.num_classes, info.in_channels, info.image_size, e.width,
            threshold=t.direct_threshold, tau_decay=t.direct_tau_decay,
            surrogate=t.direct_surrogate, surrogate_width=t.direct_surrogate_width, pool=e.pool,
            encoding="events" if info.is_event else "analog",
        )  # fmt: skip
        replaced = run.previous_files() if overwrite else []
        run.begin(remove=replaced, planned=OUTPUT_FILES)
        result = train_direct(
            network, train_loader, test_loader, timesteps=timesteps,
            epochs=t.direct_epoch_count(), optimizer=t.direct_optimizer,
            lr=t.direct_learning_rate(), momentum=t.direct_momentum,
            weight_decay=t.direct_weight_decay, schedule=t.direct_schedule, seed=e.seed,
            checkpoint_path=checkpoint, resume=resume, device=e.device, progress=progress,
            on_epoch=on_epoch, validation_loader=validation_loader,
        )  # fmt: skip
        if simulated != timesteps and test_loader is not None:  # the curve to the simulated T
            result.evaluation = evaluate(
                result.network, test_loader, simulated, device=resolve_device(e.device)
            )
        if write:
            summary = {
                "route": "direct", "method": "stbp-tdbn", "arch": e.arch, "width": e.width,
                "dataset": e.dataset, "timesteps": timesteps, "simulated_timesteps": simulated,
                "epochs": t.direct_epoch_count(),
                "optimizer": t.direct_optimizer, "lr": t.direct_learning_rate(),
                "schedule": t.direct_schedule, "weight_decay": t.direct_weight_decay,
                "batch_size": e.batch_size, "seed": e.seed,
                "train_samples": len(train_loader.dataset),
                "validation_samples": len(validation_loader.dataset) if validation_loader else 0,
                "resumed_from_epoch": resumed_from, "settings": settings,
                "warnings": weak_warnings(result, info.num_classes),
            }  # fmt: skip
            write_training_outputs(out, result, summary, time.perf_counter() - start)
            seconds = sum(r.get("seconds", 0.0) for r in result.history) or float("nan")
            write_network_energy(
                out, "direct", "stbp-tdbn", result.network, simulated, test_loader,
                energy or SimulationSettings(), resolve_device(e.device), train_seconds=seconds,
            )  # fmt: skip
            if e.export_nir:  # the trained network with tdBN folded: out/direct.nir (docs/nir.md)
                from ..interop import export_nir_files

                shape = (info.in_channels, info.image_size, info.image_size)
                export_nir_files({"direct": result.network}, out, shape, pattern="{key}.nir")
            written = (*OUTPUT_FILES, "direct.nir")
            run.finish([out / name for name in written if (out / name).exists()])
    return result


def weak_warnings(result: TrainResult, num_classes: int) -> list[str]:
    """The weak-network message of the trained SNN (:mod:`spikebridge.health`), if any."""
    from ..health import weak_network_message

    ev = result.evaluation
    if ev is None or not result.history:
        return []
    message = weak_network_message(
        "the directly trained SNN", float(ev.accuracy[-1]), num_classes,
        result.history[-1]["train_accuracy"],
    )  # fmt: skip
    return [message] if message else []


def write_training_outputs(out: Path, result: TrainResult, summary: dict, seconds: float) -> None:
    """``history.csv``, ``accuracy_vs_timesteps.csv`` (the test accuracy after every step of one
    simulation) and ``summary.json`` in ``out``, each written atomically."""
    history = history_frame(result.history, "direct", str(summary.get("arch", "")))
    write_table(out / "history.csv", history[HISTORY_COLUMNS])
    ev = result.evaluation
    accuracy = ev.accuracy.tolist() if ev is not None else []
    curve = pd.DataFrame(
        {
            "route": "direct",
            "method": "stbp-tdbn",
            "timesteps": list(range(1, len(accuracy) + 1)),
            "accuracy_pct": [100 * a for a in accuracy],
        },
        columns=["route", "method", "timesteps", "accuracy_pct"],
    )
    write_table(out / "accuracy_vs_timesteps.csv", curve)
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
