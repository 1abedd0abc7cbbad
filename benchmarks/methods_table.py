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

Method ``calibrated`` (one network per target T, ``--targets``) is reported at each target as
``calibrated`` (signed IF neurons) and ``calibrated-plain-if`` (plain IF, same calibration), and
with ``--weights-iterations N`` also with weight reconstruction (``calibrated+w``,
``calibrated+w-plain-if``); its calibration times go to ``calibration_seconds.csv``.
``--ann-cache DIR`` reuses trained ANNs. ``sj-channel-half`` is SpikingJelly's best recipe
(99.9 % channel-wise, half threshold).

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
from spikebridge.convert import Converter, run_conversion
from spikebridge.convert.low_latency import LowLatencySettings
from spikebridge.convert.methods import method_list
from spikebridge.data import calibration_loader, make_loaders
from spikebridge.evaluation import evaluate
from spikebridge.io import output_dir, save_figure, save_torch, write_csv, write_text
from spikebridge.models import build_model
from spikebridge.settings import ConversionSettings, SimulationSettings, parse_targets
from spikebridge.training import train_ann

STEPS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ARCHS = ("cnn", "vgg11", "resnet20", "cnn:qcfs4")
SJ_RECIPES = {
    "sj-max": {"mode": "Max"},
    "sj-99.9%": {"mode": "99.9%"},
    "sj-channel": {"mode": "99.9%", "channel_wise": True},
    # SpikingJelly's best recipe on MNIST (benchmarks/RESULTS.md, issue 2): u0 = theta/2
    "sj-channel-half": {"mode": "99.9%", "channel_wise": True, "half_threshold": True},
}


def spikingjelly_curves(
    model: nn.Module, calibration, test_loader, timesteps: int, recipes: list[str] | None = None
) -> dict[str, list[float]]:
    """Accuracy after every step (1..timesteps) of SpikingJelly 2.0's rate-coding recipes."""
    try:
        from spikingjelly.activation_based import ann2snn, functional
    except ImportError:
        return {}
    curves = {}
    for name, options in SJ_RECIPES.items():
        if recipes is not None and name not in recipes:
            continue
        recipe = ann2snn.RateCodingRecipe(dataloader=calibration, **options)
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


def calibrated_rows(model: nn.Module, calib, test_loader, args) -> pd.DataFrame:
    """Method ``calibrated`` at each target T (its own network, scored at its own T): signed IF
    (``calibrated``) and plain IF (``calibrated-plain-if``) neurons from the same calibration,
    and with ``--weights-iterations`` N also with weight reconstruction (``calibrated+w``,
    ``calibrated+w-plain-if``). Calibration times go to ``calibration_seconds.csv``."""
    variants = [("calibrated", LowLatencySettings(iterations=args.calibrated_iterations))]
    if args.weights_iterations:
        variants.append(
            (
                "calibrated+w",
                LowLatencySettings(iterations=args.weights_iterations, reconstruct_weights=True),
            )
        )
    rows = []
    for label, settings in variants:
        settings.seed = args.seed
        converter = Converter(model, calib, "avg", seed=args.seed, low_latency=settings)
        for steps in parse_targets(args.targets):
            for signed, suffix in ((True, ""), (False, "-plain-if")):
                net = converter.build("calibrated", negative_spikes=signed, timesteps=steps)
                acc = float(evaluate(net, test_loader, steps).accuracy[-1])
                rows.append(("spikebridge", label + suffix, steps, acc))
            done = converter.low_latency_[steps]
            CALIBRATION_SECONDS.append((label, steps, done.seconds, done.cpu_seconds))
            print(f"  {label} T={steps}: {100 * rows[-2][3]:.2f} / {100 * rows[-1][3]:.2f} % "
                  f"(signed / plain IF), calibration {done.seconds:.1f} s", flush=True)  # fmt: skip
    return pd.DataFrame(rows, columns=["route", "method", "timesteps", "accuracy"])


CALIBRATION_SECONDS: list[tuple[str, int, float, float]] = []


def convert_all(model: nn.Module, calib, test_loader, args) -> tuple[pd.DataFrame, dict]:
    """spikebridge's methods on one ANN through the conversion loop: (long accuracy table,
    skipped method -> reason)."""
    names = method_list(args.methods)
    frames = []
    if "calibrated" in names:  # its own variants, one network per target T
        names.remove("calibrated")
        frames.append(calibrated_rows(model, calib, test_loader, args))
    if not names:
        return pd.concat(frames, ignore_index=True), {}
    conversion = ConversionSettings(
        methods=names,
        spike_norm_window=args.spike_norm_window,
        spike_norm_samples=args.spike_norm_samples,
    )
    simulation = SimulationSettings(timesteps=args.timesteps)
    result = run_conversion(
        model, calib, test_loader, conversion, simulation, seed=args.seed, strict=False
    )
    frames.append(result.accuracy.assign(route="spikebridge"))
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
        cells = " | ".join(f"{100 * acc[t]:.2f}" if t in acc.index else "-" for t in steps)
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
    p.add_argument("--sj-recipes", default=None, help="SpikingJelly recipes (default: all)")
    p.add_argument("--targets", default="1,2,4,8,16", help="target T's of calibrated")
    p.add_argument("--calibrated-iterations", type=int, default=0)
    p.add_argument(
        "--weights-iterations", type=int, default=0,
        help="also calibrated with weight reconstruction, N steps per layer (0: not run)",
    )  # fmt: skip
    p.add_argument(
        "--ann-cache", default=None,
        help="folder of trained ANNs (ARCH.pt state dicts): loaded if present, else saved",
    )  # fmt: skip
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
        cached = Path(args.ann_cache) / f"{arch.replace(':', '-')}.pt" if args.ann_cache else None
        if cached is not None and cached.is_file():
            model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
        else:
            train_ann(model, train_loader, args.epochs, 1e-3, "cpu", args.seed)
            if cached is not None:
                save_torch(cached, model.state_dict())
        model.eval()
        ann[arch] = float(evaluate(model, test_loader).accuracy[0])
        frame, skipped = convert_all(model, calib, test_loader, args)
        frame = frame.assign(arch=arch)
        if not args.no_spikingjelly and not variant:  # SpikingJelly converts ReLU networks
            recipes = args.sj_recipes.split(",") if args.sj_recipes else None
            for name, curve in spikingjelly_curves(
                model, calib, test_loader, args.timesteps, recipes
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
    if CALIBRATION_SECONDS:
        columns = ["variant", "timesteps", "seconds", "cpu_seconds"]
        write_csv(
            Path(out) / "calibration_seconds.csv",
            pd.DataFrame(CALIBRATION_SECONDS, columns=columns),
        )
    table = markdown_table(frame, ann)
    write_text(Path(out) / "methods_table.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
