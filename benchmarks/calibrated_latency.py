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
with an ANN pass, so step costs are also given as multiples of an ANN pass, by wall time and by
processor time of this process (less sensitive to other jobs on a shared machine).

Time to accuracy is also given by synaptic operations, the cost a neuromorphic chip pays per
step (spikebridge's own counters, SPEC 3.2, on the first ``--ops-images`` test images): the
SOPs (accumulates triggered by spikes) and the dense MACs of the analog-input layers, summed
over the t* steps, per image, and their energy at the project's 4.6 / 0.9 pJ per MAC / AC.
Both measures are reported with their ratio against SpikingJelly; neither is chosen for the bar.

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
)

from spikebridge.convert import (
    CalibratedSettings,
    prepare,  # noqa: E402
)
from spikebridge.convert.calibration import (  # noqa: E402
    calibrate_target,
    for_neurons,
)
from spikebridge.convert.quantised_twin import count_agreement, settled_samples  # noqa: E402
from spikebridge.data import calibration_loader, load_dataset  # noqa: E402
from spikebridge.energy.table import energy_pj  # noqa: E402
from spikebridge.evaluation import evaluate  # noqa: E402
from spikebridge.evaluation.counters import SnnOpCounter  # noqa: E402
from spikebridge.evaluation.layers import layer_kind  # noqa: E402
from spikebridge.io import output_dir, write_json  # noqa: E402
from spikebridge.models import build_model  # noqa: E402


class PairedClock:
    """Seconds of a simulation and of an ANN pass over the same batch, right before it: wall
    time and this process's processor time, summed over batches."""

    def __init__(self) -> None:
        self.sim_wall = self.sim_cpu = self.ann_wall = self.ann_cpu = 0.0

    def run(self, ann, x, simulate):
        w0, c0 = time.perf_counter(), time.process_time()
        ann(x)
        w1, c1 = time.perf_counter(), time.process_time()
        result = simulate()
        self.sim_wall += time.perf_counter() - w1
        self.sim_cpu += time.process_time() - c1
        self.ann_wall += w1 - w0
        self.ann_cpu += c1 - c0
        return result

    def per_step(self, steps: int) -> dict[str, float]:
        """One step's cost in ANN passes, by wall and by processor time."""
        return {
            "step_vs_ann_wall": self.sim_wall / steps / self.ann_wall,
            "step_vs_ann_cpu": self.sim_cpu / steps / self.ann_cpu,
            "sim_wall_seconds": self.sim_wall,
            "sim_cpu_seconds": self.sim_cpu,
        }


def simulate_paired(net, ann, batches, steps: int) -> tuple[int, int, PairedClock]:
    """(correct at T, images whose neurons all ended settled (signed neurons; else 0), the
    paired clock), each batch's simulation right after an ANN pass over it."""
    correct = settled = 0
    clock = PairedClock()
    signed = all(m.negative_spikes for m in net.neurons().values())
    with torch.no_grad():
        net.simulate(batches[0][0][:2], 1)  # warm-up
        for x, y in batches:
            sim = clock.run(ann, x, lambda x=x: net.simulate(x, steps))
            correct += int(sim.correct(y)[-1])
            if signed:
                settled += int(settled_samples(net, steps).sum())
    return correct, settled, clock


def spikingjelly_paired(net, ann, batches, steps: int) -> tuple[torch.Tensor, PairedClock]:
    """SpikingJelly's own per-step loop (its ann2snn example): (accuracy after every step
    [steps], the paired clock)."""
    from spikingjelly.activation_based import functional

    def simulate(x, y):
        functional.reset_net(net)
        out, hits = None, []
        for _ in range(steps):
            step = net(x)
            out = step if out is None else out + step
            hits.append((out.argmax(1) == y).sum())
        return torch.stack(hits)

    clock = PairedClock()
    with torch.no_grad():
        simulate(batches[0][0][:2], batches[0][1][:2])  # warm-up
        correct = sum(clock.run(ann, x, lambda x=x, y=y: simulate(x, y)) for x, y in batches)
    n = sum(len(y) for _, y in batches)
    return correct.double() / n, clock


def ops_per_image(
    macs: torch.Tensor, sops: torch.Tensor, images: int, steps: int, graded=None
) -> dict:
    """Operations per image over steps 1..``steps`` ([T] per-step totals over ``images``); the
    SOPs of graded spikes (``graded``, [T]) cost a MAC each (docs/energy.md)."""
    mac, sop = float(macs[:steps].sum()) / images, float(sops[:steps].sum()) / images
    g = float(graded[:steps].sum()) / images if graded is not None else 0.0
    out = {"macs": mac, "sops": sop, "energy_pj": float(energy_pj(mac + g, sop - g))}
    if graded is not None:
        out["graded_sops"] = g
    return out


def calibrated_ops(net, batches, steps: int) -> dict:
    """spikebridge's counters on the calibrated network, ``steps`` steps."""
    ev = evaluate(net, batches, steps, count_ops=True)
    out = ops_per_image(ev.macs(), ev.sops(), ev.total, steps, ev.graded_sops())
    out["spikes"] = sum(float(c.sum()) for c in ev.spikes.values()) / ev.total
    out["spike_units"] = float(ev.spike_units().sum()) / ev.total
    return out


def spikingjelly_ops(net, batches, steps: int) -> dict:
    """spikebridge's counters (SPEC 3.2) on SpikingJelly's network: SOPs of every conv,
    linear and average-pooling layer fed by spikes, dense MACs of the layers before the first
    neuron (the analog input, as spikebridge counts its own networks). SpikingJelly's
    functional additions (residual joins) are not counted."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.neuron import BaseNode

    order: list[str] = []  # counted layers called before the first neuron: the analog ones
    seen = [False]
    handles = [
        m.register_forward_pre_hook(lambda *_: seen.__setitem__(0, True))
        for m in net.modules()
        if isinstance(m, BaseNode)
    ]
    for name, m in net.named_modules():
        if layer_kind(m) is not None:
            handles.append(
                m.register_forward_hook(
                    lambda *_, name=name: None if seen[0] else order.append(name)
                )
            )
    with torch.no_grad():
        functional.reset_net(net)
        net(batches[0][0][:1])
    for h in handles:
        h.remove()
    counter = SnnOpCounter(static=set(order)).attach(net)
    images = 0
    try:
        with torch.no_grad():
            for x, _ in batches:
                functional.reset_net(net)
                counter.start_batch(x.shape[0], steps)
                for _ in range(steps):
                    net(x)
                images += x.shape[0]
    finally:
        counter.detach()
    macs = torch.zeros(steps, dtype=torch.float64)
    sops = torch.zeros(steps, dtype=torch.float64)
    for op in counter.layers.values():
        macs += op.macs(steps, images)
        if not op.analog and op.sops is not None:
            sops += op.sops.double()
    return ops_per_image(macs, sops, images, steps)


def describe_cost(cost: dict[str, float]) -> str:
    return f"{cost['step_vs_ann_wall']:.2f} (wall) / {cost['step_vs_ann_cpu']:.2f} (CPU)"


def tta_entry(t_star: int, cost: dict[str, float], ops: dict | None) -> dict:
    """Time to accuracy of one network: t* steps x the cost of a step (ANN passes by wall and
    by processor time; the wall seconds of the t*-step run over the test set) and, when
    counted, the operations of t* steps per image."""
    entry = {
        "t_star": t_star,
        "ann_passes_wall": t_star * cost["step_vs_ann_wall"],
        "ann_passes_cpu": t_star * cost["step_vs_ann_cpu"],
        "wall_seconds": cost["sim_wall_seconds"],
        "cpu_seconds": cost["sim_cpu_seconds"],
    }
    if ops is not None:
        entry.update({f"ops_{k}": v for k, v in ops.items()})
    return entry


MEASURES = ("ann_passes_wall", "ann_passes_cpu", "wall_seconds", "cpu_seconds",
            "ops_sops", "ops_energy_pj")  # fmt: skip


def tta_ratios(entries: dict[str, dict]) -> dict[str, dict[str, float]]:
    """SpikingJelly's time to accuracy over each calibrated network's, per measure."""
    sj = entries.get("sj-channel-half")
    out: dict[str, dict[str, float]] = {}
    for name, entry in entries.items():
        if sj is None or name == "sj-channel-half":
            continue
        out[name] = {m: sj[m] / entry[m] for m in MEASURES if m in sj and entry.get(m)}
    return out


def print_tta(entries: dict[str, dict], ratios: dict[str, dict[str, float]]) -> None:
    """The time-to-accuracy table and SpikingJelly's ratio over each calibrated network, with
    the issue's bar (15x) marked per measure."""
    print("time to accuracy (first T within 1 point of the ANN):")
    for name, e in entries.items():
        ops = (f", {e['ops_sops'] / 1e6:.2f} M SOPs + {e['ops_macs'] / 1e6:.2f} M MACs = "
               f"{e['ops_energy_pj'] / 1e6:.2f} uJ per image" if "ops_sops" in e else "")  # fmt: skip
        print(f"  {name}: t* = {e['t_star']}, {e['ann_passes_wall']:.2f} ANN passes (wall) / "
              f"{e['ann_passes_cpu']:.2f} (CPU), run {e['wall_seconds']:.1f} s wall{ops}")  # fmt: skip
    for name, r in ratios.items():
        cells = ", ".join(f"{m} {v:.1f}x ({'meets' if v >= 15 else 'misses'} 15x)"
                          for m, v in r.items())  # fmt: skip
        print(f"  SpikingJelly / {name}: {cells}")


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
    p.add_argument("--weight-lr-scale", type=float, default=1.0, help="weights' step / lr")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="reconstruction's step")
    p.add_argument("--block", type=int, default=1, help="activation layers per unit")
    p.add_argument("--refine-passes", type=int, default=3, help="refinement passes (0: none)")
    p.add_argument(
        "--potentials",
        default="0.5",
        help="grid of u[0] / theta searched per channel, e.g. 0.3,0.5,0.7",
    )
    p.add_argument("--no-snn-correction", action="store_true", help="skip the SNN correction")
    p.add_argument(
        "--spike-levels", type=int, default=1,
        help="graded spikes: K threshold units per step (the twin at K*T levels; 1: binary)",
    )  # fmt: skip
    p.add_argument(
        "--finetune-steps", type=int, default=0,
        help="labelled steps fine-tuning the twin on the calibration images (retraining; 0: none)",
    )  # fmt: skip
    p.add_argument("--finetune-lr", type=float, default=None, help="the fine-tune's Adam step")
    p.add_argument("--finetune-warmup", type=float, default=None, help="share of warm-up steps")
    p.add_argument("--finetune-forward", default=None, choices=("network", "twin"))
    p.add_argument(
        "--finetune-distill", type=float, default=0.0, help="weight of distillation from the ANN"
    )
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--agreement-images", type=int, default=500)
    p.add_argument("--sj-timesteps", type=int, default=0, help="SpikingJelly's run (0: skip)")
    p.add_argument(
        "--ops-images", type=int, default=1000,
        help="test images on which operations are counted (0: do not count)",
    )  # fmt: skip
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
    settings = CalibratedSettings(
        samples=args.samples,
        iterations=args.iterations,
        weights=args.reconstruct_weights,
        weight_lr_scale=args.weight_lr_scale,
        learning_rate=args.learning_rate,
        block=args.block,
        refine_passes=args.refine_passes,
        potentials=tuple(float(v) for v in args.potentials.split(",")),
        snn_correction=not args.no_snn_correction,
        seed=args.seed,
        finetune_steps=args.finetune_steps,
        finetune_distill=args.finetune_distill,
        **({} if args.finetune_lr is None else {"finetune_lr": args.finetune_lr}),
        **({} if args.finetune_warmup is None else {"finetune_warmup": args.finetune_warmup}),
        **({} if args.finetune_forward is None else {"finetune_forward": args.finetune_forward}),
    )
    ops_batches = [] if not args.ops_images else batches[: -(-args.ops_images // args.batch_size)]
    rows = []
    for steps in [int(t) for t in args.targets.split(",")]:
        result = calibrate_target(prepared, calib, steps, settings, spike_levels=args.spike_levels)
        row = {
            "timesteps": steps,
            "spike_levels": args.spike_levels,
            "calibration_seconds": result.seconds,
            "calibration_cpu_seconds": result.cpu_seconds,  # the fine-tune's included
            "finetune_seconds": result.finetune.seconds if result.finetune else 0.0,
        }
        twin = result.twin()
        with torch.no_grad():
            row["twin"] = sum(int((twin(x).argmax(1) == y).sum()) for x, y in batches) / n
            # before the SNN correction: the (fine-tuned) twin the search or fine-tune left
            before = (result.searched or result).twin()
            row["twin_before_snn_correction"] = (
                sum(int((before(x).argmax(1) == y).sum()) for x, y in batches) / n
            )
        for label, signed in (("signed", True), ("plain", False)):
            # plain IF: the same search, the SNN correction redone on a plain simulation
            own = result if signed else for_neurons(result, prepared, calib, False, settings)
            net = own.build()
            correct, settled, clock = simulate_paired(net, model, batches, steps)
            row[label] = correct / n
            row[f"{label}_seconds"] = clock.sim_wall
            row[f"{label}_cost"] = clock.per_step(steps)
            if args.ops_images:
                row[f"{label}_ops"] = calibrated_ops(net, ops_batches, steps)
            if signed:
                row["settled_images"] = settled / n
                shares = count_agreement(net, twin, xs[: args.agreement_images], steps)
                row["count_differs"] = shares
        rows.append(row)
        graded = f" K={args.spike_levels}" if args.spike_levels > 1 else ""
        print(
            f"T={steps}{graded}: calibration {result.seconds:.1f} s (CPU {result.cpu_seconds:.1f} s; "
            f"fine-tune {row['finetune_seconds']:.1f} s); "
            f"signed {100 * row['signed']:.2f}% plain {100 * row['plain']:.2f}% twin "
            f"{100 * row['twin']:.2f}% (before the SNN correction "
            f"{100 * row['twin_before_snn_correction']:.2f}%); a step costs {describe_cost(row['signed_cost'])} ANN "
            f"passes (signed), {describe_cost(row['plain_cost'])} (plain); settled images "
            f"{100 * row['settled_images']:.1f}%; count differs "
            + ", ".join(f"{k} {100 * v:.2f}%" for k, v in row["count_differs"].items()),
            flush=True,
        )
    report = {
        "arch": args.arch,
        "images": n,
        "ann_accuracy": ann_accuracy,
        "settings": vars(args),
        "rows": rows,
        "time_to_accuracy": {},
    }
    for label in ("signed", "plain"):
        ours = next((r for r in rows if r[label] >= ann_accuracy - 0.01 - 1e-12), None)
        if ours is not None:
            report["time_to_accuracy"][f"calibrated-{label}"] = tta_entry(
                ours["timesteps"], ours[f"{label}_cost"], ours.get(f"{label}_ops")
            )
    if args.sj_timesteps:
        from spikingjelly.activation_based import ann2snn

        recipe = ann2snn.RateCodingRecipe(
            calib, mode="99.9%", channel_wise=True, half_threshold=True
        )
        net = ann2snn.Converter(recipe, device="cpu").convert(copy.deepcopy(model)).eval()
        acc, clock = spikingjelly_paired(net, model, batches, args.sj_timesteps)
        t_star = first_within(acc, ann_accuracy - 0.01)
        report["spikingjelly"] = {
            "curve": acc.tolist(),
            "t_star": t_star,
            "cost": clock.per_step(args.sj_timesteps),
        }
        print(f"SpikingJelly best: t* = {t_star} (a step costs "
              f"{describe_cost(clock.per_step(args.sj_timesteps))} ANN passes)", flush=True)  # fmt: skip
        if t_star is not None:
            _, tta_clock = spikingjelly_paired(net, model, batches, t_star)
            ops = spikingjelly_ops(net, ops_batches, t_star) if args.ops_images else None
            report["time_to_accuracy"]["sj-channel-half"] = tta_entry(
                t_star, tta_clock.per_step(t_star), ops
            )
    report["ratios"] = tta_ratios(report["time_to_accuracy"])
    print_tta(report["time_to_accuracy"], report["ratios"])
    if args.out:
        write_json(output_dir(args.out) / "calibrated_latency.json", report)
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"total {time.perf_counter() - start:.0f} s")
    sys.exit(code)
