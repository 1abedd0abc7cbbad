"""The comparison experiment end to end on digits: tables, files, reuse of checkpoints, refusal of
another experiment's directory, methods that do not apply, and the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from spikebridge.cli import main
from spikebridge.compare import RESULT_FILES, ann, run
from spikebridge.compare.routes import direct as direct_route
from spikebridge.compare.routes import stdp as stdp_route

TINY = dict(
    epochs=2,
    direct_epochs=1,
    direct_timesteps=2,
    timesteps=8,
    width=0.25,
    limit=32,
    train_limit=128,
    calibration_samples=64,
    batch_size=32,
    device="cpu",
)
METHODS = "model,max,percentile,qcfs"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "run"
    result = run("cnn", "digits", methods=METHODS, out=out, **TINY)
    return out, result


def snapshot(out):
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def copy_of(first_run, tmp_path):
    out, _ = first_run
    target = tmp_path / "run"
    shutil.copytree(out, target)
    return target


def test_tables_cover_every_network_and_step(first_run):
    out, result = first_run
    acc = result.accuracy
    networks = set(zip(acc["route"], acc["method"]))
    assert networks == {
        ("conversion", "model"),
        ("conversion", "max"),
        ("conversion", "percentile"),
        ("direct", "stbp-tdbn"),
        ("stdp", "ae-stdp"),  # on for cnn (Tavanaei & Maida 2017)
    }
    for _, rows in acc.groupby(["route", "method"]):
        assert rows["timesteps"].tolist() == list(range(1, 9))
        assert rows["energy_pJ"].is_monotonic_increasing  # cumulative cost to step t
        assert rows["accuracy"].between(0, 1).all()
    energy = result.energy
    assert energy.iloc[0]["route"] == "ann" and energy.iloc[0]["macs"] > 0
    snn = energy[~energy["route"].isin(["ann", "ann-quantised"])]
    assert (snn["timesteps"] == 8).all() and (snn["sops"] > 0).all()
    # energy = E_MAC x analog MACs + E_AC x SOPs, with the defaults of SPEC 3.2
    assert (
        snn["energy_pJ"] - (4.6 * snn["macs"] + 0.9 * (snn["sops"] + snn["adds"]))
    ).abs().max() < 1e-6 * snn["energy_pJ"].max()
    # the energy row at T agrees with the last step of the curve
    last = acc[acc["timesteps"] == 8].set_index(["route", "method"])["energy_pJ"]
    for row in snn.itertuples():
        assert row.energy_pJ == pytest.approx(last[(row.route, row.method)])
    layers = result.layers
    rates = layers[layers["kind"] == "neuron"]["firing_rate"]
    assert len(rates) > 0 and rates.between(0, 1).all()
    assert (layers[(layers["route"] == "ann")]["macs"].sum()) == pytest.approx(
        energy.iloc[0]["macs"]
    )


def test_files_are_written_and_match_the_returned_tables(first_run):
    out, result = first_run
    for name in RESULT_FILES:
        assert (out / name).is_file(), name
    assert (out / "experiment.json").is_file()
    assert (out / "checkpoints" / "ann.pt").is_file() and (
        out / "checkpoints" / "direct.pt"
    ).is_file()
    csv = pd.read_csv(out / "accuracy_vs_timesteps.csv")
    expected = result.accuracy.assign(accuracy=100 * result.accuracy["accuracy"])
    pd.testing.assert_frame_equal(
        csv, expected.rename(columns={"accuracy": "accuracy_pct"}), check_dtype=False
    )
    assert (out / "accuracy_vs_timesteps.tex").read_text().startswith("\\begin{tabular}")
    assert not [p for p in out.rglob("*.tmp")]
    assert (out / "latency_accuracy.svg").read_text().lstrip().startswith("<?xml")
    assert (out / "energy_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_method_that_does_not_apply_is_reported_and_the_rest_run(first_run):
    _, result = first_run
    notes = [n for n in result.notes if "qcfs" in n]
    assert notes and "does not apply" in notes[0] and "QCFS" in notes[0]
    assert "qcfs" not in set(result.accuracy["method"])


def test_rerun_reuses_the_checkpoints_and_gives_the_same_tables(first_run, tmp_path, monkeypatch):
    out = copy_of(first_run, tmp_path)
    checkpoints = {p.name: p.read_bytes() for p in (out / "checkpoints").iterdir()}

    def no_training(*args, **kwargs):
        raise AssertionError("a re-run must not train again")

    monkeypatch.setattr(ann, "train_ann", no_training)
    monkeypatch.setattr(direct_route, "train_direct", no_training)
    again = run("cnn", "digits", methods=METHODS, out=out, **TINY)
    _, first = first_run
    pd.testing.assert_frame_equal(again.accuracy, first.accuracy)
    assert any("loaded from checkpoints/ann.pt" in n for n in again.notes)
    assert any("loaded from checkpoints/direct.pt" in n for n in again.notes)
    assert {p.name: p.read_bytes() for p in (out / "checkpoints").iterdir()} == checkpoints
    # training times are those of the original training, kept in the checkpoints
    cols = ["route", "method", "train_seconds"]
    pd.testing.assert_frame_equal(again.energy[cols], first.energy[cols])


def test_directory_of_another_experiment_is_refused_untouched(first_run, tmp_path, monkeypatch):
    out = copy_of(first_run, tmp_path)
    before = snapshot(out)
    with pytest.raises(
        FileExistsError, match=r"different experiment \(.*timesteps: 8 in DIR, 16 now"
    ):
        run("cnn", "digits", methods=METHODS, out=out, **{**TINY, "timesteps": 16})
    assert snapshot(out) == before

    # with overwrite it runs, keeping the checkpoints whose training settings still match
    monkeypatch.setattr(ann, "train_ann", lambda *a, **k: pytest.fail("ANN settings unchanged"))
    monkeypatch.setattr(
        direct_route, "train_direct", lambda *a, **k: pytest.fail("direct settings unchanged")
    )
    monkeypatch.setattr(
        stdp_route, "train_stdp_layers", lambda *a, **k: pytest.fail("stdp settings unchanged")
    )
    result = run(
        "cnn", "digits", methods="max", out=out, overwrite=True, **{**TINY, "timesteps": 16}
    )
    assert set(result.accuracy["method"]) == {"max", "stbp-tdbn", "ae-stdp"}
    assert result.accuracy["timesteps"].max() == 16
    assert pd.read_csv(out / "energy.csv")["method"].tolist() == [
        "relu",
        "max",
        "stbp-tdbn",
        "ae-stdp",
        "5-bit",  # the ANN quantised to ceil(log2(16 + 1)) bits (spikebridge.energy)
    ]


def test_changed_training_settings_retrain_under_overwrite(first_run, tmp_path, monkeypatch):
    out = copy_of(first_run, tmp_path)
    calls = []
    real = ann.train_ann

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(ann, "train_ann", counting)
    run(
        "cnn",
        "digits",
        methods="max",
        out=out,
        overwrite=True,
        **{**TINY, "epochs": 1, "direct_epochs": 0},
    )
    assert calls == [1]


def test_non_empty_directory_without_a_record_is_refused(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not empty"):
        run("cnn", "digits", out=tmp_path, **TINY)
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.tex"]


def test_a_bad_setting_fails_before_claiming_the_directory(tmp_path):
    with pytest.raises(ValueError, match="unknown architecture 'cnnx'"):
        run("cnnx", "digits", out=tmp_path / "x", **TINY)
    assert not (tmp_path / "x" / "experiment.json").exists()
    with pytest.raises(ValueError, match="timesteps must be a positive integer"):
        run("cnn", "digits", out=tmp_path / "y", **{**TINY, "timesteps": -3})
    assert not (tmp_path / "y").exists()


def test_event_dataset_is_refused_with_a_reason(tmp_path):
    with pytest.raises(ValueError, match="event data"):
        run("cnn", "nmnist", out=tmp_path / "x", **TINY)


def test_cli_reports_config_errors_and_refusals(first_run, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('arch = "cnn"\nepoch = 3\n')
    assert main(["compare", "--config", str(config), "--out", str(tmp_path / "o")]) == 2
    assert "line 2: unknown key 'epoch'" in capsys.readouterr().err
    out = copy_of(first_run, tmp_path)
    assert main(["compare", "--out", str(out), "--quiet", "--timesteps", "4"]) == 2
    assert "different experiment" in capsys.readouterr().err


def test_cli_runs_from_a_config_file(first_run, tmp_path, capsys):
    out = copy_of(first_run, tmp_path)
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in TINY.items()]
    config = tmp_path / "experiment.toml"
    config.write_text("\n".join([*lines, f'methods = "{METHODS}"', f'out = "{out}"']) + "\n")
    assert main(["compare", "--config", str(config), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "ANN accuracy" in printed and "direct: STBP-tdBN" in printed and "report.html" in printed


WORKER = """
import json, sys
from spikebridge.compare import run
run("cnn", "digits", out=sys.argv[1], **json.loads(sys.argv[2]))
"""


def test_two_processes_under_torchrun_give_the_same_tables(first_run, tmp_path):
    """Each process simulates half of the test batches; the summed counts equal one process's."""
    import json
    import os
    import subprocess
    import sys

    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available")
    out = copy_of(first_run, tmp_path)
    for name in RESULT_FILES:
        (out / name).unlink()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    root = str(Path(__file__).resolve().parents[1])  # the checkout under test, not an install
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(out), json.dumps({"methods": METHODS, **TINY})]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    first, single = first_run
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "accuracy_vs_timesteps.csv"),
        pd.read_csv(first / "accuracy_vs_timesteps.csv"),
    )
    layers = pd.read_csv(out / "layers.csv", dtype={"layer": str})
    pd.testing.assert_frame_equal(layers, pd.read_csv(first / "layers.csv", dtype={"layer": str}))
    timing = ["convert_seconds", "inference_seconds", "inference_ms_per_sample"]
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "energy.csv").drop(columns=timing),
        pd.read_csv(first / "energy.csv").drop(columns=timing),
    )
