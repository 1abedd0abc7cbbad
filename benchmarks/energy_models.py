"""Every energy model on cnn, vgg11 and resnet20 on MNIST: which spiking networks beat which ANN.

For each architecture, one comparison (``spikebridge.compare.run`` on small subsets so it runs
in minutes on 2 CPU cores): the ANN, the conversion route (``--methods``; ``calibrated`` at every
target T of ``--targets``), the direct route (STBP-tdBN) and, for cnn, the STDP route; every
network priced by every energy model of spikebridge.energy, beside the float ANN and the ANN
quantised to ceil(log2(T+1))-bit activations (Yan 2024). A method with several networks (one per
target T) is shown at its best T: the smallest T within one point of its best accuracy.

Prints one table per architecture (energy per inference in nJ under each model; the quantised
ANN of the same T; break-even firing rates against it) and writes ``energy_models.csv`` and
``energy_models.md`` in ``--out``; each comparison keeps its own directory there.

Example (what benchmarks/RESULTS.md records):
    python benchmarks/energy_models.py --archs cnn,vgg11,resnet20 --epochs 1 --train-limit 4000 \
        --limit 300 --width 0.25 --timesteps 8 --targets 1,2,4,8 --out runs/energy
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from spikebridge.compare import run
from spikebridge.energy.book import QUANTISED_ROUTE, model_columns
from spikebridge.io import write_csv, write_text


def best_rows(energy: pd.DataFrame) -> pd.DataFrame:
    """One row per spiking (route, method): its smallest T within 1 point of its best accuracy."""
    snn = energy[~energy["route"].isin(["ann", QUANTISED_ROUTE])]
    keep = []
    for _, rows in snn.groupby(["route", "method"], sort=False):
        best = rows["accuracy"].max()
        good = rows[rows["accuracy"] >= best - 0.01].sort_values("timesteps")
        keep.append(good.index[0])
    return energy.loc[keep]


def table(arch: str, energy: pd.DataFrame) -> pd.DataFrame:
    models = [c[len("energy_") : -len("_pJ")] for c in model_columns(energy)]
    ann = energy[energy["route"] == "ann"].iloc[0]
    quantised = energy[(energy["route"] == QUANTISED_ROUTE) & energy["method"].str.endswith("-bit")]
    rows = []

    def add(kind: str, r, extra: dict | None = None) -> None:
        row = {"arch": arch, "network": kind, "T": r.timesteps, "accuracy %": 100 * r.accuracy}
        row.update({f"{m} nJ": getattr(r, f"energy_{m}_pJ") / 1e3 for m in models})
        row.update(extra or {})
        rows.append(row)

    add(f"ANN float ({ann.method})", ann)
    for r in best_rows(energy).itertuples(index=False):
        q = quantised[quantised["timesteps"] == r.timesteps]
        rate = {f"break-even {m}": getattr(r, f"breakeven_rate_{m}_quantised") for m in models}
        add(f"{r.route} {r.method}", r, {"firing rate": r.firing_rate, **rate})
        if len(q):
            add(f"ANN {q.iloc[0].method} (T={int(r.timesteps)})", q.iloc[0])
    frame = pd.DataFrame(rows).drop_duplicates(subset=["network", "T"])
    return frame


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub table (numbers to 3 significant digits)."""
    cells = [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row] for row in frame.values]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells]) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="cnn,vgg11,resnet20")
    p.add_argument("--methods", default="channel,calibrated")
    p.add_argument("--timesteps", type=int, default=8)
    p.add_argument("--targets", default="1,2,4,8")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-limit", type=int, default=4000)
    p.add_argument("--limit", type=int, default=300)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--out", default="runs/energy")
    p.add_argument("--data-root", default=None, help="folder holding the MNIST files")
    args = p.parse_args()
    out = Path(args.out)
    frames = []
    for arch in args.archs.split(","):
        result = run(
            arch, "mnist", out=out / arch, overwrite=True, methods=args.methods,
            timesteps=args.timesteps, targets=args.targets, epochs=args.epochs,
            direct_epochs=args.epochs, direct_timesteps=args.timesteps, width=args.width,
            limit=args.limit, train_limit=args.train_limit, calibration_samples=512,
            batch_size=64, device="cpu", stdp_epochs=1 if arch == "cnn" else 0,
            data_root=args.data_root,
        )  # fmt: skip
        frame = table(arch, result.energy)
        frames.append(frame)
        print(frame.round(3).to_string(index=False), flush=True)
        everything = pd.concat(frames, ignore_index=True)
        write_csv(out / "energy_models.csv", everything)
        write_text(out / "energy_models.md", markdown(everything))


if __name__ == "__main__":
    main()
