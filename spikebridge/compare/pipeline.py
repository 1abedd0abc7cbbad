"""One comparison experiment: the ANN, every route's networks, scored side by side.

:func:`run` trains (or reloads from DIR) the ANN, lets every route (:mod:`.routes`: conversion
with each requested method, the directly trained SNN, ...) offer its networks, scores each with
:func:`spikebridge.evaluation.evaluate` on the same test set (and on the test sets of any extra
evaluation pass, :mod:`.passes`), and writes ``accuracy_vs_timesteps.csv``, ``energy.csv``,
``layers.csv``, ``energy_breakdown.csv``, the plots (PNG and SVG) and ``report.html`` into DIR
(:mod:`.outputs`); every network is priced by the energy models of :mod:`spikebridge.energy`
beside the float ANN and the ANN quantised to its T (:class:`.energy.EnergyBook`). DIR's
reuse and refusal are :mod:`.directory`'s; the checkpoints those of :mod:`.ann` and the routes.

Under ``torchrun`` each process simulates its share of the test set and the counts are summed
(:mod:`spikebridge.evaluation.shard`); the ANN is trained on rank 0, the direct SNN
data-parallel by its trainer, and rank 0 writes the outputs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch.distributed as dist

from ..data import dataset_info, make_loaders, split_validation
from ..direct.distributed import setup_distributed
from ..energy import energy_model_names
from ..energy.book import EnergyBook
from ..energy.table import (
    ACCURACY_COLUMNS,
    LAYER_COLUMNS,
    ann_energy_row,
    ann_layer_frame,
    energy_frame,
    snn_accuracy_frame,
    snn_energy_row,
    snn_layer_frame,
)
from ..evaluation import current_shard, evaluate, launched_distributed
from ..health import CONVERTED_ADVICE, weak_network, weak_network_message
from ..io import output_dir, write_json
from ..labels import with_finetune_column
from ..rundir import RunDirectory, claim
from ..tables import HISTORY_COLUMNS
from ..validation import check_before_training
from .ann import build_ann, trained_ann
from .config import KEYS, ConfigError, Settings
from .context import ComparisonContext
from .directory import (
    EXPERIMENT_FILE,
    FORMAT,
    RESULT_FILES,
    claim_directory,
    clear_results,
    holds_experiment,
)
from .outputs import write_outputs
from .passes import PASS_COLUMNS, passes
from .routes import Candidate, routes

DEMO_SETTINGS: dict[str, Any] = dict(
    arch="cnn", dataset="digits", methods="all", timesteps=32, epochs=8, direct_epochs=6,
    direct_timesteps=4, width=0.5, batch_size=64, lr=2e-3, calibration_samples=256,
)  # fmt: skip
"""A comparison on the offline digits data that runs in well under 3 minutes on 2 CPU cores:
``run(**DEMO_SETTINGS, out=...)``."""


@dataclass
class Comparison:
    """What :func:`run` returns.

    Attributes:
        accuracy: route, method, timesteps, accuracy, macs, sops, energy_pJ, spikes: one row per
            network and reported step t (operations per inference, cumulative to t).
        energy: one row per network (the ANN included) at its T: accuracy, MACs, SOPs,
            energy_pJ, firing rate, training, conversion and inference times; one
            ``energy_<model>_pJ`` column per energy model, break-even firing rates, and the
            quantised ANNs' rows (route ``ann-quantised``).
        layers: per layer of every network: firing rate (neuron layers), SOPs and MACs.
        notes: methods that did not apply, reused checkpoints, anything not counted.
        settings: the experiment's settings.
        out: the output directory; files: what was written there.
        extra: one table per extra evaluation pass (route, method, condition, timesteps,
            accuracy).
        energy_breakdown: per network, energy model, layer and component (pJ per inference).
        history: the training history of every network trained (route, network, epoch, loss,
            train/validation/test accuracy in %, seconds).
        flags: (route, method, T) -> why a network is weak (:mod:`spikebridge.health`; T is
            None for the ANN); the messages are among the notes.
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
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    energy_breakdown: pd.DataFrame = field(default_factory=pd.DataFrame)
    history: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=HISTORY_COLUMNS))
    flags: dict[tuple, str] = field(default_factory=dict)


def run(
    arch: str = "cnn",
    dataset: str = "digits",
    *,
    out: str | Path = "spikebridge-compare",
    progress: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    workers: int = 0,
    **settings: Any,
) -> Comparison:
    """Compare the conversion route (every requested method) with the direct route on one dataset.

    Args:
        arch: ``cnn``, ``vgg11``, ``resnet20``, ``resnet19`` or ``torchvision:NAME`` (conversion only).
        dataset: ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10`` (static images).
        out: output directory DIR (see the module docstring for reuse and refusal).
        progress: tqdm progress bars; ``log``: called with one line per stage (the CLI prints them).
        overwrite: replace another experiment's results in ``out``.
        workers: data loader worker processes (0: load in this process; the results do not
            depend on it).
        **settings: any field of :class:`~spikebridge.compare.config.Settings` (the groups of
            :mod:`spikebridge.settings`), e.g. ``methods="all"`` (every applicable method;
            those that do not apply are skipped with a note), ``timesteps=32``, ``epochs=5``,
            ``direct_epochs=0`` (skips the direct route).

    Returns:
        :class:`Comparison` (the tables as DataFrames, the notes, the files written).

    Raises:
        ValueError (:class:`~spikebridge.compare.config.ConfigError`) for a bad setting, naming it;
        FileExistsError when ``out`` holds another experiment and ``overwrite`` is False.
    """
    unknown = sorted(set(settings) - set(KEYS))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(map(repr, unknown))}; known settings: {', '.join(KEYS)}"
        )
    if "data_root" in settings and settings["data_root"] is not None:
        settings["data_root"] = str(settings["data_root"])
    if "methods" in settings and not isinstance(settings["methods"], str):
        settings["methods"] = list(settings["methods"])
    chosen = Settings(arch=arch, dataset=dataset, **settings)
    return run_settings(
        chosen, out, progress=progress, overwrite=overwrite, log=log, workers=workers
    )


def run_settings(
    settings: Settings,
    out: str | Path,
    *,
    progress: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    workers: int = 0,
) -> Comparison:
    """:func:`run` from a :class:`~spikebridge.compare.config.Settings` (e.g. a loaded config)."""
    started_group = launched_distributed() and not (dist.is_available() and dist.is_initialized())
    try:
        return _run(settings, Path(out), progress, overwrite, log, workers)
    finally:
        if started_group and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def _start(
    s: Settings,
    out: Path,
    progress: bool,
    overwrite: bool,
    log,
    run_dir: RunDirectory,
    workers: int = 0,
) -> ComparisonContext:
    """Check the settings and DIR, load the data, record the run in DIR: the context every stage
    shares. ``run_dir`` is DIR, already taken for this run (:func:`spikebridge.rundir.claim`)."""
    info = dataset_info(s.dataset)
    if info.is_event:
        raise ValueError(
            f"dataset {s.dataset!r} is event data, which has no ANN counterpart to convert; the "
            "comparison takes static images (digits, mnist, fashion-mnist, cifar10)"
        )
    device = setup_distributed(s.device).device
    shard = current_shard(device)
    experiment = s.experiment()
    same, notes = claim_directory(out, experiment, overwrite)
    # load the data and build the architecture before claiming DIR, so that a typo in a setting
    # fails without leaving a record of an experiment that never ran
    train_loader, test_loader = make_loaders(
        s.dataset, s.data_root, s.batch_size, s.limit, s.seed, s.download,
        train_limit=s.train_limit, normalize=s.normalize, num_workers=workers,
    )  # fmt: skip
    train_loader, validation_loader = split_validation(train_loader, s.validation_fraction, s.seed)
    ctx = ComparisonContext(
        s, out, device, shard, info, train_loader, test_loader, progress and shard.rank == 0,
        log if shard.rank == 0 else None, notes, validation_loader=validation_loader,
    )  # fmt: skip
    ctx.ann = build_ann(ctx)
    check_before_training(ctx.ann, len(train_loader.dataset), s.batch_size, s, s)
    ctx.barrier()
    if shard.rank == 0:
        run_dir.begin(
            remove=run_dir.previous_files() if overwrite else (),
            planned=[*RESULT_FILES, EXPERIMENT_FILE],
        )
        output_dir(out)
        if not same:
            clear_results(out, tuple(f"{p.name}.csv" for p in passes()))
        write_json(out / EXPERIMENT_FILE, {"format": FORMAT, "version": 1, "settings": experiment})
    ctx.barrier()
    return ctx


def _run(
    s: Settings, out: Path, progress: bool, overwrite: bool, log, workers: int = 0
) -> Comparison:
    """Take DIR for this run (one run at a time; another command's or experiment's results
    refused unless ``overwrite``), then compare."""
    experiment = s.experiment()
    with claim(
        out, "compare", experiment, overwrite=overwrite,
        adopt=lambda directory: holds_experiment(directory, experiment),
    ) as run_dir:  # fmt: skip
        return _compare(s, out, progress, overwrite, log, run_dir, workers)


def _compare(
    s: Settings,
    out: Path,
    progress: bool,
    overwrite: bool,
    log,
    run_dir: RunDirectory,
    workers: int = 0,
) -> Comparison:
    started = time.perf_counter()
    ctx = _start(s, out, progress, overwrite, log, run_dir, workers)
    notes = ctx.notes
    ctx.ann, ctx.ann_train_seconds, reused = trained_ann(ctx, ctx.ann)
    if reused:
        notes.append("the ANN was loaded from checkpoints/ann.pt (trained in an earlier run)")
    ann = evaluate(ctx.ann, ctx.test_loader, count_ops=True, shard=ctx.shard, device=ctx.device,
                   progress=ctx.progress)  # fmt: skip
    notes += ann.notes
    energy_rows = [ann_energy_row(s.ann_method(), ann, s.e_mac, s.e_ac, ctx.ann_train_seconds)]
    book = EnergyBook(energy_model_names(s.energy_models), ctx)
    book.ann(energy_rows[0], ann)
    accuracy_parts: list[pd.DataFrame] = []
    ann_layers = ann_layer_frame(s.ann_method(), ann)
    ann_layers.insert(2, "network", s.ann_method())
    ann_layers.insert(3, "timesteps", pd.NA)
    layer_parts: list[pd.DataFrame] = [ann_layers]
    extra_passes = [p for p in passes() if p.enabled(s)]
    extra_rows: dict[str, list[tuple]] = {p.name: [] for p in extra_passes}
    for evaluation_pass in extra_passes:
        for condition, loader in evaluation_pass.loaders(ctx):
            acc = evaluate(ctx.ann, loader, shard=ctx.shard, device=ctx.device).accuracy[0]
            extra_rows[evaluation_pass.name].append(
                ("ann", s.ann_method(), condition, float("nan"), float(acc))
            )
    timings: dict[str, float] = {}
    nir_files = _nir_folder(ctx, run_dir) if s.export_nir else None
    for route in routes():
        for candidate in route.networks(ctx):
            if nir_files is not None:
                nir_files += _export_nir(ctx, candidate)
            accuracy, energy, layers = _score(ctx, candidate, energy_rows[0]["energy_pJ"], book)
            accuracy_parts.append(accuracy)
            energy_rows.append(energy)
            layer_parts.append(layers)
            timings.update(candidate.timings)
            for evaluation_pass in extra_passes:
                extra_rows[evaluation_pass.name] += _extra_rows(ctx, candidate, evaluation_pass)
    energy_rows += book.finish()
    accuracy = (
        pd.concat(accuracy_parts, ignore_index=True)
        if accuracy_parts
        else pd.DataFrame(columns=ACCURACY_COLUMNS)
    )
    layers = (
        pd.concat(layer_parts, ignore_index=True)
        if layer_parts
        else pd.DataFrame(columns=LAYER_COLUMNS)
    )
    timings.update(
        train_ann=ctx.ann_train_seconds,
        ann_inference=ann.seconds,
        total=time.perf_counter() - started,
    )
    extra = {name: pd.DataFrame(rows, columns=PASS_COLUMNS) for name, rows in extra_rows.items()}
    history = (
        pd.concat(ctx.histories, ignore_index=True)
        if ctx.histories
        else pd.DataFrame(columns=HISTORY_COLUMNS)
    )
    energy_table = with_finetune_column(energy_frame(energy_rows))  # calibrated+ftN: retrained
    accuracy = with_finetune_column(accuracy)
    flags = weak_flags(energy_table, history, ctx.info.num_classes, notes)
    result = Comparison(
        accuracy, energy_table, layers, notes, s.experiment(), out, [],
        float(ann.accuracy[0]), timings, extra, book.breakdown(), history, flags,
    )  # fmt: skip
    if ctx.shard.rank == 0:
        result.files = write_outputs(result, s) + (nir_files or [])
        run_dir.finish([*result.files, out / EXPERIMENT_FILE])
    ctx.barrier()
    return result


def _nir_folder(ctx: ComparisonContext, run_dir: RunDirectory) -> list[Path]:
    """With ``export_nir``: check that ``nir`` is installed and remove from ``DIR/nir`` the
    files an earlier run recorded there (every network of this run is written there as
    ``<route>-<method>.nir``); any other file in that folder is left alone."""
    from ..interop import check_nir_available

    check_nir_available()
    if ctx.shard.rank == 0:
        for name in run_dir.previous_files("nir"):
            old = ctx.out / name
            if old.is_file() and not old.is_symlink():
                old.unlink()
    return []


def _export_nir(ctx: ComparisonContext, c: Candidate) -> list[Path]:
    """``DIR/nir/<route>-<method>.nir`` for one candidate network (rank 0 only)."""
    if ctx.shard.rank != 0:
        return []
    from ..interop import NIRExportWarning, export_nir_files

    shape = (ctx.info.in_channels, ctx.info.image_size, ctx.info.image_size)
    key = f"{c.route}-{c.method}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NIRExportWarning)
        written = export_nir_files({key: c.network}, ctx.out / "nir", shape, "{key}.nir")
    ctx.notes.extend(f"NIR: {w.message}" for w in caught if w.category is NIRExportWarning)
    return list(written.values())


def _score(ctx: ComparisonContext, c: Candidate, ann_energy: float, book: EnergyBook):
    """(accuracy rows, energy row, layer rows) of one candidate network on the test set."""
    s = ctx.settings
    ctx.say(f"simulating {c.route}: {c.method} for T = {c.timesteps}")
    ev = evaluate(
        c.network, ctx.test_loader, c.timesteps, count_ops=True, shard=ctx.shard,
        device=ctx.device, progress=ctx.progress, description=f"{c.route} {c.method}",
    )  # fmt: skip
    ctx.notes.extend(f"{c.route} {c.method}: {n}" for n in ev.notes)
    accuracy = snn_accuracy_frame(c.route, c.method, ev, s.e_mac, s.e_ac, c.report_steps)
    energy = snn_energy_row(
        c.route, c.method, ev, s.e_mac, s.e_ac, ann_energy, c.train_seconds, c.convert_seconds
    )
    book.snn(energy, ev, c.network)
    layers = snn_layer_frame(c.route, c.method, ev)
    name = c.method if c.report_steps is None else f"{c.method}-T{c.timesteps}"
    layers.insert(2, "network", name)  # calibrated: one network per target T
    layers.insert(3, "timesteps", c.timesteps)
    return accuracy, energy, layers


def weak_flags(
    energy: pd.DataFrame, history: pd.DataFrame, num_classes: int, notes: list[str]
) -> dict[tuple, str]:
    """(route, method, T) -> flag of every weak network (:mod:`spikebridge.health`); each
    message is appended to ``notes``. A trained network is checked against its last epoch's
    training accuracy as well."""
    trained = {
        route: float(part["train_accuracy_pct"].iloc[-1]) / 100
        for route, part in history.groupby("route", sort=False)
        if len(part)
    }
    flags: dict[tuple, str] = {}
    for r in energy.itertuples(index=False):
        t = None if r.route == "ann" else int(r.timesteps)
        train = trained.get(r.route) if r.route in ("ann", "direct") else None
        name = f"the ANN ({r.method})" if t is None else f"{r.route} {r.method} (T = {t})"
        advice = CONVERTED_ADVICE if r.route == "conversion" else None
        message = weak_network_message(name, float(r.accuracy), num_classes, train, advice)
        if message:
            flags[(r.route, r.method, t)] = weak_network(float(r.accuracy), num_classes, train)
            notes.append(f"warning: {message}")
    return flags


def _extra_rows(ctx: ComparisonContext, c: Candidate, evaluation_pass) -> list[tuple]:
    """Rows of one extra evaluation pass for one candidate network."""
    rows = []
    for condition, loader in evaluation_pass.loaders(ctx):
        ev = evaluate(c.network, loader, c.timesteps, shard=ctx.shard, device=ctx.device)
        steps = c.report_steps or range(1, c.timesteps + 1)
        rows += [(c.route, c.method, condition, t, float(ev.accuracy[t - 1])) for t in steps]
    return rows


__all__ = ["DEMO_SETTINGS", "Comparison", "run", "run_settings"]
