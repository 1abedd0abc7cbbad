"""Method ``calibrated`` on one trained ANN: a network per target T, against SpikingJelly's best.

For each target T (``--targets``), calibrates thresholds and biases on the quantised twin from
``--samples`` unlabelled training images (timed), builds the network with signed IF neurons and
with plain IF neurons, and evaluates each at its own T on the test images. Also printed per T:
the twin's accuracy, the share of test images whose every neuron ended settled (where the
network equals its twin exactly), and the share of neurons whose net spike count differs from
the twin's level (on ``--agreement-images`` test images). Then time-to-accuracy (TTA): for
calibrated, the first target T whose network is within 1 point of the ANN, and the wall time of
its T-step run over the test set; for SpikingJelly 2.0's best recipe (99.9 % channel-wise with
half threshold, ``benchmarks/convert_vs_spikingjelly.py``), the first step within 1 point and
the wall time of a run of exactly that many steps. Every simulation is paired batch by batch
with an ANN pass, so step costs are also given as multiples of an ANN pass.

Example (the issue's MNIST CNN, full test set):
    python benchmarks/calibrated_latency.py --arch cnn --ann runs/cnn_mnist_2ep.pt \\
        --out runs/calibrated-cnn
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert_vs_spikingjelly import (  # noqa: E402
    first_within,
    run_spikingjelly,
)

from spikebridge.convert import prepare  # noqa: E402
from spikebridge.convert.calibration import LowLatencySettings, calibrate_low_latency  # noqa: E402
from spikebridge.convert.quantised_twin import count_agreement, settled_samples  # noqa: E402
from spikebridge.data import calibration_loader, load_dataset  # noqa: E402
from spikebridge.io import output_dir, write_json  # noqa: E402
from spikebridge.models import build_model  # noqa: E402

CPU = torch.device("cpu")


def simulate_paired(net, ann, batches, steps: int) -> tuple[int, int, float, float]:
    """(correct at T, images whose neurons all ended settled (signed neurons; else 0),
    simulation seconds, seconds of an ANN pass over the same batches, paired batch by batch)."""
    correct = settled = 0
    sim_seconds = ann_seconds = 0.0
    signed = all(m.negative_spikes for m in net.neurons().values())
    with torch.no_grad():
        net.simulate(batches[0][0][:2], 1)  # warm-up
        for x, y in batches:
            t0 = time.perf_counter()
            ann(x)
            t1 = time.perf_counter()
            sim = net.simulate(x, steps)
            sim_seconds += time.perf_counter() - t1
            ann_seconds += t1 - t0
            correct += int(sim.correct(y)[-1])
            if signed:
                settled += int(settled_samples(net, steps).sum())
    return correct, settled, sim_seconds, ann_seconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="cnn")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--ann", required=True, help="state dict of the trained ANN (--arch, --width)")
    p.add_argument("--data-root", default="/work/shared/data/mnist")
    p.add_argument("--limit", type=int, default=None, help="test images (default: all)")
    p.add_argument("--targets", default="1,2,4,8")
    p.add_argument("--calibration-samples", type=int, default=2000, help="as the CLI's default")
    p.add_argument("--samples", type=int, default=512, help="calibration images used")
    p.add_argument("--iterations", type=int, default=0, help="reconstruction steps per layer")
    p.add_argument("--reconstruct-weights", action="store_true")
    p.add_argument("--refine-passes", type=int, default=3, help="refinement passes (0: none)")
    p.add_argument(
        "--potentials",
        default="0.5",
        help="grid of u[0] / theta searched per channel, e.g. 0.3,0.5,0.7",
    )
    p.add_argument("--no-snn-correction", action="store_true", help="skip the SNN correction")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--agreement-images", type=int, default=500)
    p.add_argument("--sj-timesteps", type=int, default=0, help="SpikingJelly's run (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    test = load_dataset("mnist", args.data_root, train=False)
    n = len(test) if args.limit is None else min(args.limit, len(test))
    xs = torch.stack([test[i][0] for i in range(n)])
    ys = torch.as_tensor([int(test[i][1]) for i in range(n)])
    batches = [
        (xs[i : i + args.batch_size], ys[i : i + args.batch_size])
        for i in range(0, n, args.batch_size)
    ]
    model = build_model(args.arch, 10, 1, 28, args.width)
    model.load_state_dict(torch.load(args.ann, map_location="cpu", weights_only=True))
    model.eval()
    with torch.no_grad():
        ann_accuracy = sum(int((model(x).argmax(1) == y).sum()) for x, y in batches) / n
    print(f"ANN {100 * ann_accuracy:.2f}% on {n} test images", flush=True)
    train = load_dataset("mnist", args.data_root, train=True)
    calib = calibration_loader(train, args.calibration_samples, 128, args.seed)
    prepared = prepare(model, maxpool="avg")
    settings = LowLatencySettings(
        samples=args.samples,
        iterations=args.iterations,
        reconstruct_weights=args.reconstruct_weights,
        refine_passes=args.refine_passes,
        potentials=tuple(float(v) for v in args.potentials.split(",")),
        snn_correction=not args.no_snn_correction,
        seed=args.seed,
    )
    rows = []
    for steps in [int(t) for t in args.targets.split(",")]:
        result = calibrate_low_latency(prepared, calib, steps, settings)
        row = {
            "timesteps": steps,
            "calibration_seconds": result.seconds,
            "calibration_cpu_seconds": result.cpu_seconds,
        }
        twin = result.twin()
        with torch.no_grad():
            row["twin"] = sum(int((twin(x).argmax(1) == y).sum()) for x, y in batches) / n
        for label, signed in (("signed", True), ("plain", False)):
            net = result.build(negative_spikes=signed)
            correct, settled, seconds, ann_seconds = simulate_paired(net, model, batches, steps)
            row[label] = correct / n
            row[f"{label}_seconds"] = seconds
            row[f"{label}_step_vs_ann"] = seconds / steps / ann_seconds
            if signed:
                row["settled_images"] = settled / n
                shares = count_agreement(net, twin, xs[: args.agreement_images], steps)
                row["count_differs"] = shares
        rows.append(row)
        print(
            f"T={steps}: calibration {result.seconds:.1f} s (CPU {result.cpu_seconds:.1f} s); signed {100 * row['signed']:.2f}% "
            f"plain {100 * row['plain']:.2f}% twin {100 * row['twin']:.2f}%; settled images "
            f"{100 * row['settled_images']:.1f}%; count differs "
            + ", ".join(f"{k} {100 * v:.2f}%" for k, v in row["count_differs"].items()),
            flush=True,
        )
    ours = next((r for r in rows if r["signed"] >= ann_accuracy - 0.01 - 1e-12), None)
    report = {
        "arch": args.arch,
        "images": n,
        "ann_accuracy": ann_accuracy,
        "settings": vars(args),
        "rows": rows,
        "calibrated_t_star": None if ours is None else ours["timesteps"],
        "calibrated_tta_seconds": None if ours is None else ours["signed_seconds"],
    }
    if args.sj_timesteps:
        from spikingjelly.activation_based import ann2snn

        recipe = ann2snn.RateCodingRecipe(
            calib, mode="99.9%", channel_wise=True, half_threshold=True
        )
        net = ann2snn.Converter(recipe, device="cpu").convert(copy.deepcopy(model)).eval()
        acc, seconds, ann_seconds = run_spikingjelly(net, model, batches, args.sj_timesteps, CPU)
        t_star = first_within(acc, ann_accuracy - 0.01)
        tta = run_spikingjelly(net, model, batches, t_star, CPU)[1] if t_star else None
        report["spikingjelly"] = {
            "curve": acc.tolist(),
            "t_star": t_star,
            "tta_seconds": tta,
            "step_vs_ann": seconds / args.sj_timesteps / ann_seconds,
        }
        print(f"SpikingJelly best: t* = {t_star}, TTA {tta} s", flush=True)
        if tta and ours is not None:
            report["tta_ratio"] = tta / ours["signed_seconds"]
            print(f"time-to-accuracy ratio {report['tta_ratio']:.1f}x", flush=True)
    print(f"calibrated: t* = {report['calibrated_t_star']}, TTA {report['calibrated_tta_seconds']}")
    if args.out:
        write_json(output_dir(args.out) / "calibrated_latency.json", report)
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"total {time.perf_counter() - start:.0f} s")
    sys.exit(code)
