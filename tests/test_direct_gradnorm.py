"""The tdBN paper's gradient-norm experiment (Zheng et al. 2021, Sec. 4 / Fig. 3).

In a 20-layer plain spiking CNN at initialisation, tdBN keeps the per-layer gradient norms
within 10x of each other; without it, gradients vanish (or explode) across depth.
"""

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from spikebridge.direct import LIFNeuron, tdbn
from spikebridge.engine.network import SpikingNetwork


def plain_snn(depth: int, channels: int, norm: bool) -> SpikingNetwork:
    layers: list[nn.Module] = []
    c_in = 1
    for _ in range(depth):
        layers.append(nn.Conv2d(c_in, channels, 3, padding=1, bias=False))
        if norm:
            layers.append(tdbn(channels, 2))
        layers.append(LIFNeuron())
        c_in = channels
    layers += [nn.Flatten(), nn.Linear(channels * 64, 10)]
    return SpikingNetwork(nn.Sequential(*layers))


def layer_gradient_norms(norm: bool) -> torch.Tensor:
    digits = load_digits()
    x = torch.tensor(digits.images[:32], dtype=torch.float32).unsqueeze(1) / 16
    y = torch.tensor(digits.target[:32])
    torch.manual_seed(0)
    net = plain_snn(20, 8, norm).train()
    out = net(x.unsqueeze(0).expand(4, *x.shape)).mean(0)
    F.cross_entropy(out, y).backward()
    return torch.stack([m.weight.grad.norm() for m in net.module if isinstance(m, nn.Conv2d)])


def test_tdbn_keeps_gradient_norms_within_10x_across_20_layers():
    norms = layer_gradient_norms(norm=True)
    assert len(norms) == 20
    assert norms.min() > 0
    assert norms.max() / norms.min() < 10


def test_without_tdbn_gradient_norms_spread_beyond_10x():
    norms = layer_gradient_norms(norm=False)
    assert norms.min() == 0 or norms.max() / norms.min() > 10
