"""``spikebridge convert``: train or load an ANN, convert it with one or more methods, evaluate."""

from __future__ import annotations

import argparse
import time

import torch

from ..compare.plots import latency_accuracy_figure
from ..convert import Converter, PercentileChoice, select_percentile
from ..convert.experiment import resolve_methods, run_conversion
from ..data import calibration_loader, dataset_info, make_loaders
from ..io import output_dir, save_figure, save_torch, write_csv, write_json
from ..models import build_model
from ..training import train_ann
from .common import (
    add_architecture,
    add_common,
    load_checkpoint,
    positive_int,
    progress_enabled,
    resolve_device,
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert a trained CNN into a spiking network and evaluate it"
    )
    add_architecture(p)
    add_common(p)
    p.add_argument(
        "--checkpoint",
        default=None,
        help="state dict (with --arch), .pt2 torch.export program, or pickled module",
    )
    p.add_argument(
        "--trust-checkpoint", action="store_true", help="allow loading a whole pickled module"
    )
    p.add_argument("--train-epochs", type=int, default=0, help="train the ANN first for N epochs")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--activation",
        default="relu",
        choices=("relu", "leaky-relu", "qcfs"),
        help="ANN activation when training",
    )
    p.add_argument("--alpha", type=float, default=0.1, help="LeakyReLU slope")
    p.add_argument("--levels", type=positive_int, default=4, help="QCFS quantisation levels L")
    p.add_argument(
        "--pool", default="avg", choices=("avg", "max"), help="pooling of the ANN built by --arch"
    )
    p.add_argument(
        "--method",
        default="channel",
        help="model, max, percentile, channel, spike-norm, qcfs; comma-separated or 'all'",
    )
    p.add_argument(
        "--percentile",
        type=percentile_arg,
        default=99.9,
        help="p of the percentile and channel methods (default 99.9), or 'auto': the best of "
        "99, 99.5, 99.9, 99.99 on --validation-samples held-out training images (judged on "
        "channel when it runs, else percentile; used by both)",
    )
    p.add_argument(
        "--validation-samples",
        type=positive_int,
        default=1000,
        help="held-out training images (not the calibration ones) for --percentile auto",
    )
    p.add_argument(
        "--selection-timesteps",
        type=positive_int,
        default=None,
        help="the latency T at which --percentile auto compares p (default --timesteps)",
    )
    p.add_argument("--timesteps", type=positive_int, default=32)
    p.add_argument("--encoding", default="analog", choices=("analog", "poisson"))
    p.add_argument("--reset", default="subtract", choices=("subtract", "zero"))
    p.add_argument("--maxpool", default="spiking", choices=("spiking", "avg"))
    p.add_argument(
        "--initial-potential",
        type=float,
        default=None,
        help="u[0] as a fraction of theta, e.g. 0.5 (Bu 2022; default 0.5 for qcfs, else 0)",
    )
    p.add_argument(
        "--negative-spikes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="signed IF neurons that take back excess spikes (Wang 2022, Hu 2023; "
        "default: on for qcfs, off otherwise)",
    )
    p.add_argument("--calibration-samples", type=positive_int, default=2000)
    p.add_argument("--out", default="spikebridge-convert", help="output directory")
    p.set_defaults(run=run)


def percentile_arg(text: str) -> float | str:
    """``auto`` or a percentile in (0, 100]."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number in (0, 100] or 'auto', got {text!r}"
        ) from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"percentile must be in (0, 100], got {text}")
    return value


def choose_percentile(args, model, train_loader, calib, device) -> PercentileChoice:
    """``--percentile auto``: select p on held-out training images (never the test set)."""
    methods = resolve_methods(model, args.method)
    method = next((m for m in ("channel", "percentile") if m in methods), None)
    if method is None:
        raise ValueError(
            f"--percentile auto: none of the methods {', '.join(methods)} uses a percentile; "
            "add channel or percentile to --method, or give --percentile a number"
        )
    train = train_loader.dataset
    if args.calibration_samples >= len(train):
        raise ValueError(
            f"--percentile auto: the {len(train)} training images are all calibration images "
            f"(--calibration-samples {args.calibration_samples}); lower --calibration-samples to "
            "leave held-out images for validation"
        )
    validation = calibration_loader(
        train, args.validation_samples, args.batch_size, args.seed, skip=args.calibration_samples
    )
    converter = Converter(model, calib, args.maxpool, device=device, seed=args.seed)
    steps = args.selection_timesteps or args.timesteps
    choice = select_percentile(
        converter,
        validation,
        steps,
        method,
        initial_potential=args.initial_potential,
        negative_spikes=args.negative_spikes,
        reset=args.reset,
        encoding=args.encoding,
    )
    tried = ", ".join(f"p={p:g}: {100 * a:.2f}%" for p, a in choice.accuracy.items())
    print(f"percentile auto ({method}, T={steps}, validation): {tried} -> p={choice.percentile:g}")
    return choice


def prepare_ann(args: argparse.Namespace, device: torch.device):
    """Data loaders and the (trained or loaded) ANN for the convert and demo commands."""
    info = dataset_info(args.dataset)
    if info.is_event:
        raise ValueError(
            f"--dataset {args.dataset}: the conversion route takes static images (rate-coded by the "
            "encoder); event data has no ANN counterpart. Train it directly with `spikebridge train`"
        )
    train_loader, test_loader = make_loaders(
        args.dataset, args.data_root, args.batch_size, args.limit, args.seed, args.download
    )
    arch_model = build_model(
        args.arch,
        info.num_classes,
        info.in_channels,
        info.image_size,
        args.width,
        activation=args.activation,
        pool=args.pool,
        alpha=args.alpha,
        levels=args.levels,
    )
    model = (
        load_checkpoint(args.checkpoint, arch_model, args.trust_checkpoint)
        if args.checkpoint
        else arch_model
    )
    history = []
    if args.train_epochs > 0:
        history = train_ann(
            model,
            train_loader,
            args.train_epochs,
            args.lr,
            device,
            args.seed,
            progress_enabled(args),
        )
    model.eval()
    calib = calibration_loader(
        train_loader.dataset, args.calibration_samples, args.batch_size, args.seed
    )
    return info, model, train_loader, test_loader, calib, history


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    device = resolve_device(args.device)
    out = output_dir(args.out)
    info, model, train_loader, test_loader, calib, history = prepare_ann(args, device)
    selection = None
    if args.percentile == "auto":
        selection = choose_percentile(args, model, train_loader, calib, device)
        args.percentile = selection.percentile
    result = run_conversion(
        model,
        calib,
        test_loader,
        args.method,
        args.timesteps,
        args.reset,
        args.encoding,
        args.percentile,
        args.maxpool,
        device,
        args.seed,
        progress_enabled(args),
        args.initial_potential,
        args.negative_spikes,
    )
    write_outputs(args, out, result, history, time.perf_counter() - start, selection)
    print_table(result)
    print(f"results in {out}/")
    return 0


def write_outputs(args, out, result, history, seconds: float, selection=None) -> None:
    write_csv(out / "accuracy_vs_timesteps.csv", result.accuracy)
    for method, net in result.networks.items():
        save_torch(out / f"snn_{method}.pt", net.cpu())
    fig = latency_accuracy_figure(
        result.accuracy, result.ann_accuracy, f"{args.arch} on {args.dataset}"
    )
    save_figure(out / "latency_accuracy.png", fig)
    write_json(
        out / "summary.json",
        {
            "dataset": args.dataset,
            "arch": args.arch,
            "ann_accuracy": result.ann_accuracy,
            "timesteps": args.timesteps,
            "methods": sorted(result.networks),
            "skipped_methods": result.skipped,
            "encoding": args.encoding,
            "reset": args.reset,
            "percentile": args.percentile,
            "percentile_selection": None
            if selection is None
            else {
                "timesteps": selection.timesteps,
                "validation_accuracy": {str(p): a for p, a in selection.accuracy.items()},
            },
            "initial_potential": args.initial_potential,
            "negative_spikes": args.negative_spikes,
            "seed": args.seed,
            "ann_training": history,
            "simulation_seconds": result.seconds,
            "seconds": seconds,
        },
    )


def print_table(result) -> None:
    frame = result.accuracy
    steps = sorted(
        {t for t in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024) if t <= frame["timesteps"].max()}
        | {int(frame["timesteps"].max())}
    )
    table = frame[frame["timesteps"].isin(steps)].pivot(
        index="method", columns="timesteps", values="accuracy"
    )
    print(f"ANN accuracy: {100 * result.ann_accuracy:.2f}%")
    print("SNN accuracy (%) after T steps:")
    print((100 * table).round(2).to_string())
    for method, why in result.skipped.items():
        print(f"skipped {method}: {why}")
