"""The energy models' side of ``energy.csv`` (docs/energy.md): one ``energy_<model>_pJ``
column per model of :mod:`spikebridge.energy` on the rows of :mod:`spikebridge.energy.table`,
the quantised-ANN rows (the ceil(log2(T+1))-bit ANN of each T, Yan 2024; a calibrated network's
own twin), the break-even firing rates, the per network/layer/component breakdown, and the
tables of commands that make their networks outside a comparison (``convert``, ``train``)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ..evaluation import Evaluation
from ..labels import base_method
from .table import E_AC_PJ, E_MAC_PJ, ann_energy_row, energy_frame, energy_pj, snn_energy_row

BREAKDOWN_COLUMNS = [
    "route", "method", "timesteps", "model", "layer", "module", "kind", "component", "energy_pJ",
]  # fmt: skip
QUANTISED_ROUTE = "ann-quantised"


def model_column(model: str) -> str:
    return f"energy_{model}_pJ"


class EnergyBook:
    """The energy models' columns of a comparison's ``energy.csv``, its quantised-ANN rows, the
    break-even columns and the per network/layer/component breakdown.

    Usage (the pipeline): :meth:`ann` on the ANN's row, :meth:`snn` on every spiking network's
    row (while its network exists), then :meth:`finish` for the quantised-ANN rows, which also
    fills the break-even columns of the spiking rows.

    Args:
        models: energy model names (:func:`spikebridge.energy.energy_model_names`).
        ctx: the comparison (ANN, data, device); None when only pricing rows.
    """

    def __init__(self, models: Sequence[str], ctx=None) -> None:
        self.models = list(models)
        self.ctx = ctx
        self.parts: list[pd.DataFrame] = []
        self._float_row: dict | None = None
        self._spiking: list[tuple[dict, object]] = []
        self._quantised: dict[int, dict] = {}
        self._twins: list[dict] = []

    def _price(self, row: dict, counts, timesteps: float) -> None:
        from ..energy import price

        for m in self.models:
            report = price(m, counts)
            row[model_column(m)] = report.total_pj
            table = report.layers.assign(
                route=row["route"], method=row["method"], timesteps=timesteps, model=m
            )
            self.parts.append(table[BREAKDOWN_COLUMNS])

    def ann(self, row: dict, ev: Evaluation) -> dict:
        """Add the models' columns to the float ANN's row."""
        from ..energy import ann_counts

        self._price(row, ann_counts(ev), float("nan"))
        self._float_row = row
        return row

    def snn(self, row: dict, ev: Evaluation, network=None) -> dict:
        """Add the models' columns to a spiking network's row; a ``calibrated`` network also
        gets its quantised twin's row (the ANN it was calibrated on)."""
        from ..energy import snn_counts

        counts = snn_counts(ev, network)
        self._price(row, counts, ev.timesteps)
        self._spiking.append((row, counts))
        if (
            self.ctx is not None
            and base_method(row["method"]) == "calibrated"
            and network is not None
        ):
            from ..energy import network_twin

            levels = ev.timesteps * ev.spike_levels  # graded: K*T levels
            try:
                twin = network_twin(network, ev.timesteps)
            except ValueError as err:
                self.ctx.notes.append(f"no quantised twin of {row['method']}: {err}")
            else:
                # "calibrated+ft300-K4 twin (4-bit)": the twin keeps its network's label
                label = f"{row['method']} twin ({activation_bits_label(levels)})"
                self._twins.append(self._quantised_row(twin, label, levels))
        return row

    def _quantised_row(self, model, method: str, timesteps: int) -> dict:
        from ..energy import activation_bits, ann_counts
        from ..evaluation import evaluate

        ctx = self.ctx
        ev = evaluate(model, ctx.test_loader, count_ops=True, device=ctx.device)
        row = ann_energy_row(method, ev, ctx.settings.e_mac, ctx.settings.e_ac)
        bits = activation_bits(timesteps)
        counts = ann_counts(ev, bits)
        row.update(route=QUANTISED_ROUTE, timesteps=timesteps)
        row["energy_pJ"] = float(energy_pj(row["macs"] * bits / 32, row["adds"],
                                           ctx.settings.e_mac, ctx.settings.e_ac))  # fmt: skip
        self._price(row, counts, timesteps)
        return row

    def finish(self) -> list[dict]:
        """The quantised-ANN rows (one per T of the spiking networks, then the calibrated
        twins) and the break-even columns of every spiking row."""
        from ..convert import convert_model
        from ..data import calibration_loader
        from ..energy import network_twin

        rows: list[dict] = []
        ctx = self.ctx
        if ctx is not None and ctx.ann is not None and self._spiking:
            s = ctx.settings
            calib = calibration_loader(
                ctx.train_loader.dataset, s.calibration_samples, s.batch_size, s.seed
            )
            try:  # the percentile thresholds, once: quantised_ann's at every T
                base = convert_model(ctx.ann, calib, "percentile", device=ctx.device)
                network_twin(base, 1)  # e.g. signed (LeakyReLU) neurons have no T-level twin
            except Exception as err:  # an ANN the converter refuses has no quantised twin
                ctx.notes.append(f"no quantised ANN: {err}")
                base = None
            for t in sorted({int(r["timesteps"]) for r, _ in self._spiking}):
                if base is None:
                    break
                q = network_twin(base, t, initial_potential=0.5)
                self._quantised[t] = self._quantised_row(q, activation_bits_label(t), t)
                rows.append(self._quantised[t])
        rows += self._twins
        for row, counts in self._spiking:
            row.update(self._break_even(counts, row))
        if self._float_row is not None:
            ann = self._float_row
            for row in [*rows, *(r for r, _ in self._spiking)]:
                row["energy_vs_ann"] = (
                    row["energy_pJ"] / ann["energy_pJ"] if ann["energy_pJ"] else float("nan")
                )
        return rows

    def _break_even(self, counts, row: dict) -> dict:
        from ..energy import break_even

        out: dict[str, float] = {}
        competitors = {
            "": self._float_row,
            "_quantised": self._quantised.get(int(row["timesteps"])),
        }
        for m in self.models:
            for suffix, ann in competitors.items():
                ann_pj = ann.get(model_column(m)) if ann is not None else None
                if ann_pj is None:
                    out[f"breakeven_rate_{m}{suffix}"] = float("nan")
                    out[f"breakeven_per_synapse_{m}{suffix}"] = float("nan")
                    continue
                be = break_even(m, counts, ann_pj)
                out[f"breakeven_rate_{m}{suffix}"] = be.rate
                out[f"breakeven_per_synapse_{m}{suffix}"] = be.per_synapse
        return out

    def breakdown(self) -> pd.DataFrame:
        """route, method, timesteps, model, layer, module, kind, component, energy_pJ."""
        if not self.parts:
            return pd.DataFrame(columns=BREAKDOWN_COLUMNS)
        return pd.concat(self.parts, ignore_index=True)


def model_columns(energy: pd.DataFrame) -> list[str]:
    """The ``energy_<model>_pJ`` columns of an energy table (not the plain ``energy_pJ``)."""
    return [
        c
        for c in energy.columns
        if c.startswith("energy_") and c.endswith("_pJ") and c != "energy_pJ"
    ]


def activation_bits_label(timesteps: int) -> str:
    from ..energy import activation_bits

    return f"{activation_bits(timesteps)}-bit"


def beats_sentences(energy: pd.DataFrame) -> list[str]:
    """One sentence per energy model: which spiking networks use less energy than which ANN."""
    columns = model_columns(energy)
    snn = energy[~energy["route"].isin(["ann", QUANTISED_ROUTE])]
    anns = energy[energy["route"].isin(["ann", QUANTISED_ROUTE])]
    sentences = []
    for col in columns:
        model = col[len("energy_") : -len("_pJ")]
        parts = []
        for a in anns.itertuples(index=False):
            ann_pj = getattr(a, col)
            rows = snn if a.route == "ann" else snn[snn["timesteps"] == a.timesteps]
            if not len(rows):
                continue
            winners = [f"{r.route} {r.method} (T={int(r.timesteps)})"
                       for r in rows.itertuples(index=False) if getattr(r, col) < ann_pj]  # fmt: skip
            what = (
                "the float ANN"
                if a.route == "ann"
                else f"the {a.method} ANN at T={int(a.timesteps)}"
            )
            parts.append(f"{', '.join(winners) if winners else 'no spiking network'} "
                         f"{'use' if len(winners) > 1 else 'uses'} less energy than {what}")  # fmt: skip
        if parts:
            sentences.append(f"Under {model}: " + "; ".join(parts) + ".")
    return sentences


def energy_tables(
    ann,
    networks: Sequence[tuple[str, str, object, int]],
    test_loader,
    calibration_dataset,
    *,
    models: str | Sequence[str] = "all",
    calibration_samples: int = 512,
    batch_size: int = 128,
    seed: int = 0,
    e_mac: float = E_MAC_PJ,
    e_ac: float = E_AC_PJ,
    device="cpu",
    ann_method: str = "relu",
    ann_evaluation: Evaluation | None = None,
    evaluations: Sequence[Evaluation | None] | None = None,
    train_seconds: Sequence[float] | None = None,
    convert_seconds: Sequence[float] | None = None,
    ann_train_seconds: float = float("nan"),
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """``energy.csv``, ``energy_breakdown.csv`` and notes for networks made outside a comparison
    (what ``spikebridge convert`` and ``train`` write): the ANN's row, one row per
    (route, method, network, T) of ``networks`` evaluated on ``test_loader`` at T, the
    quantised-ANN rows (calibrated on ``calibration_dataset``) and the break-even columns.
    ``ann`` None (``spikebridge train``: no ANN): the spiking rows alone, no quantised ANN.

    Evaluations with counted operations already made (``ann_evaluation``, ``evaluations[i]``
    for ``networks[i]``) are used as they are; the others are run here. ``train_seconds`` /
    ``convert_seconds`` (per network) and ``ann_train_seconds`` fill the cost columns."""
    from types import SimpleNamespace

    from ..energy import energy_model_names
    from ..evaluation import evaluate

    settings = SimpleNamespace(e_mac=e_mac, e_ac=e_ac, calibration_samples=calibration_samples,
                               batch_size=batch_size, seed=seed)  # fmt: skip
    ctx = SimpleNamespace(
        settings=settings, test_loader=test_loader, device=device, ann=ann, notes=[],
        train_loader=SimpleNamespace(dataset=calibration_dataset),
    )  # fmt: skip
    book = EnergyBook(energy_model_names(models), ctx)
    rows: list[dict] = []
    if ann is not None:
        ann_ev = ann_evaluation or evaluate(ann, test_loader, count_ops=True, device=device)
        row = ann_energy_row(ann_method, ann_ev, e_mac, e_ac, ann_train_seconds)
        rows.append(book.ann(row, ann_ev))
    ann_pj = rows[0]["energy_pJ"] if rows else None
    nan = float("nan")
    for i, (route, method, network, timesteps) in enumerate(networks):
        ev = evaluations[i] if evaluations is not None else None
        if ev is None:
            ev = evaluate(network, test_loader, timesteps, count_ops=True, device=device)
        row = snn_energy_row(
            route, method, ev, e_mac, e_ac, ann_pj,
            train_seconds[i] if train_seconds is not None else nan,
            convert_seconds[i] if convert_seconds is not None else nan,
        )  # fmt: skip
        rows.append(book.snn(row, ev, network))
    rows += book.finish()
    return energy_frame(rows), book.breakdown(), ctx.notes


def write_network_energy(
    out,
    route: str,
    method: str,
    network,
    timesteps: int,
    test_loader,
    simulation,
    device="cpu",
    *,
    evaluation: Evaluation | None = None,
    train_seconds: float = float("nan"),
) -> list:
    """``energy.csv`` (one spiking network at its T, a column per energy model of
    ``simulation.energy_models``, accuracy in %) and ``energy_breakdown.csv`` in ``out``, each
    with its LaTeX twin, for a command that trains one network (``spikebridge train``: no ANN,
    so no quantised-ANN rows; ``spikebridge compare`` has them). Returns the paths written."""
    from pathlib import Path

    from ..tables import percent, write_table

    energy, breakdown, _ = energy_tables(
        None, [(route, method, network, timesteps)], test_loader, None,
        models=simulation.energy_models, e_mac=simulation.e_mac, e_ac=simulation.e_ac,
        device=device, evaluations=[evaluation], train_seconds=[train_seconds],
    )  # fmt: skip
    paths = write_table(Path(out) / "energy.csv", percent(energy, ["accuracy"]))
    if len(breakdown):
        paths += write_table(Path(out) / "energy_breakdown.csv", breakdown)
    return paths


__all__ = [
    "BREAKDOWN_COLUMNS",
    "EnergyBook",
    "QUANTISED_ROUTE",
    "activation_bits_label",
    "beats_sentences",
    "energy_tables",
    "model_column",
    "model_columns",
    "write_network_energy",
]
