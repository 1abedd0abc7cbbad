"""`spikebridge convert`: the files it writes, and clear errors with nothing half-written."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from spikebridge.cli import main
from spikebridge.models import build_model
from spikebridge.snn_files import load_snn

FAST = [
    "--dataset",
    "digits",
    "--width",
    "0.25",
    "--timesteps",
    "8",
    "--limit",
    "64",
    "--quiet",
    "--calibration-samples",
    "128",
]


def test_convert_writes_csv_summary_networks_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["convert", *FAST, "--train-epochs", "1", "--method", "max,channel", "--out", str(out)]
    )
    assert code == 0
    frame = pd.read_csv(out / "accuracy_vs_timesteps.csv")
    assert list(frame.columns) == ["route", "method", "timesteps", "accuracy_pct", "finetune_steps"]
    assert set(frame["finetune_steps"]) == {0}  # post-training only: nothing retrained
    assert set(frame["route"]) == {"conversion"} and set(frame["method"]) == {"max", "channel"}
    assert sorted(frame["timesteps"].unique()) == list(range(1, 9))
    assert frame["accuracy_pct"].between(0, 100).all()
    summary = json.loads((out / "summary.json").read_text())
    for key in ("dataset", "arch", "ann_accuracy", "timesteps", "methods", "seconds", "notes"):
        assert key in summary
    assert (out / "latency_accuracy.png").stat().st_size > 1000
    assert (out / "snn_max.pt").exists() and (out / "snn_channel.pt").exists()
    assert not list(out.glob(".*tmp"))
    assert "SNN accuracy" in capsys.readouterr().out


def test_initial_potential_flag_reaches_every_neuron(tmp_path):
    """``--initial-potential 0.5`` starts each IF neuron at theta/2 (Bu 2022) and is recorded."""
    from spikebridge.engine.neurons import IFNeuron

    out = tmp_path / "half"
    args = ["convert", *FAST, "--method", "max", "--initial-potential", "0.5", "--out", str(out)]
    assert main(args) == 0
    assert json.loads((out / "summary.json").read_text())["initial_potential"] == 0.5
    snn = load_snn(out / "snn_max.pt")
    neurons = [m for m in snn.modules() if isinstance(m, IFNeuron)]
    assert neurons and all(m.initial_potential == 0.5 for m in neurons)


def test_output_directory_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("not a directory")
    assert main(["convert", *FAST, "--out", str(target)]) == 2
    assert "is an existing file" in capsys.readouterr().err


def test_missing_data_root_names_the_directory(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    code = main(
        ["convert", "--dataset", "mnist", "--data-root", str(missing), "--out", str(tmp_path / "o")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "train-images-idx3-ubyte" in err
    assert not (tmp_path / "o").exists()  # a failed run leaves no output directory behind


def test_checkpoint_that_does_not_match_the_architecture(tmp_path, capsys):
    ckpt = tmp_path / "wrong.pt"
    torch.save(build_model("cnn", 10, 1, 8, width=0.5).state_dict(), ckpt)
    out = tmp_path / "o"
    code = main(["convert", *FAST, "--checkpoint", str(ckpt), "--out", str(out)])
    assert code == 2
    assert "does not match the architecture" in capsys.readouterr().err
    assert not out.exists()


def test_checkpoint_state_dict_round_trip(tmp_path):
    model = build_model("cnn", 10, 1, 8, width=0.25)
    ckpt = tmp_path / "ann.pt"
    torch.save(model.state_dict(), ckpt)
    out = tmp_path / "o"
    assert (
        main(["convert", *FAST, "--checkpoint", str(ckpt), "--method", "max", "--out", str(out)])
        == 0
    )
    assert (out / "snn_max.pt").exists()


def test_a_runs_own_ann_file_is_a_checkpoint(tmp_path):
    """The ann.pt convert writes (weights and the architecture's record, weights-only) converts
    again without training and without --trust-checkpoint: the same ANN accuracy."""
    first = tmp_path / "first"
    assert main(["convert", *FAST, "--method", "max", "--out", str(first)]) == 0
    again = tmp_path / "again"
    argv = ["convert", *FAST, "--epochs", "0", "--checkpoint", str(first / "ann.pt")]
    assert main([*argv, "--method", "max", "--out", str(again)]) == 0
    accuracy = [
        json.loads((d / "summary.json").read_text())["ann_accuracy"] for d in (first, again)
    ]
    assert accuracy[0] == accuracy[1]


def test_pickled_module_needs_trust(tmp_path, capsys):
    ckpt = tmp_path / "whole.pt"
    torch.save(build_model("cnn", 10, 1, 8, width=0.25), ckpt)
    assert main(["convert", *FAST, "--checkpoint", str(ckpt), "--out", str(tmp_path / "a")]) == 2
    assert "--trust-checkpoint" in capsys.readouterr().err
    code = main(
        [
            "convert",
            *FAST,
            "--checkpoint",
            str(ckpt),
            "--trust-checkpoint",
            "--method",
            "max",
            "--out",
            str(tmp_path / "b"),
        ]
    )
    assert code == 0


def test_torch_export_program_is_accepted(tmp_path, capsys):
    """A .pt2 carries its graph: no --arch (or --width) is needed, and one given is an error."""
    model = build_model("cnn", 10, 1, 8, width=0.25).eval()
    program = torch.export.export(model, (torch.rand(2, 1, 8, 8),))
    path = tmp_path / "ann.pt2"
    torch.export.save(program, str(path))
    no_width = [a for a in FAST if a not in ("--width", "0.25")]
    out = tmp_path / "o"
    args = ["convert", *no_width, "--checkpoint", str(path), "--method", "max"]
    assert main([*args, "--out", str(out)]) == 0
    assert main([*args, "--arch", "cnn", "--out", str(tmp_path / "x")]) == 2
    assert "--arch" in capsys.readouterr().err


def test_event_data_is_refused_by_the_conversion_route(tmp_path, capsys):
    assert main(["convert", "--dataset", "nmnist", "--out", str(tmp_path / "o")]) == 2
    assert "event data" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-4"])
def test_nonpositive_timesteps_rejected_by_the_cli(value, capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--timesteps", value])
    assert "positive integer" in capsys.readouterr().err
