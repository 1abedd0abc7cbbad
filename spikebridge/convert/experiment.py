"""One conversion experiment from settings: the data, the ANN (trained or loaded), the loop, and
its files (what ``spikebridge convert`` runs)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ..data import DatasetInfo, dataset_info, make_loaders, split_validation
from ..health import CONVERTED_ADVICE, weak_network_message
from ..io import output_dir, save_figure, save_torch, write_json
from ..labels import with_finetune_column
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
from ..snn_files import ann_record, save_ann, save_snn
from ..tables import history_frame, percent, write_table
from ..training import train_ann
from ..validation import check_before_training
from .loop import ConversionResult, run_conversion
from .methods import MethodSettings, flat_settings
from .tuning import conversion_loaders


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
    ann_record: dict | None = None  # how to rebuild the ANN's graph (None: a pickled module)
    warnings: list[str] = field(default_factory=list)  # weak networks (spikebridge.health)
    energy: pd.DataFrame | None = None  # energy.csv's rows (spikebridge.energy.book)
    energy_breakdown: pd.DataFrame | None = None  # per network, model, layer and component
    notes: list[str] = field(default_factory=list)  # what the energy models assumed or left out


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
    method_settings: Mapping[str, MethodSettings] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    workers: int = 0,
) -> ConversionRun:
    """Load the data, build the ANN (from ``checkpoint`` when given: a .pt2 or .onnx file with
    its own graph, the architecture settings unused; a state dict for the architecture; or,
    with ``trust_checkpoint``, a pickled module), train it for
    ``training.epochs`` epochs, and run the conversion loop on the test set..

    ``method_settings``: method name -> its settings (default: each method's defaults).
    ``on_start`` is called once the data and the ANN are loaded, before any compute (the CLI
    records its run there: a failure before it leaves the output directory untouched);
    ``on_epoch`` with each epoch's history row of the ANN's training. A fraction
    ``experiment.validation_fraction`` of the training images is held out to validate the
    training (history column ``validation_accuracy``). ``workers``: data loader worker
    processes (the results do not depend on it)."""
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
        train_limit=e.train_limit, normalize=e.normalize, num_workers=workers,
    )  # fmt: skip
    train_loader, validation_loader = split_validation(train_loader, e.validation_fraction, e.seed)
    graph_file = checkpoint if checkpoint and is_graph_file(checkpoint) else None
    record = ann_record(
        e.arch, info.num_classes, info.in_channels, info.image_size, e.width, e.activation,
        e.pool, e.alpha, e.levels, graph_file=graph_file,
    )  # fmt: skip
    if graph_file:
        model = load_ann(checkpoint, None, trust_checkpoint)  # the file's own graph
        check_input(model, next(iter(test_loader))[0][:2], checkpoint, e.dataset, info.num_classes)
    else:
        model = build_model(
            e.arch, info.num_classes, info.in_channels, info.image_size, e.width,
            activation=e.activation, pool=e.pool, alpha=e.alpha, levels=e.levels,
        )  # fmt: skip
        if checkpoint:
            loaded = load_ann(checkpoint, model, trust_checkpoint)
            record = record if loaded is model else None  # a trusted pickle: the user's class
            model = loaded
    # what can be checked before any training is checked now: methods that cannot apply to
    # these activations (every method named must: the loop is strict), too few training images
    # for --percentile auto, batch sizes
    check_before_training(
        model, len(train_loader.dataset), e.batch_size, training, conversion, strict_methods=True
    )
    if on_start is not None:
        on_start()
    history = []
    if training.epochs > 0:
        history = train_ann(
            model, train_loader, training.epochs, training.lr, device, e.seed, progress,
            validation_loader=validation_loader, on_epoch=on_epoch,
        )  # fmt: skip
    model.eval()
    calib, validation = conversion_loaders(train_loader.dataset, conversion, e.batch_size, e.seed)
    result = run_conversion(
        model, calib, test_loader, conversion, simulation, device=device, seed=e.seed,
        progress=progress, validation=validation, method_settings=method_settings, count_ops=True,
    )  # fmt: skip
    label = Path(checkpoint).name if graph_file else e.arch
    energy, breakdown, notes = conversion_energy(
        result, model, train_loader.dataset, test_loader, e, conversion, simulation, device,
        ann_method=e.activation if not graph_file else label,
        ann_train_seconds=sum(r["seconds"] for r in history) if history else float("nan"),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    done = ConversionRun(result, model, info, history, seconds, label, record)
    done.energy, done.energy_breakdown, done.notes = energy, breakdown, list(notes)
    done.warnings = weak_networks(done)
    return done


def weak_networks(run: ConversionRun) -> list[str]:
    """One message per weak network (:mod:`spikebridge.health`): the ANN near chance or far
    below its training accuracy, a spiking network near chance at its longest T."""
    k = run.info.num_classes
    trained = run.history[-1]["train_accuracy"] if run.history else None
    result = run.result
    found = [weak_network_message(f"the ANN ({run.label})", result.ann_accuracy, k, trained)]
    final = result.accuracy.sort_values("timesteps").groupby("method", sort=False).last()
    for method, row in final.iterrows():
        found.append(weak_network_message(
            f"the {method} SNN (T = {int(row['timesteps'])})", row["accuracy"], k, None,
            CONVERTED_ADVICE,
        ))  # fmt: skip
    return [message for message in found if message]


def conversion_settings(
    experiment: ExperimentSettings,
    training: TrainingSettings,
    conversion: ConversionSettings,
    simulation: SimulationSettings,
    checkpoint: str | None = None,
    method_settings: Mapping[str, MethodSettings] | None = None,
) -> dict[str, Any]:
    """The settings that determine a conversion experiment's results, named as ``spikebridge
    convert``'s flags: what ``run.json`` records (the direct route's settings and where data
    lives or which device runs are not among them)."""
    values: dict[str, Any] = {}
    for group in (experiment, training, conversion, simulation):
        skip = set(runtime_keys(type(group)))
        values.update({k: v for k, v in asdict(group).items() if k not in skip})
    values = {k: v for k, v in values.items() if not k.startswith("direct_")}
    values.update(flat_settings(method_settings or {}))
    values["checkpoint"] = None if checkpoint is None else str(checkpoint)
    return values


def network_method(key: str) -> tuple[str, int | None]:
    """``calibrated-T4`` -> (``calibrated``, 4); ``channel`` -> (``channel``, None)."""
    match = re.fullmatch(r"(.+)-T(\d+)", key)
    return (match.group(1), int(match.group(2))) if match else (key, None)


def conversion_energy(
    result: ConversionResult,
    model: nn.Module,
    calibration_dataset,
    test_loader,
    experiment: ExperimentSettings,
    conversion: ConversionSettings,
    simulation: SimulationSettings,
    device: torch.device | str = "cpu",
    *,
    ann_method: str = "relu",
    ann_train_seconds: float = float("nan"),
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, list[str]]:
    """``energy.csv``'s rows of a conversion (the ANN, every converted network at its T, the
    quantised ANNs and the break-even columns, under ``simulation.energy_models``), its
    breakdown and notes, from the evaluations the loop already made (operations counted)."""
    from ..energy.book import energy_tables

    if result.ann_evaluation is None or result.ann_evaluation.macs_per_sample is None:
        return None, None, []
    keys = list(result.evaluations)
    networks = [
        (
            "conversion",
            network_method(key)[0],
            result.networks[key],
            result.evaluations[key].timesteps,
        )
        for key in keys
    ]
    return energy_tables(
        model, networks, test_loader, calibration_dataset, models=simulation.energy_models,
        calibration_samples=conversion.calibration_samples, batch_size=experiment.batch_size,
        seed=experiment.seed, e_mac=simulation.e_mac, e_ac=simulation.e_ac, device=device,
        ann_method=ann_method, ann_evaluation=result.ann_evaluation,
        evaluations=[result.evaluations[key] for key in keys],
        convert_seconds=[result.conversion_seconds.get(key, float("nan")) for key in keys],
        ann_train_seconds=ann_train_seconds,
    )  # fmt: skip


def conversion_tables(
    run: ConversionRun, experiment: ExperimentSettings, simulation: SimulationSettings
) -> dict[str, pd.DataFrame]:
    """The tables ``spikebridge convert`` writes, as files hold them (accuracy in %, T an
    integer): ``accuracy_vs_timesteps``, ``energy`` (the columns of ``spikebridge compare``'s,
    every energy model's included, with the quantised-ANN rows), ``energy_breakdown`` and
    ``history`` (the ANN's training, when it was trained here)."""
    result = run.result
    tables = {"accuracy_vs_timesteps": with_finetune_column(percent(result.accuracy, ["accuracy"]))}
    if run.energy is not None:
        tables["energy"] = with_finetune_column(percent(run.energy, ["accuracy"]))
    if run.energy_breakdown is not None and len(run.energy_breakdown):
        tables["energy_breakdown"] = run.energy_breakdown
    if run.history:
        tables["history"] = history_frame(run.history, "ann", run.label or experiment.arch)
    return tables


def conversion_output_files(out: str | Path, run: ConversionRun) -> list[Path]:
    """The files :func:`write_conversion_outputs` writes for ``run``."""
    out = Path(out)
    names = ["latency_accuracy.png", "latency_accuracy.svg", "summary.json"]
    for table in ("accuracy_vs_timesteps", "energy", "energy_breakdown", "history"):
        names += [f"{table}.csv", f"{table}.tex"]
    names += ["ann.pt"] + [f"snn_{key}.pt" for key in run.result.networks]
    optional = [f"snn_{key}.nir" for key in run.result.networks]  # with export_nir
    optional += [f"snn_{key}.pickle.pt" for key in run.result.networks]  # with save_pickle
    paths = [out / name for name in names + optional]
    return [path for path in paths if path.exists()]


def write_conversion_outputs(
    out: str | Path,
    run: ConversionRun,
    experiment: ExperimentSettings,
    conversion: ConversionSettings,
    simulation: SimulationSettings,
    method_settings: Mapping[str, MethodSettings] | None = None,
    save_pickle: bool = False,
) -> Path:
    """Write a conversion's files in ``out``, each atomically: the tables of
    :func:`conversion_tables` as CSV and LaTeX (``NAME.csv``, ``NAME.tex``),
    ``latency_accuracy.png`` and ``.svg``, ``summary.json``, the trained ANN as ``ann.pt`` and
    every spiking network as ``snn_<network>.pt``, both weights-only files the toolkit rebuilds
    without running code from them (:mod:`spikebridge.snn_files`). ``save_pickle`` also writes
    each network pickled whole (``snn_<network>.pickle.pt``: loading it runs code, so it needs
    ``--trust-checkpoint``); with ``experiment.export_nir`` also ``snn_<network>.nir``
    (docs/nir.md). A network converted from a trusted pickled module cannot be rebuilt from
    weights, so its ``snn_<network>.pt`` is a pickle."""
    from ..plots import latency_accuracy_figure

    out = output_dir(out)
    result = run.result
    for name, frame in conversion_tables(run, experiment, simulation).items():
        write_table(out / f"{name}.csv", frame)
    record = run.ann_record
    if record is not None:
        save_ann(out / "ann.pt", run.model, record, dataset=experiment.dataset)
    for key, net in result.networks.items():
        if record is None:
            save_torch(out / f"snn_{key}.pt", net.cpu())
            continue
        method, target = network_method(key)
        save_snn(
            out / f"snn_{key}.pt", net.cpu(), record, conversion.maxpool, simulation.encoding,
            experiment.seed, method=method, timesteps=target or simulation.timesteps,
            dataset=experiment.dataset,
        )  # fmt: skip
        if save_pickle:
            save_torch(out / f"snn_{key}.pickle.pt", net.cpu())
    if experiment.export_nir:
        from ..interop import export_nir_files

        shape = (run.info.in_channels, run.info.image_size, run.info.image_size)
        export_nir_files(result.networks, out, shape)
    label = run.label or experiment.arch
    fig = latency_accuracy_figure(
        result.accuracy, result.ann_accuracy, f"{label} on {experiment.dataset}"
    )
    save_figure(out / "latency_accuracy.png", fig, dpi=160, bbox_inches="tight")
    save_figure(out / "latency_accuracy.svg", fig, bbox_inches="tight")
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
            "warnings": run.warnings,
            "notes": run.notes,
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
            "settings": {
                **asdict(experiment),
                **asdict(conversion),
                **flat_settings(method_settings or {}),
                **asdict(simulation),
            },  # fmt: skip
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
