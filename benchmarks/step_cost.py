"""Cost of a simulation step of a calibrated network, in ANN passes (processor time).

Calibrates the ANN for target T = ``--target`` (method ``calibrated``, default settings), then
times ``SpikingNetwork.simulate`` of ``--batch-size`` test images for T = ``--steps`` with signed
and plain IF neurons, best of ``--repeats``, each divided by one ANN pass over the same images
(this process's processor time, one thread: less sensitive to other jobs than wall time).
``--profile`` adds torch.profiler's table of operators for a 1-step and a 4-step run.

Example (the issue's cnn ANN; run it on two trees to compare code):
    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/step_cost.py --ann runs/anns/cnn-w1-e2-s0.pt
"""

from __future__ import annotations

import argparse
import time

import torch

from spikebridge.convert import CalibratedSettings, prepare
from spikebridge.convert.calibration import calibrate_target
from spikebridge.data import calibration_loader, load_dataset
from spikebridge.models import build_model


def best_cpu_seconds(fn, repeats: int) -> float:
    """The smallest processor time of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="cnn")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--ann", required=True, help="state dict of the trained ANN (--arch, --width)")
    p.add_argument("--data-root", default="/work/shared/data/mnist")
    p.add_argument("--target", type=int, default=1, help="T the network is calibrated for")
    p.add_argument("--steps", default="1,2,4,8", help="simulated T's")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model = build_model(args.arch, 10, 1, 28, args.width)
    model.load_state_dict(torch.load(args.ann, map_location="cpu", weights_only=True))
    model.eval()
    train = load_dataset("mnist", args.data_root, train=True)
    calib = calibration_loader(train, 2000, 128, args.seed)
    result = calibrate_target(
        prepare(model, maxpool="avg"), calib, args.target, CalibratedSettings(seed=args.seed)
    )
    test = load_dataset("mnist", args.data_root, train=False)
    x = torch.stack([test[i][0] for i in range(args.batch_size)])
    nets = {"signed": result.build(True), "plain": result.build(False)}
    with torch.no_grad():
        for net in nets.values():
            net.simulate(x[:2], 1)  # warm-up
        ann = best_cpu_seconds(lambda: model(x), args.repeats)
        print(f"ANN pass {1000 * ann:.1f} ms CPU ({args.batch_size} images)")
        for name, net in nets.items():
            for steps in [int(t) for t in args.steps.split(",")]:
                sim = best_cpu_seconds(lambda n=net, t=steps: n.simulate(x, t), args.repeats)
                print(f"{name} T={steps}: {1000 * sim:.1f} ms = {sim / ann:.2f} ANN passes, "
                      f"{sim / steps / ann:.2f} per step", flush=True)  # fmt: skip
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            for name, net in nets.items():
                for steps in (1, 4):
                    with profile(activities=[ProfilerActivity.CPU]) as prof:
                        net.simulate(x, steps)
                    print(f"{name} T={steps}")
                    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
