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
``--ann-cache DIR`` reuses trained ANNs (``--widths`` sets each architecture's width).
``sj-channel-half`` is SpikingJelly's best recipe (99.9 % channel-wise, half threshold).

Rows are written as they finish (``methods_accuracy.csv`` and ``methods_table.md`` are rewritten
atomically after every network), so a stopped run keeps what it measured; ``--resume`` skips
the cells already in ``--out``. ``--variants`` runs only some of calibrated's four rows (the
signed and plain IF networks of one target T share one calibration).

Example (quick):
    python benchmarks/methods_table.py --limit 200 --epochs 1 --train-limit 10000 --width 0.5

Example (the bar cells of issue 11 first: signed IF, default settings, T = 2 and 4):
    python benchmarks/methods_table.py --archs vgg11,resnet20 --widths vgg11=0.25,resnet20=0.5 \
        --epochs 2 --ann-cache /work/runs/anns --methods calibrated --variants calibrated \
        --targets 2,4 --no-spikingjelly --out runs/methods

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

from spikebridge.convert import CalibratedSettings, Converter, SpikeNormSettings, run_conversion
from spikebridge.convert.methods import method_list
from spikebridge.data import calibration_loader, make_loaders
from spikebridge.evaluation import evaluate
from spikebridge.io import output_dir, save_figure, save_torch, write_csv, write_text
from spikebridge.models import build_model
from spikebridge.plots import latency_accuracy_figure
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


CALIBRATED_VARIANTS = ("calibrated", "calibrated-plain-if", "calibrated+w", "calibrated+w-plain-if")


def calibrated_rows(model: nn.Module, calib, test_loader, args, table: RowTable) -> None:
    """Method ``calibrated`` at each target T (its own network, scored at its own T): signed IF
    (``calibrated``) and plain IF (``calibrated-plain-if``) neurons from the same calibration,
    and with ``--weights-iterations`` N also with weight reconstruction (``calibrated+w``,
    ``calibrated+w-plain-if``); only the ``--variants`` asked for, and not the cells ``table``
    already has. Each row goes to ``table`` when its network is scored; calibration times go
    to ``calibration_seconds.csv``."""
    wanted = parse_variants(args.variants)
    settings_of = {
        "calibrated": CalibratedSettings(iterations=args.calibrated_iterations, seed=args.seed)
    }
    if args.weights_iterations:
        settings_of["calibrated+w"] = CalibratedSettings(
            iterations=args.weights_iterations, weights=True, seed=args.seed
        )
    for label, settings in settings_of.items():
        converter = Converter(
            model, calib, "avg", seed=args.seed, settings={"calibrated": settings}
        )
        for steps in parse_targets(args.targets):
            for signed, suffix in ((True, ""), (False, "-plain-if")):
                method = label + suffix
                if method not in wanted or table.has(method, steps):
                    continue
                net = converter.build("calibrated", negative_spikes=signed, target=steps)
                start = time.perf_counter()
                acc = float(evaluate(net, test_loader, steps).accuracy[-1])
                table.add([("spikebridge", method, steps, acc)])
                print(f"  {method} T={steps}: {100 * acc:.2f} % "
                      f"(test {time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
                # a plain network's calibration: the signed one's search + its own correction
                done = converter.output("calibrated", steps, signed).detail
                table.add_calibration((method, steps, done.seconds, done.cpu_seconds))
                print(f"  {method} T={steps}: calibration {done.seconds:.1f} s wall, "
                      f"{done.cpu_seconds:.1f} s CPU", flush=True)  # fmt: skip


def parse_variants(text: str) -> set[str]:
    """``--variants`` -> the calibrated rows to run (all four by default)."""
    names = {v.strip() for v in text.split(",") if v.strip()} if text else set(CALIBRATED_VARIANTS)
    unknown = names - set(CALIBRATED_VARIANTS)
    if unknown:
        raise SystemExit(
            f"--variants: unknown {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(CALIBRATED_VARIANTS)}"
        )
    return names


def convert_all(model: nn.Module, calib, test_loader, args, table: RowTable) -> dict:
    """spikebridge's methods on one ANN through the conversion loop, rows into ``table`` (a
    method whose curve ``table`` already has is not run again); returns skipped method ->
    reason."""
    names = method_list(args.methods)
    if "calibrated" in names:  # its own variants, one network per target T
        names.remove("calibrated")
        calibrated_rows(model, calib, test_loader, args, table)
    names = [m for m in names if not table.has(m, args.timesteps)]
    if not names:
        return {}
    conversion = ConversionSettings(methods=names)
    spike_norm = SpikeNormSettings(window=args.spike_norm_window, samples=args.spike_norm_samples)
    simulation = SimulationSettings(timesteps=args.timesteps)
    result = run_conversion(
        model, calib, test_loader, conversion, simulation, seed=args.seed, strict=False,
        method_settings={"spike-norm": spike_norm},
    )  # fmt: skip
    table.add_frame(result.accuracy.assign(route="spikebridge"))
    if (
        "qcfs" in result.networks
    ):  # also with the paper's plain IF neurons (qcfs defaults to signed)
        plain = ConversionSettings(methods="qcfs", negative_spikes=False)
        again = run_conversion(model, calib, test_loader, plain, simulation, seed=args.seed)
        table.add_frame(again.accuracy.assign(route="spikebridge", method="qcfs-plain-if"))
    return result.skipped


class RowTable:
    """The long accuracy table of a run, rewritten (atomically) to ``out`` after every addition.

    Files: ``methods_accuracy.csv`` (arch, route, method, timesteps, accuracy),
    ``ann_accuracy.csv`` (arch, width, accuracy), ``calibration_seconds.csv`` and the markdown
    ``methods_table.md``. With ``resume``, the rows already in ``out`` are kept and
    :meth:`has` reports them, so a stopped run continues where it stopped.
    """

    COLUMNS = ["arch", "route", "method", "timesteps", "accuracy"]

    def __init__(self, out: Path, resume: bool) -> None:
        self.out = Path(out)
        self.rows = self._read("methods_accuracy.csv", resume)
        self.ann = self._read("ann_accuracy.csv", resume)
        self.calibration = self._read("calibration_seconds.csv", resume)
        self.arch = ""

    def _read(self, name: str, resume: bool) -> list[dict]:
        path = self.out / name
        return pd.read_csv(path).to_dict("records") if resume and path.is_file() else []

    def has(self, method: str, steps: int) -> bool:
        """Whether this architecture's ``method`` was measured at T = ``steps``."""
        return any(
            r["arch"] == self.arch and r["method"] == method and r["timesteps"] == steps
            for r in self.rows
        )

    def set_ann(self, arch: str, width: float, accuracy: float) -> None:
        self.arch = arch
        self.ann = [r for r in self.ann if r["arch"] != arch]
        self.ann.append({"arch": arch, "width": width, "accuracy": accuracy})
        self._write()

    def add(self, rows: list[tuple[str, str, int, float]]) -> None:
        """(route, method, timesteps, accuracy) rows of the current architecture."""
        for route, method, steps, acc in rows:
            self.rows = [
                r
                for r in self.rows
                if (r["arch"], r["method"], r["timesteps"]) != (self.arch, method, steps)
            ]
            self.rows.append(dict(zip(self.COLUMNS, (self.arch, route, method, steps, acc))))
        self._write()

    def add_frame(self, frame: pd.DataFrame) -> None:
        cols = ["route", "method", "timesteps", "accuracy"]
        self.add([tuple(r) for r in frame[cols].itertuples(index=False)])

    def add_calibration(self, row: tuple[str, int, float, float]) -> None:
        names = ["variant", "timesteps", "seconds", "cpu_seconds"]
        self.calibration.append({"arch": self.arch, **dict(zip(names, row))})
        self._write()

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=self.COLUMNS)

    def _write(self) -> None:
        write_csv(self.out / "methods_accuracy.csv", self.frame())
        write_csv(self.out / "ann_accuracy.csv", pd.DataFrame(self.ann))
        if self.calibration:
            write_csv(self.out / "calibration_seconds.csv", pd.DataFrame(self.calibration))
        if self.rows:
            ann = {r["arch"]: r["accuracy"] for r in self.ann}
            write_text(self.out / "methods_table.md", markdown_table(self.frame(), ann))


def markdown_table(frame: pd.DataFrame, ann: dict[str, float]) -> str:
    lines = []
    steps = [t for t in STEPS if t <= frame["timesteps"].max() and t in set(frame["timesteps"])]
    header = "| arch | method | ANN | " + " | ".join(f"T={t}" for t in steps) + " |"
    lines += [header, "|" + "---|" * (3 + len(steps))]
    for (arch, method), part in frame.groupby(["arch", "method"], sort=False):
        acc = part.set_index("timesteps")["accuracy"]
        cells = " | ".join(f"{100 * acc[t]:.2f}" if t in acc.index else "-" for t in steps)
        reference = f"{100 * ann[arch]:.2f}" if arch in ann else "-"
        lines.append(f"| {arch} | {method} | {reference} | {cells} |")
    return "\n".join(lines) + "\n"


def parse_widths(text: str) -> dict[str, float]:
    """``"cnn=1,vgg11=0.25"`` -> {arch: width}; a clear error for a malformed item."""
    widths = {}
    for item in filter(None, text.split(",")):
        arch, sep, value = item.partition("=")
        try:
            widths[arch] = float(value)
        except ValueError:
            raise SystemExit(f"--widths {item!r}: expected ARCH=WIDTH, e.g. vgg11=0.25") from None
        if not sep or widths[arch] <= 0:
            raise SystemExit(f"--widths {item!r}: expected ARCH=WIDTH with WIDTH > 0")
    return widths


def ann_cache_path(args: argparse.Namespace, arch: str, width: float) -> Path | None:
    """Where ``--ann-cache`` keeps this ANN: its name records arch, width, epochs, training
    subset and seed, so a cached ANN is reused only for the recipe that trained it."""
    if not args.ann_cache:
        return None
    subset = f"-n{args.train_limit}" if args.train_limit else ""
    name = f"{arch.replace(':', '-')}-w{width:g}-e{args.epochs}{subset}-s{args.seed}.pt"
    return Path(args.ann_cache) / name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default="/work/shared/data/mnist")
    p.add_argument("--archs", default=",".join(ARCHS))
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-limit", type=int, default=None, help="training samples used")
    p.add_argument("--limit", type=int, default=None, help="test samples evaluated")
    p.add_argument("--width", type=float, default=0.5)
    p.add_argument(
        "--widths", default="",
        help="per-architecture widths overriding --width, e.g. cnn=1,vgg11=0.25,resnet20=0.5",
    )  # fmt: skip
    p.add_argument(
        "--train-only", action="store_true",
        help="train (or load) the ANNs, print their accuracy and stop (fills --ann-cache)",
    )  # fmt: skip
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
    p.add_argument(
        "--variants", default="",
        help=f"calibrated rows to run (default all): {', '.join(CALIBRATED_VARIANTS)}",
    )  # fmt: skip
    p.add_argument(
        "--resume", action="store_true",
        help="keep the rows already in --out and skip the cells they cover",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/methods")
    args = p.parse_args(argv)
    parse_variants(args.variants)  # a bad name fails before any training
    unknown = set(args.sj_recipes.split(",") if args.sj_recipes else []) - set(SJ_RECIPES)
    if unknown:
        raise SystemExit(f"--sj-recipes: unknown {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(SJ_RECIPES)}")  # fmt: skip
    out = output_dir(args.out)
    train_loader, test_loader = make_loaders(
        "mnist", args.data_root, 128, args.limit, args.seed, train_limit=args.train_limit
    )
    calib = calibration_loader(train_loader.dataset, args.calibration_samples, 128, args.seed)
    table = RowTable(out, args.resume)
    widths = parse_widths(args.widths)
    for arch in args.archs.split(","):
        start = time.perf_counter()
        name, _, variant = arch.partition(":")  # e.g. cnn:qcfs4 = cnn trained with QCFS, L = 4
        if variant and not variant.startswith("qcfs"):
            raise SystemExit(f"--archs {arch}: the only variant is ':qcfsL' (QCFS with L levels)")
        options = {"activation": "qcfs", "levels": int(variant[4:] or 4)} if variant else {}
        width = widths.get(arch, args.width)
        model = build_model(name, 10, 1, 28, width, **options)
        cached = ann_cache_path(args, arch, width)
        if cached is not None and cached.is_file():
            model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
        else:
            train_ann(model, train_loader, args.epochs, 1e-3, "cpu", args.seed)
            if cached is not None:
                save_torch(cached, model.state_dict())
        model.eval()
        ann = float(evaluate(model, test_loader).accuracy[0])
        print(f"{arch} (width {width}): ANN {100 * ann:.2f}% "
              f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
        if args.train_only:
            continue
        table.set_ann(arch, width, ann)
        skipped = convert_all(model, calib, test_loader, args, table)
        if not args.no_spikingjelly and not variant:  # SpikingJelly converts ReLU networks
            recipes = args.sj_recipes.split(",") if args.sj_recipes else list(SJ_RECIPES)
            for recipe in recipes:
                if table.has(recipe, args.timesteps):
                    continue
                for sj_name, curve in spikingjelly_curves(
                    model, calib, test_loader, args.timesteps, [recipe]
                ).items():
                    table.add([("spikingjelly", sj_name, t, a) for t, a in enumerate(curve, 1)])
        frame = table.frame()
        frame = frame[frame["arch"] == arch]
        fig = latency_accuracy_figure(
            frame.drop(columns="arch"), ann, f"{arch} (width {width}) on MNIST"
        )
        save_figure(Path(out) / f"latency_accuracy_{arch.replace(':', '-')}.png", fig)
        print(f"{arch}: done ({time.perf_counter() - start:.0f} s)", flush=True)
        for method, why in skipped.items():
            print(f"  skipped {method}: {why}")
    if not args.train_only:
        print(markdown_table(table.frame(), {r["arch"]: r["accuracy"] for r in table.ann}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
