"""The STDP route writes the same files as the direct route."""

from __future__ import annotations

import json

import pandas as pd
from torch.utils.data import DataLoader, Subset

from spikebridge.stdp import config_for
from spikebridge.stdp.run import train_to_directory


def test_outputs_match_the_direct_route(digits_loaders, tmp_path):
    train_loader = DataLoader(Subset(digits_loaders[0].dataset, range(256)), 64)
    test_loader = DataLoader(Subset(digits_loaders[1].dataset, range(100)), 50)
    config = config_for(
        "cnn", 1, 8, 10, conv_channels=8, conv_winners=2, feature_channels=16, timesteps=6
    )
    lines: list[str] = []
    _, summary = train_to_directory(
        config, train_loader, test_loader, tmp_path, seed=0, progress=False, log=lines.append
    )
    files = {p.name for p in tmp_path.iterdir()}
    assert {"checkpoint.pt", "history.csv", "accuracy_vs_timesteps.csv", "summary.json"} <= files
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history["phase"]) == ["autoencoder", "stdp", "readout"]
    curve = pd.read_csv(tmp_path / "accuracy_vs_timesteps.csv")
    assert list(curve["timesteps"]) == list(range(1, 7))
    assert set(curve["route"]) == {"stdp"}
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["test_accuracy"] == summary["test_accuracy"]
    assert abs(100 * summary["test_accuracy"] - curve["accuracy_pct"].iloc[-1]) < 1e-9
    assert len(lines) == 3 and lines[0].startswith("autoencoder (conv1) epoch 1")


def test_cli_train_route_stdp(tmp_path, capsys):
    from spikebridge.cli import main

    out = tmp_path / "run"
    args = ["train", "--route", "stdp", "--train-limit", "192", "--limit", "60"]
    args += ["--stdp-conv-channels", "8", "--stdp-feature-channels", "16"]
    assert main([*args, "--stdp-timesteps", "6", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "stdp (conv2) epoch 1" in printed and "test accuracy at T=6" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["route"] == "stdp" and summary["test_samples"] == 60
    # a resumed run reuses the finished checkpoint and gives the same accuracy
    assert main([*args, "--stdp-timesteps", "6", "--out", str(out), "--resume"]) == 0
    assert (
        json.loads((out / "summary.json").read_text())["test_accuracy"] == summary["test_accuracy"]
    )
    # the finished run is neither replaced by a fresh run nor resumed with another T
    before = (out / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main([*args, "--stdp-timesteps", "6", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*args, "--stdp-timesteps", "8", "--out", str(out), "--resume"]) == 2
    assert "--stdp-timesteps: 6 in the run being resumed, 8 now" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == before
    bad = tmp_path / "bad"
    assert main(["train", "--route", "stdp", "--arch", "resnet20", "--out", str(bad)]) == 2
    assert "does not support architecture 'resnet20'" in capsys.readouterr().err
    assert not bad.exists()
