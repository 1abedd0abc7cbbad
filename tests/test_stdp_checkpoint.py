"""STDP-route checkpoints: saved after every phase, resumable, loaded without running code."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Subset

from spikebridge.stdp import config_for, train
from spikebridge.stdp.checkpoint import StdpCheckpointError, load_network, read_checkpoint


@pytest.fixture(scope="module")
def loader(digits_loaders):
    data = digits_loaders[0].dataset
    return DataLoader(Subset(data, list(range(256))), batch_size=64, shuffle=False)


def config(**overrides):
    small = dict(conv_channels=8, conv_winners=2, feature_channels=16, timesteps=6)
    return config_for("cnn", 1, 8, 10, **{**small, **overrides})


def test_checkpoint_round_trip_and_resume(loader, tmp_path):
    path = tmp_path / "checkpoint.pt"
    full = train(config(), loader, seed=1, progress=False, checkpoint_path=path)
    assert read_checkpoint(path)["phase_done"] == "readout"
    network, cfg, _ = load_network(path)
    x = next(iter(loader))[0]
    assert torch.equal(network.simulate(x, 6).readout, full.network.simulate(x, 6).readout)
    # resuming a finished run trains nothing and gives the same network
    again = train(cfg, loader, seed=1, progress=False, checkpoint_path=path, resume=True)
    assert [r["phase"] for r in again.history] == [r["phase"] for r in full.history]
    assert torch.equal(again.network.module.conv2.weight, full.network.module.conv2.weight)
    with pytest.raises(StdpCheckpointError, match="another configuration or seed"):
        train(cfg, loader, seed=2, progress=False, checkpoint_path=path, resume=True)


def test_foreign_files_are_named_errors(tmp_path):
    bad = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(StdpCheckpointError, match="other.pt: not an STDP-route checkpoint"):
        load_network(bad)
    with pytest.raises(StdpCheckpointError, match="no such checkpoint"):
        load_network(tmp_path / "missing.pt")
