"""``spikebridge compare --checkpoint FILE``: both routes on the user's own graph.

The conversion route converts the file's trained ANN; the direct route trains the same graph
(ReLU -> LIF, BatchNorm -> tdBN). A graph the direct route cannot train (leaky_relu) still gets
its conversion rows, with a note naming the node and why.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikebridge.cli import main
from spikebridge.training import train_ann

FAST = ["--methods", "channel", "--timesteps", "8", "--direct-epochs", "1"]
FAST += ["--direct-timesteps", "2", "--limit", "128", "--calibration-samples", "256", "--quiet"]


class SkipNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = F.avg_pool2d(torch.relu(self.conv(x) + x), 2)
        return self.head(x.flatten(1))


class LeakySkipNet(SkipNet):
    def forward(self, x):
        x = F.leaky_relu(self.bn(self.stem(x)), 0.1)
        x = F.avg_pool2d(torch.relu(self.conv(x) + x), 2)
        return self.head(x.flatten(1))


def _export(cls, digits_loaders, path):
    torch.manual_seed(0)
    model = cls()
    train_ann(model, digits_loaders[0], epochs=2, lr=1e-2, seed=0)
    torch.export.save(torch.export.export(model.eval(), (torch.rand(2, 1, 8, 8),)), path)
    return path


@pytest.mark.slow
def test_compare_runs_both_routes_on_the_users_graph(digits_loaders, tmp_path):
    path = _export(SkipNet, digits_loaders, tmp_path / "skip.pt2")
    out = tmp_path / "cmp"
    assert main(["compare", "--checkpoint", str(path), *FAST, "--out", str(out)]) == 0
    accuracy = pd.read_csv(out / "accuracy_vs_timesteps.csv")
    assert set(accuracy["route"]) == {"conversion", "direct"}
    energy = pd.read_csv(out / "energy.csv")
    assert len(energy) == 4  # the ANN, channel, stbp-tdbn, the quantised ANN at their T
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["checkpoint"] == str(path)
    assert len(results["settings"]["checkpoint_sha256"]) == 64
    assert any("not trained here" in n for n in results["notes"])
    assert "skip.pt2 on digits" in (out / "report.html").read_text()
    # the same command again reuses the direct SNN trained on the same file
    assert main(["compare", "--checkpoint", str(path), *FAST, "--out", str(out)]) == 0
    notes = json.loads((out / "results.json").read_text())["notes"]
    assert any("direct SNN was loaded from checkpoints/direct.pt" in n for n in notes)


@pytest.mark.slow
def test_graph_the_direct_route_cannot_train_keeps_its_conversion_rows(digits_loaders, tmp_path):
    path = _export(LeakySkipNet, digits_loaders, tmp_path / "leaky.pt2")
    out = tmp_path / "cmp"
    assert main(["compare", "--checkpoint", str(path), *FAST, "--out", str(out)]) == 0
    accuracy = pd.read_csv(out / "accuracy_vs_timesteps.csv")
    assert set(accuracy["route"]) == {"conversion"}
    notes = json.loads((out / "results.json").read_text())["notes"]
    skipped = [n for n in notes if n.startswith("direct route skipped")]
    assert skipped and "leaky_relu" in skipped[0] and "non-negative spikes" in skipped[0]


def test_arch_with_a_graph_file_is_an_error(digits_loaders, tmp_path, capsys):
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(SkipNet().eval(), (torch.rand(2, 1, 8, 8),)), path)
    out = tmp_path / "cmp"
    code = main(["compare", "--checkpoint", str(path), "--arch", "cnn", *FAST, "--out", str(out)])
    assert code == 2
    assert "--arch" in capsys.readouterr().err
    assert not out.exists()


def test_the_file_defines_the_experiment_and_trust_does_not(tmp_path):
    """A re-run reuses DIR only for the same file content; --trust-checkpoint may change."""
    from spikebridge.compare.config import RUNTIME_KEYS, Settings

    assert "trust_checkpoint" in RUNTIME_KEYS and "checkpoint" not in RUNTIME_KEYS
    path = tmp_path / "net.pt2"
    path.write_bytes(b"one")
    first = Settings(checkpoint=str(path)).experiment()
    path.write_bytes(b"two")
    assert Settings(checkpoint=str(path)).experiment() != first
