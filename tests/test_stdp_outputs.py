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
    assert written["test_accuracy"] == summary["test_accuracy"] == curve["accuracy"].iloc[-1]
    assert len(lines) == 3 and lines[0].startswith("autoencoder (conv1) epoch 1")
