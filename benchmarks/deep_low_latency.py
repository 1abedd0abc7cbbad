"""Issue 23's grid: deep networks at T = 1, 2, 4 by every low-latency route, from the CLI.

For each network (``--nets``), one ``spikebridge convert`` run per variant, all on the same
trained ANN (the first run trains it with ``--ann-epochs``; the others load its ``ann.pt``):

- ``K``: method ``calibrated`` with ``--spike-levels 1,2,3,4`` (binary and graded spikes, one
  network per K and T; Li 2021 calibration, graded spikes as Loihi 2 / SpiNNaker 2 carry them);
- ``ftN``: ``calibrated`` with binary spikes and ``--finetune-steps N`` (the twin retrained on
  labels for N steps, then converted: retraining, and labelled so);
- ``qcfs``: an ANN with QCFS activations (Bu 2022) trained from scratch for the same epochs, then
  converted by method ``qcfs``: the retraining route the fine-tune is weighed against.

Every run writes its own folder under ``--out`` (kept: a second call skips finished runs), and
the script prints one markdown table: the ANN's accuracy (the QCFS row: its own ANN's) and each
network's (%) at T = 1, 2, 4, the seconds each route spent beyond the shared ANN (calibration and
fine-tune per network, or the QCFS ANN's training), and the energy per inference under the
Lemaire model (docs/energy.md) at each T.

Examples::

    python benchmarks/deep_low_latency.py --nets resnet20:digits --out /tmp/deep
    python benchmarks/deep_low_latency.py --nets cnn:mnist,vgg11:mnist:0.25,resnet20:mnist:0.5 \\
        --data-root ../shared/data/mnist --ann-epochs 2 --limit 2000 --out /tmp/deep-mnist
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

TARGETS = (1, 2, 4)
SPIKE_LEVELS = (1, 2, 3, 4)


def parse_nets(text: str) -> list[dict]:
    """``arch:dataset[:width]`` items, comma-separated (``torchvision:resnet18:digits`` too)."""
    nets = []
    for item in text.split(","):
        parts = item.split(":")
        if parts[0] == "torchvision":
            parts = [f"torchvision:{parts[1]}", *parts[2:]]
        if len(parts) not in (2, 3):
            raise SystemExit(f"--nets: {item!r} is not arch:dataset[:width]")
        nets.append({"arch": parts[0], "dataset": parts[1],
                     "width": parts[2] if len(parts) == 3 else "1"})  # fmt: skip
    return nets


def convert(out: Path, argv: list[str]) -> Path:
    """Run ``spikebridge convert`` into ``out`` unless a finished run is there already."""
    if (out / "summary.json").is_file():
        return out
    cmd = [sys.executable, "-m", "spikebridge", "convert", *argv, "--out", str(out), "--quiet"]
    print("$", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True)
    return out


def rows(folder: Path, variant: str, retrain_seconds: float | None = None) -> list[dict]:
    """One row per spiking network of the run in ``folder``: accuracy and Lemaire energy at
    each of its T's, and its calibration (and fine-tune) seconds."""
    energy = pd.read_csv(folder / "energy.csv")
    accuracy = pd.read_csv(folder / "accuracy_vs_timesteps.csv")
    spiking = energy[energy["route"] == "conversion"]
    ann = 100 * json.loads((folder / "summary.json").read_text())["ann_accuracy"]
    found: dict[str, dict] = {}
    for _, r in spiking.iterrows():
        label = r["method"]
        row = found.setdefault(label, {"variant": variant, "network": label, "ANN": ann,
                                       "seconds": 0.0})  # fmt: skip
        t = int(r["timesteps"])
        if r["method"] == "qcfs":  # one anytime network: read at each T of the curve
            curve = accuracy[accuracy["method"] == "qcfs"].set_index("timesteps")["accuracy_pct"]
            for target in TARGETS:
                row[f"T={target}"] = float(curve.get(target, float("nan")))
            row["seconds"] = retrain_seconds
            row[f"E{t}"] = r.get("energy_lemaire_pJ", float("nan"))
            continue
        if t in TARGETS:
            row[f"T={t}"] = float(r["accuracy_pct"])
            row[f"E{t}"] = float(r.get("energy_lemaire_pJ", float("nan")))
            row["seconds"] += float(r.get("convert_seconds", 0.0) or 0.0)
    return list(found.values())


def run_net(net: dict, args: argparse.Namespace) -> list[dict]:
    name = f"{net['arch'].replace(':', '-')}-{net['dataset']}-w{net['width']}"
    base = Path(args.out) / name
    common = ["--arch", net["arch"], "--dataset", net["dataset"], "--width", net["width"],
              "--seed", str(args.seed), "--methods", "calibrated",
              "--targets", ",".join(map(str, TARGETS)), "--timesteps", str(max(TARGETS)),
              "--energy-models", "lemaire"]  # fmt: skip
    if args.data_root:
        common += ["--data-root", args.data_root]
    if args.limit:
        common += ["--limit", str(args.limit)]
    first = convert(base / "K", [*common, "--ann-epochs", str(args.ann_epochs),
                                 "--spike-levels", ",".join(map(str, SPIKE_LEVELS))])  # fmt: skip
    table = rows(first, "K")
    reuse = ["--checkpoint", str(first / "ann.pt"), "--ann-epochs", "0"]
    for steps in args.finetune_steps:
        folder = convert(base / f"ft{steps}", [*common, *reuse, "--finetune-steps", str(steps)])
        table += rows(folder, f"ft{steps}")
    if args.qcfs:
        qcfs_args = [a if a != "calibrated" else "qcfs" for a in common]
        folder = convert(base / "qcfs", [*qcfs_args, "--activation", "qcfs",
                                         "--ann-epochs", str(args.ann_epochs)])  # fmt: skip
        history = pd.read_csv(folder / "history.csv")
        table += rows(folder, "qcfs", float(history["seconds"].sum()))
    for row in table:
        row["net"] = name
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--nets", default="resnet20:digits", help="arch:dataset[:width], comma-separated"
    )
    p.add_argument("--ann-epochs", type=int, default=10)
    p.add_argument("--finetune-steps", default="100,300,1000",
                   help="fine-tune steps, comma-separated ('' for none)")  # fmt: skip
    p.add_argument("--no-qcfs", dest="qcfs", action="store_false", help="skip QCFS training")
    p.add_argument("--data-root", default=None)
    p.add_argument("--limit", type=int, default=None, help="first N test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="folder of the runs (kept; reruns skip them)")
    args = p.parse_args()
    args.finetune_steps = [int(s) for s in args.finetune_steps.split(",") if s]
    table = []
    for net in parse_nets(args.nets):
        table += run_net(net, args)
    print(markdown(pd.DataFrame(table)))


def markdown(frame: pd.DataFrame) -> str:
    """The grid as a markdown table: accuracy (%), seconds, Lemaire energy (nJ) per T."""
    head = ["net", "variant", "network", "ANN", *[f"T={t}" for t in TARGETS], "seconds",
            *[f"nJ T={t}" for t in TARGETS]]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in frame.iterrows():
        cells = [str(r["net"]), str(r["variant"]), str(r["network"]), _cell(r.get("ANN"))]
        cells += [_cell(r.get(f"T={t}")) for t in TARGETS] + [_cell(r.get("seconds"), 1)]
        cells += [_cell(r.get(f"E{t}", float("nan")) / 1000) for t in TARGETS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value, digits: int = 2) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


if __name__ == "__main__":
    main()
