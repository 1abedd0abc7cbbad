"""``spikebridge train``: train a direct SNN with STBP-tdBN (Wu et al. 2018; Zheng et al. 2021).

Writes to ``--out``: ``checkpoint.pt`` (after every epoch; ``--resume`` continues from it),
``history.csv`` (epoch, loss, train_accuracy, test_accuracy, seconds),
``accuracy_vs_timesteps.csv`` (route, method, timesteps, accuracy: the test accuracy read out
after every step t <= T of one simulation) and ``summary.json``. Every file is written atomically.
Launch under ``torchrun --nproc_per_node N`` for data-parallel training.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import pandas as pd

from ..data import dataset_info, make_loaders
from ..direct.checkpoint import CheckpointError
from ..direct.snn import build_snn
from ..direct.surrogate import SURROGATES
from ..direct.trainer import OPTIMIZERS, SCHEDULES, TrainingDiverged, seed_everything, train
from ..io import output_dir, write_csv, write_json
from .common import add_architecture, add_common, positive_int

CHECKPOINT_NAME = "checkpoint.pt"
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3}


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a spiking network directly (STBP with tdBN)")
    add_architecture(p)
    add_common(p)
    p.add_argument(
        "--timesteps", type=positive_int, default=4, help="simulation steps T per sample"
    )
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    p.add_argument(
        "--lr", type=float, default=None, help="learning rate (default 0.1 for sgd, 1e-3 for adam)"
    )
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--schedule", default="cosine", choices=SCHEDULES)
    p.add_argument(
        "--train-limit",
        type=positive_int,
        default=None,
        help="train on a random subset of N samples",
    )
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--threshold", type=float, default=0.5, help="LIF threshold V_th")
    p.add_argument("--tau-decay", type=float, default=0.25, help="LIF leak factor per step")
    p.add_argument("--surrogate", default="rectangular", choices=SURROGATES)
    p.add_argument("--surrogate-width", type=float, default=1.0, help="surrogate width a")
    p.add_argument("--pool", default="avg", choices=("avg", "max"))
    p.add_argument("--resume", action="store_true", help=f"continue from --out/{CHECKPOINT_NAME}")
    p.add_argument("--out", default="spikebridge-train", help="output directory")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    is_main = int(os.environ.get("RANK", "0")) == 0
    out = output_dir(args.out)
    info = dataset_info(args.dataset)
    train_loader, test_loader = make_loaders(
        args.dataset,
        args.data_root,
        args.batch_size,
        args.limit,
        args.seed,
        args.download,
        timesteps=args.timesteps if info.is_event else None,
        num_workers=args.workers,
        train_limit=args.train_limit,
    )
    seed_everything(args.seed)
    network = build_snn(
        args.arch,
        info.num_classes,
        info.in_channels,
        info.image_size,
        args.width,
        threshold=args.threshold,
        tau_decay=args.tau_decay,
        surrogate=args.surrogate,
        surrogate_width=args.surrogate_width,
        pool=args.pool,
        encoding="events" if info.is_event else "analog",
    )
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]

    def report(record: dict) -> None:
        if is_main:
            print(
                f"epoch {record['epoch']}/{args.epochs}: loss {record['loss']:.4f}  train "
                f"{record['train_accuracy']:.4f}  test {record['test_accuracy']:.4f}  "
                f"({record['seconds']:.1f} s)",
                flush=True,
            )

    try:
        result = train(
            network,
            train_loader,
            test_loader,
            timesteps=args.timesteps,
            epochs=args.epochs,
            optimizer=args.optimizer,
            lr=lr,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            schedule=args.schedule,
            seed=args.seed,
            checkpoint_path=out / CHECKPOINT_NAME,
            resume=args.resume,
            device=args.device,
            progress=not args.quiet,
            on_epoch=report,
        )
    except (CheckpointError, TrainingDiverged) as err:
        print(f"spikebridge train: error: {err}", file=sys.stderr)
        return 2
    if not is_main:
        return 0
    history = pd.DataFrame(
        result.history, columns=["epoch", "loss", "train_accuracy", "test_accuracy", "seconds"]
    )
    write_csv(out / "history.csv", history)
    accuracy = result.evaluation.accuracy.tolist() if result.evaluation is not None else []
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
    summary = {
        "route": "direct",
        "method": "stbp-tdbn",
        "arch": args.arch,
        "width": args.width,
        "dataset": args.dataset,
        "timesteps": args.timesteps,
        "epochs": args.epochs,
        "optimizer": args.optimizer,
        "lr": lr,
        "schedule": args.schedule,
        "weight_decay": args.weight_decay,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "train_samples": len(train_loader.dataset),
        "test_samples": result.evaluation.total if result.evaluation is not None else 0,
        "test_accuracy": accuracy[-1] if accuracy else None,
        "accuracy_vs_timesteps": accuracy,
        "spec": getattr(result.network, "spec", {}),
        "checkpoint": str(out / CHECKPOINT_NAME),
        "seconds": time.perf_counter() - start,
    }
    write_json(out / "summary.json", summary)
    final = f"{accuracy[-1]:.4f}" if accuracy else "n/a"
    print(f"test accuracy at T={args.timesteps}: {final}; results in {out}")
    return 0
