"""Every conversion method x T on MNIST, for the small CNN, vgg11 and resnet20, with SpikingJelly.

Trains each ANN briefly on CPU (``--epochs``, ``--train-limit``, ``--width``), converts it with
every applicable spikebridge method (model, max, percentile, channel, spike-norm; qcfs only for
QCFS-trained ANNs, which ``--archs`` names as ``ARCH:qcfsL``; their qcfs rows, signed IF
neurons by default, come also with plain IF neurons, ``qcfs-plain-if``) and, for ReLU ANNs, with SpikingJelly 2.0's ``RateCodingRecipe`` in its Max, 99.9% and
channel-wise (99.9%) modes, evaluates each SNN after every step up to the largest T, and writes

- ``methods_table.md``: accuracy (%) per architecture, method and T in {1, 2, 4, ..., 256},
  with the ANN's accuracy;
- ``methods_accuracy.csv``: the long table (arch, route, method, timesteps, accuracy);
- ``latency_accuracy_<arch>.png``: the latency-accuracy plot of each architecture.

Example (quick):
    python benchmarks/methods_table.py --limit 200 --epochs 1 --train-limit 10000 --width 0.5

SpikingJelly is optional (``pip install spikingjelly``); without it its rows are skipped.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from spikebridge.compare.plots import latency_accuracy_figure
from spikebridge.convert import run_conversion
from spikebridge.data import calibration_loader, make_loaders
from spikebridge.evaluation import evaluate
from spikebridge.io import output_dir, save_figure, write_csv, write_text
from spikebridge.models import build_model
from spikebridge.settings import ConversionSettings, SimulationSettings
from spikebridge.training import train_ann

STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ARCHS = ("cnn", "vgg11", "resnet20", "cnn:qcfs4")
SJ_RECIPES = {"sj-max": ("Max", False), "sj-99.9%": ("99.9%", False), "sj-channel": ("99.9%", True)}


def spikingjelly_curves(
    model: nn.Module, calibration, test_loader, timesteps: int
) -> dict[str, list[float]]:
    """Accuracy after every step (1..timesteps) of SpikingJelly 2.0's rate-coding recipes."""
    try:
        from spikingjelly.activation_based import ann2snn, functional
    except ImportError:
        return {}
    curves = {}
    for name, (mode, channel_wise) in SJ_RECIPES.items():
        recipe = ann2snn.RateCodingRecipe(
            dataloader=calibration, mode=mode, channel_wise=channel_wise
        )
        snn = ann2snn.FXConverter(recipe=recipe, device="cpu").convert(copy.deepcopy(model))
        snn.eval()
        correct = torch.zeros(timesteps)
        total = 0
        with torch.no_grad():
            for x, y in test_loader:
                functional.reset_net(snn)
                out = 0
                for t in range(timesteps):
                    out = out + snn(x)
                    correct[t] += (out.argmax(1) == y).sum()
                total += y.numel()
        curves[name] = (correct / total).tolist()
    return curves


def convert_all(model: nn.Module, calib, test_loader, args) -> tuple[pd.DataFrame, dict]:
    """spikebridge's methods on one ANN through the conversion loop: (long accuracy table,
    skipped method -> reason)."""
    conversion = ConversionSettings(
        methods=args.methods,
        spike_norm_window=args.spike_norm_window,
        spike_norm_samples=args.spike_norm_samples,
    )
    simulation = SimulationSettings(timesteps=args.timesteps)
    result = run_conversion(
        model, calib, test_loader, conversion, simulation, seed=args.seed, strict=False
    )
    frames = [result.accuracy.assign(route="spikebridge")]
    if (
        "qcfs" in result.networks
    ):  # also with the paper's plain IF neurons (qcfs defaults to signed)
        plain = ConversionSettings(methods="qcfs", negative_spikes=False)
        again = run_conversion(model, calib, test_loader, plain, simulation, seed=args.seed)
        frames.append(again.accuracy.assign(route="spikebridge", method="qcfs-plain-if"))
    return pd.concat(frames, ignore_index=True), result.skipped


def markdown_table(frame: pd.DataFrame, ann: dict[str, float]) -> str:
    lines = []
    steps = [t for t in STEPS if t <= frame["timesteps"].max()]
    header = "| arch | method | ANN | " + " | ".join(f"T={t}" for t in steps) + " |"
    lines += [header, "|" + "---|" * (3 + len(steps))]
    for (arch, method), part in frame.groupby(["arch", "method"], sort=False):
        acc = part.set_index("timesteps")["accuracy"]
        cells = " | ".join(f"{100 * acc[t]:.2f}" for t in steps)
        lines.append(f"| {arch} | {method} | {100 * ann[arch]:.2f} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default="/work/shared/data/mnist")
    p.add_argument("--archs", default=",".join(ARCHS))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-limit", type=int, default=None, help="training samples used")
    p.add_argument("--limit", type=int, default=None, help="test samples evaluated")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument("--timesteps", type=int, default=256)
    p.add_argument("--calibration-samples", type=int, default=1000)
    p.add_argument("--spike-norm-samples", type=int, default=128)
    p.add_argument("--spike-norm-window", type=int, default=256)
    p.add_argument("--methods", default="all", help="spikebridge methods (comma-separated)")
    p.add_argument("--no-spikingjelly", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/methods")
    args = p.parse_args(argv)
    out = output_dir(args.out)
    train_loader, test_loader = make_loaders(
        "mnist", args.data_root, 128, args.limit, args.seed, train_limit=args.train_limit
    )
    calib = calibration_loader(train_loader.dataset, args.calibration_samples, 128, args.seed)
    frames, ann = [], {}
    for arch in args.archs.split(","):
        start = time.perf_counter()
        name, _, variant = arch.partition(":")  # e.g. cnn:qcfs4 = cnn trained with QCFS, L = 4
        if variant and not variant.startswith("qcfs"):
            raise SystemExit(f"--archs {arch}: the only variant is ':qcfsL' (QCFS with L levels)")
        options = {"activation": "qcfs", "levels": int(variant[4:] or 4)} if variant else {}
        model = build_model(name, 10, 1, 28, args.width, **options)
        train_ann(model, train_loader, args.epochs, 1e-3, "cpu", args.seed)
        model.eval()
        ann[arch] = float(evaluate(model, test_loader).accuracy[0])
        frame, skipped = convert_all(model, calib, test_loader, args)
        frame = frame.assign(arch=arch)
        if not args.no_spikingjelly and not variant:  # SpikingJelly converts ReLU networks
            for name, curve in spikingjelly_curves(
                model, calib, test_loader, args.timesteps
            ).items():
                rows = [("spikingjelly", name, t, a) for t, a in enumerate(curve, start=1)]
                sj = pd.DataFrame(rows, columns=["route", "method", "timesteps", "accuracy"])
                frame = pd.concat([frame, sj.assign(arch=arch)], ignore_index=True)
        frames.append(frame)
        fig = latency_accuracy_figure(
            frame.drop(columns="arch"), ann[arch], f"{arch} (width {args.width}) on MNIST"
        )
        save_figure(Path(out) / f"latency_accuracy_{arch.replace(':', '-')}.png", fig)
        print(f"{arch}: ANN {100 * ann[arch]:.2f}% ({time.perf_counter() - start:.0f} s)")
        for method, why in skipped.items():
            print(f"  skipped {method}: {why}")
    frame = pd.concat(frames, ignore_index=True)
    write_csv(Path(out) / "methods_accuracy.csv", frame)
    table = markdown_table(frame, ann)
    write_text(Path(out) / "methods_table.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
