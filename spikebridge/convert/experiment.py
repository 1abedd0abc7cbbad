"""One conversion experiment from settings: the data, the ANN (trained or loaded), the loop, and
its files (what ``spikebridge convert`` runs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import DatasetInfo, calibration_loader, dataset_info, make_loaders
from ..io import output_dir, save_figure, save_torch, write_csv, write_json
from ..loading import check_input, is_graph_file
from ..model_files import load_ann
from ..models import build_model
from ..runtime import seed_everything
from ..settings import (
    ConversionSettings,
    ExperimentSettings,
    SimulationSettings,
    TrainingSettings,
    runtime_keys,
)
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
    label: str | None = None  # the model's name in outputs (a graph file's name; else the arch)


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
    on_start: Callable[[], None] | None = None,
) -> ConversionRun:
    """Load the data, build the ANN (from ``checkpoint`` when given: a .pt2 or .onnx file with
    its own graph, the architecture settings unused; a state dict for the architecture; or,
    with ``trust_checkpoint``, a pickled module), train it for
    ``training.epochs`` epochs, and run the conversion loop on the test set..

    ``on_start`` is called once the data and the ANN are loaded, before any compute (the CLI
    records its run there: a failure before it leaves the output directory untouched)."""
    start = time.perf_counter()
    if experiment.export_nir:
        from ..interop import check_nir_available

        check_nir_available()
    seed_everything(experiment.seed)  # before anything is built: the weights follow the seed
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
    if checkpoint and is_graph_file(checkpoint):
        model = load_ann(checkpoint, None, trust_checkpoint)  # the file's own graph
        check_input(model, next(iter(test_loader))[0][:2], checkpoint, e.dataset, info.num_classes)
    else:
        model = build_model(
            e.arch, info.num_classes, info.in_channels, info.image_size, e.width,
            activation=e.activation, pool=e.pool, alpha=e.alpha, levels=e.levels,
        )  # fmt: skip
        if checkpoint:
            model = load_ann(checkpoint, model, trust_checkpoint)
    if on_start is not None:
        on_start()
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
    label = Path(checkpoint).name if checkpoint and is_graph_file(checkpoint) else e.arch
    return ConversionRun(result, model, info, history, time.perf_counter() - start, label)


def conversion_settings(
    experiment: ExperimentSettings,
    training: TrainingSettings,
    conversion: ConversionSettings,
    simulation: SimulationSettings,
    checkpoint: str | None = None,
) -> dict[str, Any]:
    """The settings that determine a conversion experiment's results, named as ``spikebridge
    convert``'s flags: what ``run.json`` records (the direct route's settings and where data
    lives or which device runs are not among them)."""
    values: dict[str, Any] = {}
    for group in (experiment, training, conversion, simulation):
        skip = set(runtime_keys(type(group)))
        values.update({k: v for k, v in asdict(group).items() if k not in skip})
    values = {k: v for k, v in values.items() if not k.startswith("direct_")}
    values["checkpoint"] = None if checkpoint is None else str(checkpoint)
    return values


def conversion_output_files(out: str | Path, run: ConversionRun) -> list[Path]:
    """The files :func:`write_conversion_outputs` writes for ``run``."""
    out = Path(out)
    names = ["accuracy_vs_timesteps.csv", "latency_accuracy.png", "summary.json"]
    names += [f"snn_{key}.pt" for key in run.result.networks]
    nir = [out / f"snn_{key}.nir" for key in run.result.networks]  # with export_nir only
    return [out / name for name in names] + [path for path in nir if path.exists()]


def write_conversion_outputs(
    out: str | Path,
    run: ConversionRun,
    experiment: ExperimentSettings,
    conversion: ConversionSettings,
    simulation: SimulationSettings,
) -> Path:
    """``accuracy_vs_timesteps.csv``, ``snn_<network>.pt``, ``latency_accuracy.png`` and
    ``summary.json`` in ``out`` (each written atomically); with ``experiment.export_nir`` also
    ``snn_<network>.nir`` (docs/nir.md)."""
    from ..compare.plots import latency_accuracy_figure

    out = output_dir(out)
    result = run.result
    write_csv(out / "accuracy_vs_timesteps.csv", result.accuracy)
    for key, net in result.networks.items():
        save_torch(out / f"snn_{key}.pt", net.cpu())
    if experiment.export_nir:
        from ..interop import export_nir_files

        shape = (run.info.in_channels, run.info.image_size, run.info.image_size)
        export_nir_files(result.networks, out, shape)
    label = run.label or experiment.arch
    fig = latency_accuracy_figure(
        result.accuracy, result.ann_accuracy, f"{label} on {experiment.dataset}"
    )
    save_figure(out / "latency_accuracy.png", fig)
    choice = result.percentile
    write_json(
        out / "summary.json",
        {
            "dataset": experiment.dataset,
            "arch": label,
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
            # its processor time (this process): the cost on an idle machine
            "conversion_cpu_seconds": result.conversion_cpu_seconds,
            "seconds": run.seconds,
        },
    )
    return out
