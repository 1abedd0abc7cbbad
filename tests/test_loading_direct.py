"""The direct route on a user's graph: ReLU -> LIF, BatchNorm -> tdBN, MaxPool kept, a
signed activation refused by name; the network trains with STBP on digits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikebridge.direct import LIFNeuron, train_direct
from spikebridge.direct.graph import NotDirectlyTrainable, direct_from_graph
from spikebridge.direct.tdbn import TDBN_TYPES
from spikebridge.loading import program_to_module
from spikebridge.models import JUNCTION_ALPHA


class ResidualUserNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 32)
        self.bn_fc = nn.BatchNorm1d(32)
        self.drop = nn.Dropout(0.1)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        x = torch.relu(self.bn1(self.conv(x)) + x)
        x = F.max_pool2d(x, 2).flatten(1)
        return self.out(self.drop(F.relu(self.bn_fc(self.fc(x)))))


class LeakyUserNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(F.leaky_relu(self.conv(x), 0.1).flatten(1))


def _graph(cls) -> nn.Module:
    torch.manual_seed(0)
    program = torch.export.export(cls().eval(), (torch.rand(2, 1, 8, 8),))
    return program_to_module(program, cls.__name__)


def test_graph_maps_relu_to_lif_and_batchnorm_to_tdbn():
    graph = _graph(ResidualUserNet)
    with torch.no_grad():
        graph.stem.weight.fill_(0.5)  # stands for the user's trained weights
    network = direct_from_graph(graph, threshold=0.5)
    modules = dict(network.module.named_modules())
    lifs = [m for m in modules.values() if isinstance(m, LIFNeuron)]
    norms = {name: m for name, m in modules.items() if isinstance(m, TDBN_TYPES)}
    assert len(lifs) == 3  # F.relu, torch.relu after the residual join, F.relu after fc
    assert len(norms) == 3 and all(m.threshold == 0.5 for m in norms.values())
    assert norms["bn1"].alpha == pytest.approx(JUNCTION_ALPHA)  # feeds the residual addition
    assert norms["bn0"].alpha == 1.0 and norms["bn_fc"].alpha == 1.0
    assert any(isinstance(m, nn.MaxPool2d) for m in modules.values())
    assert not any(isinstance(m, (nn.ReLU, nn.BatchNorm2d)) and not isinstance(m, TDBN_TYPES)
                   for m in modules.values())  # fmt: skip
    out = network(torch.rand(3, 5, 1, 8, 8))
    assert out.shape == (3, 5, 10)
    # fresh weights: the direct route trains from scratch, the user's graph is untouched
    assert not torch.all(network.module.stem.weight == 0.5)
    assert torch.all(graph.stem.weight == 0.5)


def test_graph_trains_directly_on_digits(digits_loaders):
    train_loader, test_loader = digits_loaders
    network = direct_from_graph(_graph(ResidualUserNet), seed=0)
    result = train_direct(network, train_loader, test_loader, timesteps=2, epochs=1, lr=0.1, seed=0)
    assert result.history[0]["test_accuracy"] > 0.5  # chance is 0.1


def test_signed_activation_is_refused_naming_the_node():
    with pytest.raises(NotDirectlyTrainable) as info:
        direct_from_graph(_graph(LeakyUserNet))
    assert info.value.node == "leaky_relu"
    assert "LeakyUserNet" in str(info.value) and "non-negative spikes" in info.value.reason


def test_graph_without_activation_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(NotDirectlyTrainable, match="no activation"):
        direct_from_graph(model)
