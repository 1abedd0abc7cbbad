"""``spikebridge convert``: train or load an ANN, convert it with one or more methods, evaluate."""

from __future__ import annotations

import argparse
import re

from ..compare.report import accuracy_pivot
from ..convert.experiment import (
    conversion_output_files,
    conversion_settings,
    run_conversion_experiment,
    write_conversion_outputs,
)
from ..convert.methods import method_settings_class, methods_help, resolve_settings
from ..convert.tuning import percentile_note
from ..health import weak_network
from ..model_files import refuse_architecture_for_graph
from ..runtime import resolve_device
from ..settings import (
    ConversionSettings,
    ExperimentSettings,
    ModelFileSettings,
    SimulationSettings,
    TrainingSettings,
)
from ..tables import terminal_table
from .common import add_quiet, add_settings, add_workers, progress_enabled, settings_from
from .config import add_config, finish, resolve
from .flags import add_generic, given
from .outdir import add_output_flags, take_output

GROUPS = (ExperimentSettings, TrainingSettings, ConversionSettings, SimulationSettings)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert a trained CNN into a spiking network and evaluate it"
    )
    add_config(p)
    names = add_settings(
        p,
        *GROUPS,
        exclude=tuple(n for n in vars(TrainingSettings()) if n.startswith("direct_")),
        help_overrides={
            "methods": f"methods, comma-separated, or 'all': {methods_help()}",
            "epochs": "training epochs of the ANN (default 5; 0 with --checkpoint: the file's "
            "ANN is used as it is)",
        },
    )
    add_generic(
        p, TrainingSettings, "epochs", ("epochs",), aliases=("--train-epochs",),
        text="training epochs of every network this command trains: here the ANN "
        "(= --ann-epochs)",
    )  # fmt: skip
    add_generic(p, TrainingSettings, "lr", ("lr",), text="learning rate of the ANN (= --ann-lr)")
    names += add_settings(p, method_settings_class())
    names += add_settings(p, ModelFileSettings)
    add_output_flags(p, "spikebridge-convert")
    p.add_argument(
        "--save-pickle", action="store_true", default=None,
        help="also write each spiking network pickled whole (snn_NAME.pickle.pt; loading it runs "
        "code, so it needs --trust-checkpoint); snn_NAME.pt is weights-only either way",
    )  # fmt: skip
    add_workers(p)
    add_quiet(p)
    p.set_defaults(run=run, settings=names)
    finish(p)


def settings_from_args(args: argparse.Namespace) -> dict:
    """convert's settings from ``--config`` and the flags (:func:`.config.resolve`): the
    groups by name (``experiment``, ``training``, ``conversion``, ``simulation``, ``files``,
    ``methods``: each method's settings) and ``record``, what ``run.json`` records."""
    resolve(args, {"workers": 0, "save_pickle": False})
    names = args.settings
    files = settings_from(args, names, ModelFileSettings)
    refuse_architecture_for_graph(files.checkpoint, list(given(args, names)))
    experiment = settings_from(args, names, ExperimentSettings)
    epochs = {} if args.epochs is not None or not files.checkpoint else {"epochs": 0}
    training = settings_from(args, names, TrainingSettings, **epochs)
    conversion = settings_from(args, names, ConversionSettings)
    simulation = settings_from(args, names, SimulationSettings)
    method_settings = resolve_settings(given(args, names))
    record = conversion_settings(
        experiment, training, conversion, simulation, files.checkpoint, method_settings
    )
    return dict(
        experiment=experiment, training=training, conversion=conversion, simulation=simulation,
        files=files, methods=method_settings, record=record,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    chosen = settings_from_args(args)
    experiment, training = chosen["experiment"], chosen["training"]
    conversion, simulation = chosen["conversion"], chosen["simulation"]
    files, method_settings, record = chosen["files"], chosen["methods"], chosen["record"]
    device = resolve_device(experiment.device)
    with take_output(args, "convert", record) as run_dir:  # before any data or training
        replaced = run_dir.previous_files() if args.overwrite else []
        done = run_conversion_experiment(
            experiment, training, conversion, simulation, checkpoint=files.checkpoint,
            trust_checkpoint=files.trust_checkpoint, device=device, progress=progress_enabled(args),
            on_start=lambda: run_dir.begin(remove=replaced), method_settings=method_settings,
            on_epoch=None if args.quiet else epoch_line(training.epochs), workers=args.workers,
        )  # fmt: skip
        out = write_conversion_outputs(
            run_dir.path,
            done,
            experiment,
            conversion,
            simulation,
            method_settings,
            save_pickle=args.save_pickle,
        )
        run_dir.finish(conversion_output_files(out, done), seconds=done.seconds)
    result = done.result
    if result.percentile is not None:
        print(percentile_note(result.percentile))
    flag = weak_network(result.ann_accuracy, done.info.num_classes,
                        done.history[-1]["train_accuracy"] if done.history else None)  # fmt: skip
    print(f"ANN accuracy: {100 * result.ann_accuracy:.2f}%" + (f"  (WEAK: {flag})" if flag else ""))
    print("SNN accuracy (%) after T steps:")
    pivot = flag_weak(accuracy_pivot(result.accuracy), done.info.num_classes)
    print(terminal_table(pivot) if len(pivot) else "(no method ran)")
    per_target = {k: v for k, v in result.conversion_seconds.items() if re.search(r"-T\d+$", k)}
    if per_target:
        cpu = result.conversion_cpu_seconds
        print(
            "calibration time: "
            + ", ".join(
                f"{k} {v:.1f} s (CPU {cpu.get(k, 0.0):.1f} s)" for k, v in per_target.items()
            )
        )
    for method, why in result.skipped.items():
        print(f"skipped {method}: {why}")
    for message in done.warnings:
        print(f"warning: {message}")
    for note in done.notes:
        print(f"note: {note}")
    print(f"results in {out}/")
    return 0


def epoch_line(epochs: int):
    """One plain line per epoch of the ANN's training (for logs and batch jobs as well as
    terminals)."""

    def report(row: dict) -> None:
        print(
            f"ANN epoch {row['epoch']}/{epochs}: loss {row['loss']:.4f}  train "
            f"{100 * row['train_accuracy']:.2f}%  validation {_pct(row['validation_accuracy'])}  "
            f"({row['seconds']:.1f} s)",
            flush=True,
        )

    return report


def _pct(value: float) -> str:
    return "–" if value != value else f"{100 * value:.2f}%"


def flag_weak(pivot, num_classes: int):
    """The accuracy pivot with a ``warning`` column when a network ends near chance."""
    if not len(pivot):
        return pivot
    last = pivot.drop(columns="network").ffill(axis=1).iloc[:, -1] / 100
    flags = [weak_network(a, num_classes) for a in last]
    return pivot.assign(warning=flags) if any(flags) else pivot
