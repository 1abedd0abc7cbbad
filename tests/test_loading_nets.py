"""A user's own CNNs, defined here (not by spikebridge), exported as .pt2 and ONNX files and
converted through the CLI with no --arch (``spikebridge convert --checkpoint FILE``): each within
1 point of its ANN at T = 64 on digits.

Four nets cover the operations users write: functional relu (``torch.relu``, ``F.relu``),
BatchNorm2d after conv, BatchNorm1d after linear, ``F.max_pool2d`` and dropout (FunctionalNet);
a residual join and global mean pooling (ResidualNet); ``torch.cat`` of two branches and adaptive
average pooling (BranchNet); leaky_relu, converted with signed neurons, and ``x.view`` (LeakyNet).
"""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikebridge.cli import main
from spikebridge.data import make_loaders
from spikebridge.evaluation import evaluate
from spikebridge.loading import load_model
from spikebridge.training import train_ann

TIMESTEPS = 64


class FunctionalNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 64)
        self.bn_fc = nn.BatchNorm1d(64)
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.bn_fc(self.fc(x.flatten(1))))
        return self.out(self.drop(x))


class ResidualNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(16)
        self.conv_a = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn_a = nn.BatchNorm2d(16)
        self.conv_b = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn_b = nn.BatchNorm2d(16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        y = F.relu(self.bn_a(self.conv_a(x)))
        x = F.relu(self.bn_b(self.conv_b(y)) + x)
        return self.head(x.mean((2, 3)))


class BranchNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.wide = nn.Conv2d(1, 8, 3, padding=1)
        self.narrow = nn.Conv2d(1, 8, 1)
        self.mix = nn.Conv2d(16, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.head = nn.Linear(16 * 4, 10)

    def forward(self, x):
        x = torch.cat([F.relu(self.wide(x)), F.relu(self.narrow(x))], dim=1)
        x = self.pool(F.relu(self.mix(x)))
        return self.head(torch.flatten(x, 1))


class LeakyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x):
        x = F.avg_pool2d(F.leaky_relu(self.conv1(x), 0.1), 2)
        x = F.avg_pool2d(F.leaky_relu(self.conv2(x), 0.1), 2)
        return self.fc(x.view(x.size(0), -1))


NETS = {cls.__name__: cls for cls in (FunctionalNet, ResidualNet, BranchNet, LeakyNet)}


def export_files(model: nn.Module, folder, name: str) -> dict[str, object]:
    """The model saved as a torch.export program and as ONNX (exported with batch 2)."""
    example = (torch.rand(2, 1, 8, 8),)
    pt2 = folder / f"{name}.pt2"
    torch.export.save(torch.export.export(model, example), pt2)
    onnx_file = folder / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, example, onnx_file, dynamo=False)
    return {"pt2": pt2, "onnx": onnx_file}


@pytest.fixture(scope="module")
def user_nets(tmp_path_factory):
    """Each net trained briefly on digits, its test accuracy, and its two files (on loaders of
    its own, so the nets do not depend on which tests ran before)."""
    folder = tmp_path_factory.mktemp("user_nets")
    train, test = make_loaders("digits", batch_size=64, seed=0)
    nets = {}
    for name, cls in NETS.items():
        torch.manual_seed(0)
        model = cls()
        train_ann(model, train, epochs=8, lr=1e-2, seed=0)
        model.eval()
        accuracy = float(evaluate(model, test).accuracy[0])
        nets[name] = (model, accuracy, export_files(model, folder, name))
    return nets


def convert_file(path, out) -> tuple[float, float]:
    """(ANN accuracy, SNN accuracy settled at T = 64) from ``spikebridge convert --checkpoint
    path``: the mean over the last quarter of the steps (t = 49..64), since on digits' 359 test
    images one step's accuracy moves by whole images (0.28 points each) from step to step."""
    args = ["convert", "--checkpoint", str(path), "--timesteps", str(TIMESTEPS)]
    assert main([*args, "--method", "channel", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arch"] == path.name
    frame = pd.read_csv(out / "accuracy_vs_timesteps.csv")
    settled = frame[frame["timesteps"] > TIMESTEPS * 3 // 4]["accuracy_pct"] / 100
    assert len(settled) == TIMESTEPS // 4
    snn = settled.mean()
    return summary["ann_accuracy"], float(snn)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pt2", "onnx"])
@pytest.mark.parametrize("name", list(NETS))
def test_user_net_converts_within_one_point_of_its_ann(user_nets, tmp_path, name, kind):
    if kind == "onnx":
        pytest.importorskip("onnx", reason="the onnx extra is not installed")
    model, accuracy, files = user_nets[name]
    assert accuracy > 0.85, f"{name} did not train ({accuracy:.3f})"
    ann, snn = convert_file(files[kind], tmp_path / "out")
    assert ann == pytest.approx(accuracy, abs=0.003)  # the same function (float round-off)
    # loses at most one point (LeakyNet's signed neurons score above their ANN on digits)
    assert snn - ann >= -0.01, f"{name} ({kind}): ANN {ann:.4f}, SNN settled at T=64 {snn:.4f}"


@pytest.mark.parametrize("kind", ["pt2", "onnx"])
@pytest.mark.parametrize("name", list(NETS))
def test_loaded_graph_computes_the_model_for_any_batch(user_nets, name, kind):
    """The files were exported with batch 2; the rebuilt graph takes any batch (reshape -1)."""
    if kind == "onnx":
        pytest.importorskip("onnx", reason="the onnx extra is not installed")
    model, _, files = user_nets[name]
    loaded = load_model(files[kind])
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)
    assert not any(type(m).__module__.startswith("onnx") for m in loaded.modules())
