"""The analog static prefix must not broadcast values computed from parameters alone."""

from __future__ import annotations

import torch
from torch import nn

from spikebridge import IFNeuron, SpikingNetwork


class ScaledConv(nn.Module):
    """A conv whose weight is computed in forward from parameters (weight * gain)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 1, 3, 3))
        self.gain = nn.Parameter(torch.full((4, 1, 1, 1), 0.5))
        self.act = IFNeuron(0.3)
        self.weight2 = nn.Parameter(torch.randn(3, 4, 3, 3))
        self.act2 = IFNeuron(0.2)
        self.head = nn.Linear(3 * 4 * 4, 3)

    def forward(self, x):
        w = self.weight * self.gain
        y = self.act(torch.nn.functional.conv2d(x, w) + self.gain.view(1, 4, 1, 1))
        y = self.act2(torch.nn.functional.conv2d(y, self.weight2 * 0.5))  # after a neuron
        return self.head(y.flatten(1))


def test_parameter_only_nodes_are_not_broadcast_over_time():
    torch.manual_seed(0)
    net = SpikingNetwork(ScaledConv(), chunk_size=3)
    x = torch.rand(2, 1, 8, 8)
    sim = net.simulate(x, 7)
    net.reset()
    expanded = net(x.unsqueeze(0).expand(7, *x.shape))
    reference = expanded.cumsum(0) / torch.arange(1, 8).view(-1, 1, 1)
    torch.testing.assert_close(sim.readout, reference)
