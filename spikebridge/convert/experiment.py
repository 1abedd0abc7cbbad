"""One conversion experiment from settings: the data, the ANN (trained or loaded), the loop, and
its files (what ``spikebridge convert`` runs)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data import DatasetInfo, calibration_loader, dataset_info, make_loaders
from ..io import output_dir, save_figure, save_torch, write_csv, write_json
from ..model_files import load_ann
from ..models import build_model
from ..settings import ConversionSettings, ExperimentSettings, SimulationSettings, TrainingSettings
from ..training import train_ann
from .loop import ConversionResult, run_conversion
from .tuning import held_out_loader


@dataclass
class ConversionRun:
    """What :func:`run_conversion_experiment` returns: the loop's result, the ANN and its
    training history, the dataset's description and the wall time."""

    result: ConversionResult
    model: nn.Module
    info: DatasetInfo
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def run_conversion_experiment(
    experiment: ExperimentSettings,
    training: TrainingSettings,
    conversion: ConversionSettings,
    simulation: SimulationSettings,
    *,
    checkpoint: str | None = None,
    trust_checkpoint: bool = False,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> ConversionRun:
    """Load the data, build the ANN (from ``checkpoint`` when given: a state dict, a
    torch.export program or, with ``trust_checkpoint``, a pickled module), train it for
    ``training.epochs`` epochs, and run the conversion loop on the test set."""
    start = time.perf_counter()
    info = dataset_info(experiment.dataset)
    if info.is_event:
        raise ValueError(
            f"--dataset {experiment.dataset}: the conversion route takes static images "
            "(rate-coded by the encoder); event data has no ANN counterpart. Train it directly "
            "with `spikebridge train`"
        )
    e = experiment
    train_loader, test_loader = make_loaders(
        e.dataset, e.data_root, e.batch_size, e.limit, e.seed, e.download,
        train_limit=e.train_limit,
    )  # fmt: skip
    model = build_model(
        e.arch, info.num_classes, info.in_channels, info.image_size, e.width,
        activation=e.activation, pool=e.pool, alpha=e.alpha, levels=e.levels,
    )  # fmt: skip
    if checkpoint:
        model = load_ann(checkpoint, model, trust_checkpoint)
    history = []
    if training.epochs > 0:
        history = train_ann(
            model, train_loader, training.epochs, training.lr, device, e.seed, progress
        )
    model.eval()
    calib = calibration_loader(
        train_loader.dataset, conversion.calibration_samples, e.batch_size, e.seed
    )
    validation = None
    if conversion.percentile == "auto":
        validation = held_out_loader(train_loader.dataset, conversion, e.batch_size, e.seed)
    result = run_conversion(
        model, calib, test_loader, conversion, simulation, device=device, seed=e.seed,
        progress=progress, validation=validation,
    )  # fmt: skip
    return ConversionRun(result, model, info, history, time.perf_counter() - start)


def write_conversion_outputs(
    out: str | Path,
    run: ConversionRun,
    experiment: ExperimentSettings,
    conversion: ConversionSettings,
    simulation: SimulationSettings,
) -> Path:
    """``accuracy_vs_timesteps.csv``, ``snn_<network>.pt``, ``latency_accuracy.png`` and
    ``summary.json`` in ``out`` (each written atomically)."""
    from ..compare.plots import latency_accuracy_figure

    out = output_dir(out)
    result = run.result
    write_csv(out / "accuracy_vs_timesteps.csv", result.accuracy)
    for key, net in result.networks.items():
        save_torch(out / f"snn_{key}.pt", net.cpu())
    fig = latency_accuracy_figure(
        result.accuracy, result.ann_accuracy, f"{experiment.arch} on {experiment.dataset}"
    )
    save_figure(out / "latency_accuracy.png", fig)
    choice = result.percentile
    write_json(
        out / "summary.json",
        {
            "dataset": experiment.dataset,
            "arch": experiment.arch,
            "ann_accuracy": result.ann_accuracy,
            "timesteps": simulation.timesteps,
            "methods": sorted(result.networks),
            "skipped_methods": result.skipped,
            "encoding": simulation.encoding,
            "reset": conversion.reset,
            "percentile": choice.percentile if choice is not None else conversion.percentile,
            "percentile_selection": None
            if choice is None
            else {
                "timesteps": choice.timesteps,
                "validation_accuracy": {str(p): a for p, a in choice.accuracy.items()},
            },
            "initial_potential": conversion.initial_potential,
            "negative_spikes": conversion.negative_spikes,
            "seed": experiment.seed,
            "settings": {**asdict(experiment), **asdict(conversion), **asdict(simulation)},
            "ann_training": run.history,
            "simulation_seconds": result.seconds,
            # building each network; for calibrated (one network per T) its calibration time
            "conversion_seconds": result.conversion_seconds,
            "seconds": run.seconds,
        },
    )
    return out
