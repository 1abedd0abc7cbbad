"""Runs a paper can cite: the same command gives the same files, training is reported honestly
(BatchNorm statistics, validation, history, weak networks flagged), tables in % and LaTeX,
converted networks in a weights-only format, ``--normalize``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from spikebridge.batchnorm import reestimate_batchnorm
from spikebridge.cli import main
from spikebridge.convert.experiment import run_conversion_experiment
from spikebridge.data import make_loaders, split_validation
from spikebridge.health import weak_network
from spikebridge.plots import firing_rate_figure
from spikebridge.settings import (
    ConversionSettings,
    ExperimentSettings,
    SimulationSettings,
    TrainingSettings,
)
from spikebridge.snn_files import load_snn
from spikebridge.tables import to_latex

TIMING = {"seconds", "train_seconds", "convert_seconds", "inference_seconds",
          "inference_ms_per_sample"}  # fmt: skip
"""The only columns two runs may differ in: wall times."""

SMALL = ["--dataset", "digits", "--width", "0.25", "--limit", "64", "--train-limit", "320",
         "--batch-size", "64", "--device", "cpu", "--quiet"]  # fmt: skip
CONVERT = ["convert", *SMALL, "--epochs", "1", "--methods", "channel", "--timesteps", "4",
           "--calibration-samples", "64"]  # fmt: skip
TRAIN = ["train", *SMALL, "--epochs", "1", "--direct-timesteps", "2"]
COMPARE = ["compare", *SMALL, "--epochs", "1", "--direct-epochs", "1", "--direct-timesteps", "2",
           "--stdp-epochs", "0", "--methods", "channel,calibrated", "--timesteps", "2",
           "--calibration-samples", "64", "--calibrated-samples", "32"]  # fmt: skip


def cells(path: Path) -> list[list[str]]:
    """The CSV's cells as written (text, not parsed numbers), timing columns left out."""
    rows = list(csv.reader(path.read_text().splitlines()))
    keep = [i for i, name in enumerate(rows[0]) if name not in TIMING]
    return [[row[i] for i in keep] for row in rows]


def run_twice(tmp_path: Path, name: str, argv: list[str]) -> tuple[Path, Path]:
    first, second = tmp_path / f"{name}1", tmp_path / f"{name}2"
    assert main([*argv, "--out", str(first)]) == 0
    assert main([*argv, "--out", str(second)]) == 0
    return first, second


def assert_same_tables(first: Path, second: Path) -> None:
    tables = sorted(p.name for p in first.glob("*.csv"))
    assert tables and tables == sorted(p.name for p in second.glob("*.csv"))
    for name in tables:
        assert cells(first / name) == cells(second / name), name


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """``compare`` run twice on digits (two conversion methods, calibrated one network per T,
    the direct route)."""
    return run_twice(tmp_path_factory.mktemp("compare"), "run", COMPARE)


def test_convert_twice_gives_the_same_tables(tmp_path):
    first, second = run_twice(tmp_path, "convert", CONVERT)
    assert_same_tables(first, second)
    assert {"accuracy_vs_timesteps.csv", "energy.csv", "history.csv"} <= {
        p.name for p in first.glob("*.csv")
    }


def test_train_twice_gives_the_same_tables(tmp_path):
    first, second = run_twice(tmp_path, "train", TRAIN)
    assert_same_tables(first, second)


def test_compare_twice_gives_the_same_tables(compared):
    assert_same_tables(*compared)


def test_two_epochs_on_digits_train_a_useful_ann():
    """The README's first command with --epochs 2: the BatchNorm statistics re-estimated after
    training make the ANN score what it learned (it was at 16-41 % before)."""
    done = run_conversion_experiment(
        ExperimentSettings(dataset="digits", device="cpu"), TrainingSettings(epochs=2),
        ConversionSettings(methods="max", calibration_samples=64),
        SimulationSettings(timesteps=1),
    )  # fmt: skip
    assert done.result.ann_accuracy >= 0.90
    assert not [w for w in done.warnings if w.startswith("the ANN")]  # not flagged as weak


def test_batchnorm_statistics_are_those_of_the_final_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3)).eval()
    x = torch.randn(40, 1, 6, 6)
    batches = [(x[:20], None), (x[20:], None)]
    reestimate_batchnorm(model, batches)
    features = model[0](x)
    assert torch.allclose(model[1].running_mean, features.mean((0, 2, 3)), atol=1e-5)
    assert model[1].momentum == 0.1 and not model.training


def test_validation_split_is_held_out_and_seeded():
    train, _ = make_loaders("digits", batch_size=64, seed=3)
    rest, held = split_validation(train, 0.1, seed=3)
    again, held_again = split_validation(train, 0.1, seed=3)
    assert len(held.dataset) == round(0.1 * len(train.dataset))
    assert len(rest.dataset) + len(held.dataset) == len(train.dataset)
    assert not set(rest.dataset.indices) & set(held.dataset.indices)
    assert held.dataset.indices == held_again.dataset.indices


def test_every_command_writes_its_training_history(tmp_path, compared):
    out = tmp_path / "convert"
    assert main([*CONVERT, "--epochs", "2", "--out", str(out)]) == 0
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [1, 2] and set(history["route"]) == {"ann"}
    assert history["validation_accuracy_pct"].between(0, 100).all()
    history = pd.read_csv(compared[0] / "history.csv")
    assert set(history["route"]) == {"ann", "direct"}
    assert {"train_accuracy_pct", "validation_accuracy_pct", "loss"} <= set(history.columns)
    assert "training history" in (compared[0] / "report.html").read_text()


def test_an_undertrained_network_is_flagged(tmp_path, capsys):
    out = tmp_path / "weak"
    assert main([*CONVERT, "--lr", "1e-7", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(WEAK: near chance)" in printed
    assert "warning: the ANN (cnn) is weak: test accuracy" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert any(w.startswith("the ANN (cnn) is weak") for w in summary["warnings"])


def test_weak_network_rules():
    assert weak_network(0.12, 10) == "near chance"
    assert weak_network(0.70, 10, train_accuracy=0.99) == "test far below training"
    assert weak_network(0.95, 10, train_accuracy=0.97) == ""
    assert weak_network(float("nan"), 10) == ""


def test_layers_tell_calibrated_networks_apart(compared):
    layers = pd.read_csv(compared[0] / "layers.csv", dtype={"layer": str})
    calibrated = layers[(layers["method"] == "calibrated") & (layers["kind"] == "neuron")]
    assert sorted(calibrated["network"].unique()) == ["calibrated-T1", "calibrated-T2"]
    for name, part in calibrated.groupby("network"):
        assert set(part["timesteps"]) == {int(name.rsplit("T", 1)[1])}
    channel = layers[(layers["method"] == "channel") & (layers["kind"] == "neuron")]
    assert len(calibrated) == 2 * len(channel)  # two networks of the same depth
    figure = firing_rate_figure(layers, 2)
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert [label for label in labels if "calibrated" in label] == [
        f"conversion: calibrated, T = {t}" for t in (1, 2)
    ]


def test_tables_are_in_percent_with_integer_steps_and_latex(compared):
    out = compared[0]
    energy = (out / "energy.csv").read_text().splitlines()
    assert "accuracy_pct" in energy[0].split(",")
    assert energy[1].startswith("ann,relu,,")  # the ANN has no T: empty, not NaN
    assert all(line.split(",")[2].isdigit() for line in energy[2:])  # 2, not 2.0
    for name in ("accuracy_vs_timesteps", "energy", "layers", "history"):
        latex = (out / f"{name}.tex").read_text()
        rows = len(pd.read_csv(out / f"{name}.csv"))
        assert latex.startswith("\\begin{tabular}") and "\\toprule" in latex
        body = latex.split("\\midrule\n")[1].split("\\bottomrule")[0]
        assert body.count("\\\\\n") == rows
    frame = pd.DataFrame({"method": ["a_b"], "accuracy_pct": [float("nan")]})
    assert "a\\_b & -- \\\\" in to_latex(frame)


def test_converted_networks_export_without_trust(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*CONVERT, "--save-pickle", "--out", str(out)]) == 0
    data = torch.load(out / "snn_channel.pt", weights_only=True)  # no code runs
    assert data["format"] == "spikebridge-snn" and data["method"] == "channel"
    pickled = torch.load(out / "snn_channel.pickle.pt", weights_only=False)
    rebuilt = load_snn(out / "snn_channel.pt")
    x = next(iter(make_loaders("digits", limit=32)[1]))[0]
    assert torch.equal(rebuilt.simulate(x, 4).readout, pickled.simulate(x, 4).readout)
    pytest.importorskip("nir")
    capsys.readouterr()
    assert main(["export", str(out / "snn_channel.pt"), str(tmp_path / "net.nir")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "net.nir").is_file()


def test_export_of_an_stdp_checkpoint_says_why_not(tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    torch.save({"format": "spikebridge-stdp", "version": 1}, path)
    assert main(["export", str(path), str(tmp_path / "x.nir"), "--dataset", "digits"]) == 2
    assert "winner-take-all" in capsys.readouterr().err
    code = main(["train", "--route", "stdp", "--export-nir", "--out", str(tmp_path / "s")])
    assert code == 2 and "have no NIR node" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_normalize_changes_every_input_as_stated(tmp_path, capsys):
    plain = next(iter(make_loaders("digits", limit=16)[1]))[0]
    normal = next(iter(make_loaders("digits", limit=16, normalize="0.25,0.5")[1]))[0]
    assert torch.allclose(normal, (plain - 0.25) / 0.5)
    out = tmp_path / "norm"
    assert main([*CONVERT, "--normalize", "0.25,0.5", "--out", str(out)]) == 0
    assert json.loads((out / "run.json").read_text())["settings"]["normalize"] == "0.25,0.5"
    assert main([*CONVERT, "--normalize", "0.1,0.2,0.3,0.4", "--out", str(tmp_path / "b")]) == 2
    assert "the images have 1 channel(s)" in capsys.readouterr().err


def test_a_failed_run_can_be_retried_without_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*CONVERT, "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert main([*CONVERT, "--timesteps", "3", "--out", str(out)]) == 2  # finished: its results
    assert "holds the results of a different experiment" in capsys.readouterr().err
    (out / "run.json").write_text(json.dumps({**record, "status": "failed"}))
    assert main([*CONVERT, "--timesteps", "3", "--out", str(out)]) == 0  # failed: retried
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert pd.read_csv(out / "accuracy_vs_timesteps.csv")["timesteps"].max() == 3


def test_a_method_that_cannot_apply_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*CONVERT, "--methods", "qcfs", "--epochs", "50", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "method 'qcfs' needs an ANN trained with QCFS activations" in err
    assert "ReLU" in err and not out.exists()


def test_every_option_of_every_command_has_a_help_text(capsys):
    from spikebridge.cli import build_parser

    parser = build_parser()
    commands = {"spikebridge": parser}
    for action in parser._actions:
        if hasattr(action, "choices") and isinstance(action.choices, dict):
            commands.update({f"spikebridge {n}": p for n, p in action.choices.items()})
    assert {"spikebridge convert", "spikebridge train", "spikebridge compare",
            "spikebridge demo", "spikebridge export"} <= set(commands)  # fmt: skip
    for name, command in commands.items():
        for action in command._actions:
            if action.option_strings:
                assert action.help and action.help.strip(), f"{name} {action.option_strings[0]}"
                assert action.help.count("(default") <= 1, f"{name} {action.option_strings[0]}"
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("spikebridge ")


def test_one_epoch_of_direct_training_is_scored_with_its_own_statistics():
    """tdBN's running statistics are re-estimated after every epoch: one epoch on digits scored
    9.7 % on the test set with the moving averages, and scores what it learned now."""
    from spikebridge.direct import train_direct

    train, test = make_loaders("digits", batch_size=128, seed=0)
    result = train_direct("cnn", train, test, timesteps=4, epochs=1, device="cpu",
                          num_classes=10, in_channels=1, image_size=8)  # fmt: skip
    assert result.history[-1]["test_accuracy"] > 0.8
