"""The user's own CNNs from files: ANN vs converted SNN at T, through the CLI with no --arch.

Trains each net of ``tests/test_loading_nets.py`` (classes spikebridge does not define:
functional relu, residual join + global mean, torch.cat of two branches + adaptive average
pooling, leaky_relu) on digits as the test does, saves it with ``torch.export.save`` and
``torch.onnx.export``, runs ``spikebridge convert --checkpoint FILE`` on each file, and prints
the ANN accuracy and the SNN accuracy at T (channel-wise thresholds) as a table.

Example:
    python benchmarks/user_graph_files.py --out /tmp/user-graphs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout and the test nets

from test_loading_nets import NETS, export_files  # noqa: E402

from spikebridge.cli import main  # noqa: E402
from spikebridge.data import make_loaders  # noqa: E402
from spikebridge.evaluation import evaluate  # noqa: E402
from spikebridge.training import train_ann  # noqa: E402


def run(out: Path, timesteps: int, epochs: int, method: str) -> pd.DataFrame:
    train, test = make_loaders("digits", batch_size=64, seed=0)
    rows = []
    for name, cls in NETS.items():
        torch.manual_seed(0)
        model = cls()
        train_ann(model, train, epochs=epochs, lr=1e-2, seed=0)
        model.eval()
        ann = float(evaluate(model, test).accuracy[0])
        files = export_files(model, out, name)
        for kind, path in files.items():
            target = out / f"{name}-{kind}"
            start = time.perf_counter()
            args = ["convert", "--checkpoint", str(path), "--timesteps", str(timesteps)]
            code = main([*args, "--method", method, "--out", str(target), "--quiet"])
            if code != 0:
                raise SystemExit(f"spikebridge convert failed on {path}")
            summary = json.loads((target / "summary.json").read_text())
            frame = pd.read_csv(target / "accuracy_vs_timesteps.csv")
            snn = float(frame[frame["timesteps"] == timesteps]["accuracy_pct"].iloc[0]) / 100
            rows.append(
                {
                    "net": name,
                    "file": kind,
                    "ANN (trained, %)": 100 * ann,
                    "ANN from file (%)": 100 * summary["ann_accuracy"],
                    f"SNN T={timesteps} (%)": 100 * snn,
                    "difference (points)": 100 * (snn - summary["ann_accuracy"]),
                    "seconds": time.perf_counter() - start,
                }
            )
    return pd.DataFrame(rows)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("user-graph-files"))
    p.add_argument("--timesteps", type=int, default=64)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--method", default="channel")
    return p.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = run(args.out, args.timesteps, args.epochs, args.method)
    print(table.round(2).to_string(index=False))
