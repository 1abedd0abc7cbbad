"""One comparison experiment: the ANN, every conversion method and the direct SNN, side by side.

:func:`run` trains (or reloads from DIR) the ANN, converts it with each requested method
(calibrating once), trains (or reloads) the directly trained SNN of the same architecture
(STBP-tdBN), simulates every network once for T steps on the same test set, and writes
``accuracy_vs_timesteps.csv``, ``energy.csv``, ``layers.csv``, the plots (PNG and SVG) and
``report.html`` into DIR. ``experiment.json`` in DIR records the settings: a re-run with the same
settings reuses the checkpoints under ``DIR/checkpoints`` instead of training again; a DIR holding
another experiment's results is refused unless ``overwrite``.

Under ``torchrun`` each process simulates its share of the test set and the counts are summed
(see :mod:`.evaluate`); the ANN is trained on rank 0, the direct SNN data-parallel by its trainer,
and rank 0 writes the outputs.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist

from ..convert import ConversionError, Converter, MethodNotApplicable
from ..data import calibration_loader, dataset_info, make_loaders
from ..direct.checkpoint import CheckpointError, load_checkpoint
from ..direct.distributed import setup_distributed
from ..direct.trainer import load_trained
from ..direct.trainer import train as train_direct
from ..io import output_dir, save_torch, write_csv, write_json
from ..models import MODEL_NAMES, build_model
from ..training import train_ann
from .config import Settings
from .energy import (
    ACCURACY_COLUMNS,
    LAYER_COLUMNS,
    ann_energy_row,
    ann_layer_frame,
    energy_frame,
    snn_accuracy_frame,
    snn_energy_row,
    snn_layer_frame,
)
from .evaluate import (
    Shard,
    current_shard,
    evaluate_ann_sharded,
    evaluate_network,
    launched_distributed,
)
from .ops import count_ann_ops
from .plots import energy_accuracy_figure, firing_rate_figure, latency_accuracy_figure, save_plots
from .report import write_report

EXPERIMENT_FILE = "experiment.json"
FORMAT = "spikebridge-comparison"
ANN_CHECKPOINT_FORMAT = "spikebridge-compare-ann"
RESULT_FILES = (
    "accuracy_vs_timesteps.csv",
    "energy.csv",
    "layers.csv",
    "results.json",
    "report.html",
    *(
        f"{n}.{ext}"
        for n in ("latency_accuracy", "energy_accuracy", "firing_rates")
        for ext in ("png", "svg")
    ),
)
DATA_BASED = ("max", "percentile", "channel")
DEMO_SETTINGS: dict[str, Any] = dict(
    arch="cnn", dataset="digits", methods="all", timesteps=32, epochs=8, direct_epochs=6,
    direct_timesteps=4, width=0.5, batch_size=64, lr=2e-3, calibration_samples=256,
)  # fmt: skip
"""A comparison on the offline digits data that runs in well under 3 minutes on 2 CPU cores:
``run(**DEMO_SETTINGS, out=...)``."""
DIRECT_METHOD = "stbp-tdbn"


@dataclass
class Comparison:
    """What :func:`run` returns.

    Attributes:
        accuracy: route, method, timesteps, accuracy, macs, sops, energy_pJ, spikes: one row per
            network and step t = 1..T (operations per inference, cumulative to t).
        energy: one row per network (the ANN included) at T: accuracy, MACs, SOPs, energy_pJ,
            firing rate, training, conversion and inference times.
        layers: per layer of every network: firing rate (neuron layers), SOPs and MACs.
        notes: methods that did not apply, reused checkpoints, anything not counted.
        settings: the experiment's settings.
        out: the output directory; files: what was written there.
    """

    accuracy: pd.DataFrame
    energy: pd.DataFrame
    layers: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None
    files: list[Path] = field(default_factory=list)
    ann_accuracy: float = float("nan")
    timings: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# the output directory


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [
        f"{k}: {old.get(k)!r} in DIR, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k)
    ]


def claim_directory(out: Path, experiment: dict, overwrite: bool) -> tuple[bool, list[str]]:
    """Check that ``out`` may hold this experiment; returns (same experiment as before, notes).

    Raises FileExistsError when ``out`` holds a different experiment's results (or files that
    are not a comparison's) and ``overwrite`` is False.
    """
    notes: list[str] = []
    record = out / EXPERIMENT_FILE
    if record.is_file():
        try:
            stored = json.loads(record.read_text(encoding="utf-8"))
            old = stored["settings"] if stored.get("format") == FORMAT else None
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            old = None
        if old is None:
            if not overwrite:
                raise FileExistsError(
                    f"{record} is not a spikebridge comparison record; choose another --out or pass "
                    "--overwrite to replace it"
                )
            return False, notes
        if old == experiment:
            return True, notes
        if not overwrite:
            diffs = "; ".join(_differences(old, experiment))
            raise FileExistsError(
                f"{out} holds the results of a different experiment ({diffs}). Choose another --out, "
                "or pass --overwrite to replace them (checkpoints still valid for the new settings are kept)"
            )
        notes.append(f"replacing the results of a different experiment in {out}")
        return False, notes
    if out.is_dir():
        visible = [p.name for p in out.iterdir() if not p.name.startswith(".")]
        if visible and not overwrite:
            raise FileExistsError(
                f"{out} is not empty ({', '.join(sorted(visible)[:5])}) and holds no comparison "
                f"record ({EXPERIMENT_FILE}); choose an empty or new --out, or pass --overwrite"
            )
    return False, notes


def _clear_results(out: Path) -> None:
    for name in RESULT_FILES:
        path = out / name
        if path.is_file():
            path.unlink()


# ----------------------------------------------------------------------------------------------
# the routes


def _load_ann_checkpoint(path: Path, expected: dict) -> dict | None:
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    if not isinstance(saved, dict) or saved.get("format") != ANN_CHECKPOINT_FORMAT:
        return None
    return saved if saved.get("settings") == expected else None


def _wait_for_ann_checkpoint(path: Path, expected: dict, poll_seconds: float = 1.0) -> dict:
    """Rank 0's ANN checkpoint once it is on disk (written atomically, so never half-read).

    Under torchrun a process that fails ends the whole job, so this cannot wait forever on a
    crashed rank 0.
    """
    while True:
        saved = _load_ann_checkpoint(path, expected)
        if saved is not None:
            return saved
        time.sleep(poll_seconds)


def _barrier(shard: Shard) -> None:
    if shard.enabled:
        dist.barrier()


def _log(log: Callable[[str], None] | None, message: str) -> None:
    if log is not None:
        log(message)


@dataclass
class _Context:
    settings: Settings
    out: Path
    device: torch.device
    shard: Shard
    progress: bool
    log: Callable[[str], None] | None
    notes: list[str]


def _ann_route(
    ctx: _Context, model: torch.nn.Module, train_loader
) -> tuple[torch.nn.Module, float, bool]:
    """The trained ANN (from the checkpoint when it fits), its training seconds, reused?"""
    s = ctx.settings
    experiment = s.experiment()
    expected = {k: experiment[k] for k in ANN_KEYS}
    path = ctx.out / "checkpoints" / "ann.pt"
    saved = _load_ann_checkpoint(path, expected)
    if saved is None:
        if ctx.shard.rank == 0:
            _log(ctx.log, f"training the ANN ({s.arch}, {s.epochs} epochs)")
            start = time.perf_counter()
            history = train_ann(
                model, train_loader, s.epochs, s.lr, ctx.device, s.seed, ctx.progress
            )
            seconds = time.perf_counter() - start
            path.parent.mkdir(parents=True, exist_ok=True)
            save_torch(
                path,
                {
                    "format": ANN_CHECKPOINT_FORMAT,
                    "version": 1,
                    "settings": expected,
                    "model": {k: v.cpu() for k, v in model.state_dict().items()},
                    "history": history,
                    "train_seconds": seconds,
                },
            )
        # other processes wait for rank 0's checkpoint without a collective call, which would
        # time out (30 min by default) on a long training run
        saved = _wait_for_ann_checkpoint(path, expected)
        reused = False
    else:
        _log(ctx.log, f"reusing the trained ANN from {path}")
        reused = True
    model.load_state_dict(saved["model"])
    return model.to(ctx.device).eval(), float(saved["train_seconds"]), reused


def _direct_spec(ctx: _Context, info) -> dict:
    s = ctx.settings
    return dict(
        num_classes=info.num_classes,
        in_channels=info.in_channels,
        image_size=info.image_size,
        width=s.width,
        pool=s.pool,
        encoding=s.encoding,
    )


DIRECT_KEYS = (
    "arch", "dataset", "width", "pool", "encoding", "direct_epochs", "direct_timesteps", "direct_lr",
    "direct_optimizer", "seed", "batch_size", "train_limit",
)  # fmt: skip
ANN_KEYS = (
    "arch",
    "dataset",
    "width",
    "activation",
    "pool",
    "epochs",
    "lr",
    "seed",
    "batch_size",
    "train_limit",
)


def _direct_route(ctx: _Context, info, train_loader):
    """The trained direct SNN (reusing or resuming its checkpoint), training seconds, reused?

    ``checkpoints/direct.json`` records the settings the checkpoint ``direct.pt`` is trained
    for; it is written before training starts, so an interrupted run resumes and a checkpoint of
    other settings is never mistaken for this one.
    """
    s = ctx.settings
    experiment = s.experiment()
    expected = {k: experiment[k] for k in DIRECT_KEYS}
    epochs = expected["direct_epochs"]
    path = ctx.out / "checkpoints" / "direct.pt"
    record = path.with_suffix(".json")
    try:
        recorded = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    except json.JSONDecodeError:
        recorded = None
    saved = None
    if recorded == expected and path.is_file():
        try:
            saved = load_checkpoint(path)
        except CheckpointError:
            saved = None
    if saved is not None and int(saved.get("epoch", 0)) >= epochs:
        _log(ctx.log, f"reusing the direct SNN from {path}")
        network = load_trained(path, ctx.device)
        seconds = sum(float(r.get("seconds", 0.0)) for r in saved.get("history", []))
        return network, seconds, True
    resume = saved is not None
    _barrier(ctx.shard)
    if ctx.shard.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not resume and path.exists():
            path.unlink()
        write_json(record, expected)
    _barrier(ctx.shard)
    what = f"training the direct SNN (STBP-tdBN, {epochs} epochs, T = {s.direct_timesteps})"
    _log(ctx.log, what + (" - resuming its checkpoint" if resume else ""))
    start = time.perf_counter()
    result = train_direct(
        s.arch,
        train_loader,
        None,
        timesteps=s.direct_timesteps,
        epochs=epochs,
        optimizer=s.direct_optimizer,
        lr=s.direct_lr,
        seed=s.seed,
        checkpoint_path=path,
        resume=resume,
        device=ctx.device,
        progress=ctx.progress,
        **_direct_spec(ctx, info),
    )
    seconds = (
        sum(float(r.get("seconds", 0.0)) for r in result.history) or time.perf_counter() - start
    )
    return result.network.eval(), seconds, False


# ----------------------------------------------------------------------------------------------
# the experiment


def run(
    arch: str = "cnn",
    dataset: str = "digits",
    *,
    data_root: str | None = None,
    methods: str | Sequence[str] = "all",
    timesteps: int = 32,
    epochs: int = 5,
    direct_epochs: int | None = None,
    direct_timesteps: int = 4,
    out: str | Path = "spikebridge-compare",
    width: float = 1.0,
    activation: str = "relu",
    pool: str = "avg",
    batch_size: int = 128,
    limit: int | None = None,
    train_limit: int | None = None,
    calibration_samples: int = 512,
    lr: float = 1e-3,
    direct_lr: float = 0.1,
    direct_optimizer: str = "sgd",
    seed: int = 0,
    device: str = "auto",
    e_mac: float = 4.6,
    e_ac: float = 0.9,
    reset: str = "subtract",
    encoding: str = "analog",
    percentile: float = 99.9,
    initial_potential: float | None = None,
    negative_spikes: bool | None = None,
    maxpool: str = "spiking",
    download: bool = False,
    progress: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> Comparison:
    """Compare the conversion route (every requested method) with the direct route on one dataset.

    Args:
        arch: ``cnn``, ``vgg11``, ``resnet20``, ``resnet19`` or ``torchvision:NAME`` (conversion only).
        dataset: ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10`` (static images).
        methods: ``"all"``, a comma-separated string or a list of conversion methods (model, max,
            percentile, channel, spike-norm, qcfs). Methods that do not apply to the ANN are
            skipped with a note and the rest run.
        timesteps: T; accuracy is reported after every t <= T (one simulation per network).
        epochs: ANN training epochs; ``direct_epochs`` the direct SNN's (default ``epochs``; 0
            skips the direct route), trained with ``direct_timesteps`` steps per sample.
        out: output directory DIR (see the module docstring for reuse and refusal).
        width: channel width multiplier of the architecture (both routes).
        limit: test samples (first N); ``train_limit``: a fixed random subset of training samples.
        calibration_samples: training samples for the conversion's calibration pass.
        e_mac, e_ac: energy per MAC and per accumulate (pJ; SPEC 3.2 defaults 4.6 and 0.9).
        reset, encoding, percentile, initial_potential, negative_spikes, maxpool: conversion options
            (see :func:`spikebridge.convert.convert`); ``encoding`` applies to both routes.
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: tqdm progress bars; ``log``: called with one line per stage (the CLI prints them).
        overwrite: replace another experiment's results in ``out``.

    Returns:
        :class:`Comparison` (the tables as DataFrames, the notes, the files written).

    Raises:
        ValueError (:class:`~spikebridge.compare.config.ConfigError`) for a bad setting, naming it;
        FileExistsError when ``out`` holds another experiment and ``overwrite`` is False.
    """
    settings = Settings(
        arch=arch, dataset=dataset, data_root=None if data_root is None else str(data_root),
        download=download, methods=methods if isinstance(methods, str) else list(methods),
        timesteps=timesteps, epochs=epochs, direct_epochs=direct_epochs, direct_timesteps=direct_timesteps,
        width=width, activation=activation, pool=pool, batch_size=batch_size, limit=limit,
        train_limit=train_limit, calibration_samples=calibration_samples, lr=lr, direct_lr=direct_lr,
        direct_optimizer=direct_optimizer, seed=seed, device=device, e_mac=e_mac, e_ac=e_ac, reset=reset,
        encoding=encoding, percentile=percentile, initial_potential=initial_potential, maxpool=maxpool,
        negative_spikes=negative_spikes,
    )  # fmt: skip
    return run_settings(settings, out, progress=progress, overwrite=overwrite, log=log)


def run_settings(
    settings: Settings,
    out: str | Path,
    *,
    progress: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> Comparison:
    """:func:`run` from a :class:`~spikebridge.compare.config.Settings` (e.g. a loaded config)."""
    started_group = launched_distributed() and not (dist.is_available() and dist.is_initialized())
    try:
        return _run(settings, Path(out), progress, overwrite, log)
    finally:
        if started_group and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def _run(s: Settings, out: Path, progress: bool, overwrite: bool, log) -> Comparison:
    started = time.perf_counter()
    info = dataset_info(s.dataset)
    if info.is_event:
        raise ValueError(
            f"dataset {s.dataset!r} is event data, which has no ANN counterpart to convert; the "
            "comparison takes static images (digits, mnist, fashion-mnist, cifar10)"
        )
    dctx = setup_distributed(s.device)
    device = dctx.device
    shard = current_shard(device)
    experiment = s.experiment()
    same, notes = claim_directory(out, experiment, overwrite)
    # load the data and build the architecture before claiming DIR, so that a typo in a setting
    # fails without leaving a record of an experiment that never ran
    train_loader, test_loader = make_loaders(
        s.dataset, s.data_root, s.batch_size, s.limit, s.seed, s.download, train_limit=s.train_limit
    )
    torch.manual_seed(s.seed)
    model = build_model(
        s.arch,
        info.num_classes,
        info.in_channels,
        info.image_size,
        s.width,
        activation=s.activation,
        pool=s.pool,
    )
    _barrier(shard)
    if shard.rank == 0:
        output_dir(out)
        if not same:
            _clear_results(out)
        write_json(out / EXPERIMENT_FILE, {"format": FORMAT, "version": 1, "settings": experiment})
    _barrier(shard)
    ctx = _Context(
        s, out, device, shard, progress and shard.rank == 0, log if shard.rank == 0 else None, notes
    )
    timings: dict[str, float] = {}

    # --- ANN ---------------------------------------------------------------------------------
    model, ann_train_seconds, reused = _ann_route(ctx, model, train_loader)
    if reused:
        notes.append("the ANN was loaded from checkpoints/ann.pt (trained in an earlier run)")
    ann_accuracy, samples, ann_seconds = evaluate_ann_sharded(
        model, test_loader, device, ctx.progress, shard
    )
    example = next(iter(test_loader))[0][:1].to(device)
    ann_ops = count_ann_ops(model, example)
    notes += ann_ops.notes
    energy_rows = [
        ann_energy_row(
            s.activation,
            ann_accuracy,
            ann_ops,
            samples,
            ann_seconds,
            s.e_mac,
            s.e_ac,
            ann_train_seconds,
        )
    ]
    accuracy_parts: list[pd.DataFrame] = []
    layer_parts: list[pd.DataFrame] = [ann_layer_frame(s.activation, ann_ops)]
    ann_energy = energy_rows[0]["energy_pJ"]

    def add_network(route: str, method: str, network, train_s: float, convert_s: float) -> None:
        _log(ctx.log, f"simulating {route}: {method} for T = {s.timesteps}")
        ev = evaluate_network(
            network, test_loader, s.timesteps, device, ctx.progress, f"{route} {method}", shard
        )
        notes.extend(f"{route} {method}: {n}" for n in ev.notes)
        accuracy_parts.append(snn_accuracy_frame(route, method, ev, s.e_mac, s.e_ac))
        energy_rows.append(
            snn_energy_row(route, method, ev, s.e_mac, s.e_ac, ann_energy, train_s, convert_s)
        )
        layer_parts.append(snn_layer_frame(route, method, ev))

    # --- conversion route --------------------------------------------------------------------
    requested = experiment["methods"]
    calib = calibration_loader(train_loader.dataset, s.calibration_samples, s.batch_size, s.seed)
    converter = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            converter = Converter(
                model, calib, s.maxpool, s.percentile, device, progress=ctx.progress, seed=s.seed
            )
        except ConversionError as err:
            notes.append(f"the ANN cannot be converted, so no conversion method ran: {err}")
        calibration_seconds = 0.0
        if converter is not None and any(m in DATA_BASED for m in requested):
            start = time.perf_counter()
            converter.statistics()
            calibration_seconds = time.perf_counter() - start
        for method in requested if converter is not None else []:
            start = time.perf_counter()
            try:
                network = converter.build(
                    method, s.reset, s.encoding, s.initial_potential,
                    negative_spikes=s.negative_spikes,
                )  # fmt: skip
            except (MethodNotApplicable, ConversionError) as err:
                notes.append(
                    f"method {method!r} does not apply to this {s.arch} and was skipped: {err}"
                )
                continue
            seconds = (
                time.perf_counter() - start + (calibration_seconds if method in DATA_BASED else 0.0)
            )
            timings[f"convert_{method}"] = seconds
            add_network("conversion", method, network, ann_train_seconds, seconds)
        for w in caught:
            message = f"conversion: {w.message}"
            if message not in notes:
                notes.append(message)

    # --- direct route ------------------------------------------------------------------------
    direct_epochs = experiment["direct_epochs"]
    if direct_epochs == 0:
        notes.append("direct route skipped (direct_epochs = 0)")
    elif s.arch not in MODEL_NAMES:
        notes.append(
            f"direct route skipped: the direct route builds {', '.join(MODEL_NAMES)} (LIF neurons and "
            f"tdBN in place of the ANN's activations and norms), not {s.arch!r}"
        )
    else:
        network, direct_seconds, reused = _direct_route(ctx, info, train_loader)
        if reused:
            notes.append(
                "the direct SNN was loaded from checkpoints/direct.pt (trained in an earlier run)"
            )
        timings["train_direct"] = direct_seconds
        add_network("direct", DIRECT_METHOD, network, direct_seconds, float("nan"))

    accuracy = (
        pd.concat(accuracy_parts, ignore_index=True)
        if accuracy_parts
        else pd.DataFrame(columns=ACCURACY_COLUMNS)
    )
    energy = energy_frame(energy_rows)
    layers = (
        pd.concat(layer_parts, ignore_index=True)
        if layer_parts
        else pd.DataFrame(columns=LAYER_COLUMNS)
    )
    timings.update(
        train_ann=ann_train_seconds, ann_inference=ann_seconds, total=time.perf_counter() - started
    )
    result = Comparison(accuracy, energy, layers, notes, experiment, out, [], ann_accuracy, timings)
    if shard.rank == 0:
        result.files = write_outputs(result, s)
    _barrier(shard)
    return result


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


__all__ = [
    "DEMO_SETTINGS",
    "EXPERIMENT_FILE",
    "RESULT_FILES",
    "Comparison",
    "claim_directory",
    "run",
    "run_settings",
    "write_outputs",
]
