"""The unsupervised STDP route (Tavanaei & Maida 2017) on MNIST: clean and noisy accuracy.

Trains the route (auto-encoder kernels, STDP feature layer, linear readout), then scores the
full test set clean and under every noise level, and prints a table with the paper's figures
beside it. Writes results.json and robustness.csv into --out.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/stdp_mnist.py --data-root /work/shared/data \
        --stdp-train 10000 --readout-train 20000 --out runs/stdp_mnist
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset

from spikebridge.compare.noise import noise_conditions, noisy_loader, parse_noise_specs
from spikebridge.data import load_dataset
from spikebridge.evaluation import evaluate
from spikebridge.io import output_dir, save_torch, write_csv, write_json
from spikebridge.stdp import config_for, train


def subset(dataset, n: int, seed: int) -> Subset:
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[: min(n, len(dataset))].sort().values.tolist())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None)
    p.add_argument("--stdp-train", type=int, default=10000, help="images for the two layers")
    p.add_argument("--readout-train", type=int, default=20000, help="labelled images, readout")
    p.add_argument("--limit", type=int, default=None, help="test images (default: all)")
    p.add_argument("--timesteps", type=int, default=None)
    p.add_argument("--noise", action="append", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--out", default="runs/stdp_mnist")
    p.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = output_dir(a.out)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.set)}
    if a.timesteps:
        overrides["timesteps"] = a.timesteps
    config = config_for("tavanaei2017", 1, 28, 10, **overrides)
    specs = parse_noise_specs(a.noise or ["gaussian:0.1,0.2,0.3", "salt-pepper:0.05,0.1"])
    train_set = load_dataset("mnist", a.data_root, train=True)
    test_set = load_dataset("mnist", a.data_root, train=False)
    if a.limit:
        test_set = Subset(test_set, list(range(min(a.limit, len(test_set)))))
    g = torch.Generator().manual_seed(a.seed)
    stdp_loader = DataLoader(
        subset(train_set, a.stdp_train, a.seed), a.batch_size, True, generator=g
    )
    readout_loader = DataLoader(subset(train_set, a.readout_train, a.seed + 1), a.batch_size)
    test_loader = DataLoader(test_set, a.batch_size)

    def log(row: dict) -> None:
        shown = {k: v for k, v in row.items() if k != "batch_errors"}
        print(json.dumps(shown), flush=True)

    t0 = time.perf_counter()
    result = train(config, stdp_loader, a.seed, False, log, readout_loader)
    train_s = time.perf_counter() - t0
    save_torch(
        out / "stdp_network.pt", {"config": config.to_dict(), "state": result.network.state_dict()}
    )
    rows = []
    conditions = [("clean", 0.0)] + noise_conditions(specs)
    for kind, level in conditions:
        loader = test_loader if kind == "clean" else noisy_loader(test_loader, kind, level, a.seed)
        t1 = time.perf_counter()
        ev = evaluate(result.network, loader, config.timesteps)
        acc = 100 * ev.correct[-1].item() / ev.total
        rows.append(
            {
                "noise": kind,
                "level": level,
                "accuracy": acc,
                "samples": ev.total,
                "seconds": time.perf_counter() - t1,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    clean = rows[0]["accuracy"]
    for r in rows:
        r["loss"] = clean - r["accuracy"]
    frame = pd.DataFrame(rows)
    write_csv(out / "robustness.csv", frame)
    write_json(
        out / "results.json",
        {
            "config": config.to_dict(),
            "stdp_train": a.stdp_train,
            "readout_train": a.readout_train,
            "train_seconds": train_s,
            "phase_seconds": result.seconds,
            "train_accuracy": result.train_accuracy,
            "history": [
                {k: v for k, v in h.items() if k != "batch_errors"} for h in result.history
            ],
            "test": rows,
        },
    )
    print(
        frame.to_markdown(index=False, floatfmt=".2f") if hasattr(frame, "to_markdown") else frame
    )
    print(f"training {train_s:.0f} s ({result.seconds})")


if __name__ == "__main__":
    main()
