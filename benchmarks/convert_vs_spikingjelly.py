"""Conversion benchmark: spikebridge against SpikingJelly 2.0 on the same trained ANN.

The same ANN (the small CNN, trained ``--epochs`` epochs with seed ``--seed``) is converted by
spikebridge (``max``, ``percentile``, ``channel``; Diehl 2015, Rueckauer 2017, Kim 2020) and by
SpikingJelly's ``ann2snn.Converter(ann2snn.RateCodingRecipe(...))`` (Max, 99.9%, 99.9%
channel-wise with and without ``half_threshold``), both calibrated on the same images and run on
the same test images with the same batch size, analog input and reset by subtraction.
SpikingJelly runs in its own per-step loop (single-step modules, one call per step, its
``functional.reset_net`` per batch); spikebridge runs ``SpikingNetwork.simulate``.

Printed for each configuration: accuracy at T in ``--timesteps``, simulation wall time for the
largest T, time per step (wall / T, also as a multiple of one ANN pass over the same images),
t* = the first step at which accuracy comes within 1 point of the ANN, and the time-to-accuracy
(the wall time of a separate run of exactly t* steps over the test set). Then peak memory of a
spikebridge simulation at T = 256 against T = 16, each measured in a fresh subprocess (CPU: the
rise of the peak resident set size over the resident size before the simulation; CUDA:
``torch.cuda.max_memory_allocated`` above the memory allocated before it). Finally the issue's
targets with PASS/FAIL.

Examples:
    python benchmarks/convert_vs_spikingjelly.py                       # full MNIST test set
    python benchmarks/convert_vs_spikingjelly.py --limit 1000 --timesteps 4,8,16,32 \\
        --ann /tmp/cnn_mnist.pt                                         # quick, caches the ANN

Requires ``pip install spikingjelly`` (the ``bench`` extra); ``--skip-spikingjelly`` runs the
spikebridge half alone.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from spikebridge.convert import Converter, PercentileSettings, select_percentile
from spikebridge.convert.tuning import use_percentile
from spikebridge.data import calibration_loader, load_dataset, make_loaders
from spikebridge.engine.network import SpikingNetwork
from spikebridge.io import output_dir, write_json
from spikebridge.models import build_model
from spikebridge.training import train_ann

SPIKEBRIDGE_METHODS = ("max", "percentile", "channel")
# label -> (method, initial potential as a fraction of theta, percentile: None for --percentile,
# "auto" for the p that select_percentile picks on held-out training images at
# --selection-timesteps). "u0=th/2" mirrors SpikingJelly's half_threshold (u[0] = theta/2, Bu et
# al. 2022). Rueckauer 2017 leaves p to the user: a lower p trades clipping of rare large
# activations for finer rate resolution, which is what low T needs.
SPIKEBRIDGE_CONFIGS: dict[str, tuple[str, float, float | str | None]] = {
    "channel": ("channel", 0.0, None),
    "channel u0=th/2": ("channel", 0.5, None),
    "channel p=auto u0=th/2": ("channel", 0.5, "auto"),
    "percentile": ("percentile", 0.0, None),
    "max": ("max", 0.0, None),
}
# label -> RateCodingRecipe keyword arguments
SPIKINGJELLY_RECIPES: dict[str, dict] = {
    "Max": {"mode": "Max"},
    "99.9%": {"mode": "99.9%"},
    "99.9% channel": {"mode": "99.9%", "channel_wise": True},
    "99.9% channel half-th": {"mode": "99.9%", "channel_wise": True, "half_threshold": True},
}
Batches = list[tuple[Tensor, Tensor]]


def default_data_root() -> Path:
    env = os.environ.get("SPIKEBRIDGE_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / "mnist"


def positive_ints(text: str) -> list[int]:
    values = sorted({int(v) for v in text.split(",") if v.strip()})
    if not values or values[0] <= 0:
        raise argparse.ArgumentTypeError(f"expected positive integers like 4,8,16, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", default=str(default_data_root()), help="MNIST files")
    p.add_argument("--limit", type=int, default=None, help="first N test images (default all)")
    p.add_argument("--batch-size", type=int, default=100, help="test and calibration batch")
    p.add_argument("--timesteps", type=positive_ints, default=[4, 8, 16, 32, 64])
    p.add_argument("--epochs", type=int, default=2, help="ANN training epochs")
    p.add_argument("--train-batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calibration-samples", type=int, default=2000)
    p.add_argument("--percentile", type=float, default=99.9, help="p of percentile/channel rows")
    p.add_argument("--validation-samples", type=int, default=2000, help="held-out images, p=auto")
    p.add_argument("--selection-timesteps", type=int, default=16, help="T at which p=auto picks")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--chunk-size", type=int, default=None, help="spikebridge steps per chunk")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument(
        "--ann", default=None, help="state dict cache: loaded if it exists, else trained and saved"
    )
    p.add_argument("--memory-timesteps", type=positive_ints, default=[16, 256])
    p.add_argument("--memory-batches", type=int, default=2, help="test batches per memory run")
    p.add_argument("--memory-method", default="channel", choices=SPIKEBRIDGE_METHODS)
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-spikingjelly", action="store_true")
    p.add_argument("--out", default=None, help="also write results.json to this directory")
    p.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)  # internal
    p.add_argument("--memory-file", default=None, help=argparse.SUPPRESS)  # internal
    args = p.parse_args(argv)
    for name in ("batch_size", "epochs", "calibration_samples", "memory_batches"):
        if getattr(args, name) < (0 if name == "epochs" else 1):
            p.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.limit is not None and args.limit <= 0:
        p.error(f"--limit must be positive, got {args.limit}")
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    return args


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- data and the ANN


def test_batches(args: argparse.Namespace, device: torch.device, limit: int | None) -> Batches:
    """The test images, preloaded on ``device`` so that data loading is timed for nobody."""
    test = load_dataset("mnist", args.data_root, train=False)
    n = len(test) if limit is None else min(limit, len(test))
    xs = torch.stack([test[i][0] for i in range(n)])
    ys = torch.as_tensor([int(test[i][1]) for i in range(n)])
    return [
        (xs[i : i + args.batch_size].to(device), ys[i : i + args.batch_size].to(device))
        for i in range(0, n, args.batch_size)
    ]


def trained_ann(args: argparse.Namespace, device: torch.device) -> nn.Module:
    """The small CNN, loaded from ``--ann`` when that file exists, else trained (and cached)."""
    model = build_model("cnn", 10, 1, 28)
    if args.ann and Path(args.ann).is_file():
        model.load_state_dict(torch.load(args.ann, map_location="cpu", weights_only=True))
    else:
        train_loader, _ = make_loaders(
            "mnist", args.data_root, args.train_batch_size, seed=args.seed
        )
        train_ann(model, train_loader, args.epochs, device=device, seed=args.seed)
        if args.ann:
            from spikebridge.io import save_torch

            save_torch(args.ann, model.state_dict())
    return model.to(device).eval()


def calibration(args: argparse.Namespace, held_out: int | None = None):
    """The calibration images, or with ``held_out`` = N that many training images disjoint
    from them (for choosing p)."""
    train = load_dataset("mnist", args.data_root, train=True)
    if held_out is None:
        return calibration_loader(train, args.calibration_samples, args.batch_size, args.seed)
    skip = args.calibration_samples
    return calibration_loader(train, held_out, args.batch_size, args.seed, skip=skip)


# --------------------------------------------------------------------------- timing


def time_ann(model: nn.Module, batches: Batches, device: torch.device, repeats: int = 3):
    """(accuracy, best wall time of one pass over ``batches``)."""
    best = float("inf")
    correct = 0
    with torch.inference_mode():
        model(batches[0][0])  # warm-up (allocator, oneDNN primitives)
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            hits = [(model(x).argmax(-1) == y).sum() for x, y in batches]
            synchronize(device)
            best = min(best, time.perf_counter() - start)
            correct = int(torch.stack(hits).sum())
    return correct / sum(len(y) for _, y in batches), best


def timed_loop(simulate, ann: nn.Module, batches: Batches, device: torch.device):
    """Run ``simulate(x, y) -> [T] correct`` on every batch, each right after one ANN pass over
    the same batch: (accuracy [T], simulation seconds, ANN seconds). The pairing keeps the ratio
    of the two honest on a machine whose load changes while the benchmark runs."""
    sim_seconds = ann_seconds = 0.0
    correct = []
    with torch.no_grad():
        for x, y in batches:
            synchronize(device)
            t0 = time.perf_counter()
            ann(x)
            synchronize(device)
            t1 = time.perf_counter()
            correct.append(simulate(x, y))
            synchronize(device)
            sim_seconds += time.perf_counter() - t1
            ann_seconds += t1 - t0
    total = sum(len(y) for _, y in batches)
    return (torch.stack(correct).sum(0).double() / total).cpu(), sim_seconds, ann_seconds


def run_spikebridge(net: SpikingNetwork, ann: nn.Module, batches: Batches, steps: int, device):
    """``SpikingNetwork.simulate`` over the batches (see :func:`timed_loop`)."""
    net.simulate(batches[0][0][:2], 1)  # warm-up
    return timed_loop(lambda x, y: net.simulate(x, steps).correct(y), ann, batches, device)


def run_spikingjelly(net: nn.Module, ann: nn.Module, batches: Batches, steps: int, device):
    """SpikingJelly's own per-step loop (as its ann2snn cnn_mnist.py example), see
    :func:`timed_loop`."""
    from spikingjelly.activation_based import functional

    def simulate(x: Tensor, y: Tensor) -> Tensor:
        functional.reset_net(net)
        out = None
        hits = []
        for _ in range(steps):
            step = net(x)
            out = step if out is None else out + step
            hits.append((out.argmax(1) == y).sum())
        return torch.stack(hits)

    with torch.no_grad():
        simulate(batches[0][0][:2], batches[0][1][:2])  # warm-up
    return timed_loop(simulate, ann, batches, device)


def first_within(accuracy: Tensor, target: float) -> int | None:
    """First step t (1-based) with accuracy >= target, or None."""
    hits = (accuracy >= target - 1e-12).nonzero()
    return int(hits[0]) + 1 if len(hits) else None


def evaluate(label: str, runner, batches: Batches, args, ann_accuracy: float) -> dict:
    steps = max(args.timesteps)
    accuracy, seconds, ann_seconds = runner(batches, steps)
    t_star = first_within(accuracy, ann_accuracy - 0.01)
    tta = runner(batches, t_star)[1] if t_star is not None else None
    return {
        "label": label,
        "accuracy": {t: float(accuracy[t - 1]) for t in args.timesteps},
        "curve": accuracy.tolist(),
        "seconds": seconds,
        "step_seconds": seconds / steps,
        "paired_ann_seconds": ann_seconds,
        "step_vs_ann": seconds / steps / ann_seconds,
        "t_star": t_star,
        "time_to_accuracy": tta,
    }


# --------------------------------------------------------------------------- memory


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def memory_probe(args: argparse.Namespace) -> dict:
    """Peak memory of one simulation at T = ``--memory-probe`` steps, in a fresh process that
    holds nothing but torch, the saved network and its test batches (so that the C allocator
    has no freed memory from calibration to hide the simulation's allocations in)."""
    steps = int(args.memory_probe)
    device = torch.device(args.device)
    saved = torch.load(args.memory_file, map_location=device, weights_only=False)
    net, batches = saved["network"], saved["batches"]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        import resource

        base = _rss_kib("VmRSS") * 1024
        try:  # reset the peak (VmHWM) to the current resident size (Linux >= 4.0)
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            reset = True
        except OSError:
            reset = False
    for x in batches:
        net.simulate(x.to(device), steps)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        kind = "cuda max_memory_allocated"
    else:
        peak = (
            _rss_kib("VmHWM") * 1024
            if reset
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        )
        kind = "peak RSS (VmHWM)" if reset else "peak RSS (ru_maxrss, not reset)"
    return {"timesteps": steps, "peak": peak, "base": base, "rise": peak - base, "kind": kind}


def measure_memory(args: argparse.Namespace, net: SpikingNetwork, batches: Batches) -> list[dict]:
    """Run :func:`memory_probe` in a subprocess for each of ``--memory-timesteps``."""
    import tempfile

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.pt")
        chosen = [x.cpu() for x, _ in batches[: args.memory_batches]]
        torch.save({"network": copy.deepcopy(net).cpu(), "batches": chosen}, path)
        for steps in args.memory_timesteps:
            cmd = [sys.executable, os.path.abspath(__file__), "--memory-probe", str(steps)]
            cmd += ["--memory-file", path, "--device", args.device]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"memory probe at T={steps} failed:\n{done.stderr[-2000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


# --------------------------------------------------------------------------- report


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_row(tool: str, row: dict, ts: list[int]) -> str:
    return (
        f"{tool:<12} {row['label']:<22}"
        + "".join(f"{100 * row['accuracy'][t]:>8.2f}" for t in ts)
        + f"  {row['seconds']:>8.2f} {row['step_seconds']:>8.3f} {row['step_vs_ann']:>8.2f}"
        + f" {row['t_star'] if row['t_star'] else '-':>4} {fmt_s(row['time_to_accuracy']):>8}"
    )


def print_report(args, n_images, ann_accuracy, ann_seconds, folded_seconds, rows, memory):
    ts = args.timesteps
    print(
        f"\nMNIST test images: {n_images}, batch {args.batch_size}, device {args.device}, "
        f"threads {torch.get_num_threads()}, torch {torch.__version__}"
    )
    print(
        f"ANN accuracy {100 * ann_accuracy:.2f}%; one ANN pass over the images: "
        f"{ann_seconds:.3f} s (BN folded: {folded_seconds:.3f} s)"
    )
    head = (
        f"{'tool':<12} {'method':<22}"
        + "".join(f"{'T=' + str(t):>8}" for t in ts)
        + f"  {'sim s':>8} {'step s':>8} {'step/ANN':>8} {'t*':>4} {'TTA s':>8}"
    )
    print(
        f"\naccuracy (%) after T steps; sim s = wall time of T={max(ts)}; step s = sim s / T; "
        "step/ANN = step s over one ANN pass timed right before each batch;\n"
        "t* = first step within 1 point of the ANN; TTA s = wall time of a t*-step run"
    )
    print(head)
    print("-" * len(head))
    for tool, row in rows:
        print(format_row(tool, row, ts))
    if memory:
        print(
            f"\npeak memory of a spikebridge '{args.memory_method}' simulation "
            f"({args.memory_batches} batches of {args.batch_size}; {memory[0]['kind']}):"
        )
        for m in memory:
            print(
                f"  T={m['timesteps']:<5} peak {m['peak'] / 2**20:8.1f} MiB, "
                f"rise during simulation {m['rise'] / 2**20:8.1f} MiB"
            )


def check_targets(args, ann_accuracy, rows, memory) -> list[tuple[str, bool, str]]:
    ours = {r["label"]: r for tool, r in rows if tool == "spikebridge"}
    theirs = [r for tool, r in rows if tool == "spikingjelly"]
    checks = []
    worst = max(r["step_vs_ann"] for r in ours.values())
    checks.append(
        ("spikebridge step <= 1.1x ANN pass (every method)", worst <= 1.1, f"worst {worst:.2f}x")
    )
    channel = ours.get("channel")
    for label, row in ours.items():
        if not label.startswith("channel"):
            continue
        for t, limit in ((32, 0.3), (16, 1.0)):
            if t in row["accuracy"]:
                gap = 100 * (ann_accuracy - row["accuracy"][t])
                checks.append(
                    (
                        f"{label} within {limit} points of the ANN at T={t}",
                        gap <= limit,
                        f"gap {gap:.2f}",
                    )
                )
    if theirs and channel is not None:
        finite = [r["time_to_accuracy"] for r in theirs if r["time_to_accuracy"] is not None]
        best_ours = min(
            (r["time_to_accuracy"] for r in ours.values() if r["time_to_accuracy"] is not None),
            default=None,
        )
        if best_ours is None:
            checks.append(
                (
                    "time-to-accuracy >= 2x better than SpikingJelly's best",
                    False,
                    "spikebridge never within 1 point",
                )
            )
        elif not finite:
            checks.append(
                (
                    "time-to-accuracy >= 2x better than SpikingJelly's best",
                    True,
                    f"SpikingJelly never within 1 point by T={max(args.timesteps)}; ours {best_ours:.2f} s",
                )
            )
        else:
            ratio = min(finite) / best_ours
            checks.append(
                (
                    "time-to-accuracy >= 2x better than SpikingJelly's best",
                    ratio >= 2,
                    f"{ratio:.2f}x ({best_ours:.2f} s vs {min(finite):.2f} s)",
                )
            )
        channel_rows = [r for label, r in ours.items() if label.startswith("channel")]
        for name, candidates in (
            ("channel (best row)", channel_rows),
            ("spikebridge's best", list(ours.values())),
        ):
            short = [
                t
                for t in args.timesteps
                if max(r["accuracy"][t] for r in candidates) < max(r["accuracy"][t] for r in theirs)
            ]
            checks.append(
                (
                    f"{name} accuracy >= SpikingJelly's best at every T",
                    not short,
                    f"behind at T={short}" if short else "ok",
                )
            )
    if len(memory) >= 2:
        ratio = memory[-1]["rise"] / max(memory[0]["rise"], 1)
        peak_ratio = memory[-1]["peak"] / max(memory[0]["peak"], 1)
        checks.append(
            (
                f"peak memory T={memory[-1]['timesteps']} <= 1.2x T={memory[0]['timesteps']}",
                ratio <= 1.2,
                f"rise ratio {ratio:.2f}, peak ratio {peak_ratio:.2f}",
            )
        )
    print("\ntargets (issue 2):")
    for name, ok, detail in checks:
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}")
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe is not None:
        print(json.dumps(memory_probe(args)))
        return 0
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    batches = test_batches(args, device, args.limit)
    n_images = sum(len(y) for _, y in batches)
    model = trained_ann(args, device)
    ann_accuracy, ann_seconds = time_ann(model, batches, device)

    print(
        f"ANN accuracy {100 * ann_accuracy:.2f}% on {n_images} images; pass {ann_seconds:.3f} s",
        file=sys.stderr,
        flush=True,
    )
    converter = Converter(model, calibration(args), device=device)
    use_percentile(converter, args.percentile)
    _, folded_seconds = time_ann(converter.prepared_, batches, device)
    rows = []
    networks = {}
    for label, (method, u0, p) in SPIKEBRIDGE_CONFIGS.items():
        settings = None
        if p == "auto":
            choice = select_percentile(
                converter, calibration(args, args.validation_samples), args.selection_timesteps,
                method, initial_potential=u0,
            )  # fmt: skip
            tried = ", ".join(f"{k:g}: {100 * v:.2f}%" for k, v in choice.accuracy.items())
            print(f"{label}: p = {choice.percentile:g} ({tried})", file=sys.stderr, flush=True)
            p = choice.percentile
        if p is not None and p != args.percentile:  # same statistics, another percentile
            settings = PercentileSettings(percentile=p)
        net = converter.build(
            method, initial_potential=u0, chunk_size=args.chunk_size, settings=settings
        )
        networks[label] = net
        runner = lambda b, s, net=net: run_spikebridge(net, model, b, s, device)  # noqa: E731
        rows.append(("spikebridge", evaluate(label, runner, batches, args, ann_accuracy)))
        rows[-1][1]["percentile"] = p if p is not None else args.percentile
        print(format_row(*rows[-1], args.timesteps), file=sys.stderr, flush=True)
    if not args.skip_spikingjelly:
        from spikingjelly.activation_based import ann2snn

        for label, options in SPIKINGJELLY_RECIPES.items():
            recipe = ann2snn.RateCodingRecipe(calibration(args), **options)
            net = ann2snn.Converter(recipe, device=device).convert(copy.deepcopy(model)).eval()
            runner = lambda b, s, net=net: run_spikingjelly(net, model, b, s, device)  # noqa: E731
            rows.append(("spikingjelly", evaluate(label, runner, batches, args, ann_accuracy)))
            print(format_row(*rows[-1], args.timesteps), file=sys.stderr, flush=True)

    memory = []
    if not args.skip_memory:
        memory = measure_memory(args, networks[args.memory_method], batches)
    print_report(args, n_images, ann_accuracy, ann_seconds, folded_seconds, rows, memory)
    checks = check_targets(args, ann_accuracy, rows, memory)
    if args.out:
        out = output_dir(args.out)
        write_json(
            out / "results.json",
            {
                "images": n_images,
                "batch_size": args.batch_size,
                "device": args.device,
                "threads": torch.get_num_threads(),
                "ann_accuracy": ann_accuracy,
                "ann_pass_seconds": ann_seconds,
                "ann_folded_pass_seconds": folded_seconds,
                "results": [{"tool": tool, **row} for tool, row in rows],
                "memory": memory,
                "targets": [{"target": n, "pass": ok, "detail": d} for n, ok, d in checks],
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
