"""Channel-wise normalisation (Kim et al. 2020, Spiking-YOLO), also through residual additions."""

from __future__ import annotations

import copy

import pytest
import torch
from test_methods_fixtures import digits_tensors, trained_digits
from torch import nn

from spikebridge.convert import Converter, MethodNotApplicable, PercentileSettings
from spikebridge.models import build_model


def _channel_scales(channels: int, seed: int) -> torch.Tensor:
    """Factors from 1 to 100 (log-spaced), in a random channel order."""
    g = torch.Generator().manual_seed(seed)
    return torch.logspace(0, 2, channels)[torch.randperm(channels, generator=g)]


def _rescaled_cnn() -> nn.Module:
    """The digits CNN with the channels of its first two conv layers rescaled by 1..100x.

    Channel j's BatchNorm output is multiplied by s_j and the next conv's weights from channel j
    divided by s_j; ReLU is positively homogeneous, so the ANN computes the same function.
    """
    model = copy.deepcopy(trained_digits())
    layers = list(model)
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for k, (i, j) in enumerate(zip(convs[:2], convs[1:3])):
            bn, nxt = layers[i + 1], layers[j]
            s = _channel_scales(bn.num_features, k)
            bn.weight.mul_(s)
            bn.bias.mul_(s)
            nxt.weight.div_(s.view(1, -1, 1, 1))
    return model.eval()


def test_channel_wise_beats_layer_wise_when_channel_scales_differ_100x():
    model = _rescaled_cnn()
    x, y = digits_tensors(train=False)
    with torch.no_grad():
        same = (model(x).argmax(1) == trained_digits()(x).argmax(1)).float().mean()
    assert same == 1.0  # the rescaling keeps the ANN's function
    calib, _ = digits_tensors(train=True, n=256)
    converter = Converter(model, calib)
    acc = {}
    for method in ("percentile", "channel"):
        sim = converter.build(method).simulate(x, 16)
        acc[method] = float(sim.accuracy(y)[-1])
    assert acc["channel"] > acc["percentile"] + 0.05, acc
    assert acc["channel"] > 0.85, acc


def _stressed_resnet20() -> nn.Module:
    """resnet20 (width 0.25) whose shortcut branches carry channel scales up to 100x larger than
    the residual branch at the same junction, with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    model = build_model("resnet20", 10, 1, 8, 0.25).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
        for k, block in enumerate(model.layers):
            if isinstance(block.shortcut, nn.Sequential):
                bn = block.shortcut[1]
                s = _channel_scales(bn.num_features, k)
                bn.weight.mul_(s)
                bn.bias.mul_(s)
    return model


def test_channel_wise_through_residual_additions_on_resnet20():
    model = _stressed_resnet20()
    x, _ = digits_tensors(train=False, n=48)
    calib, _ = digits_tensors(train=True, n=128)
    converter = Converter(model, calib, settings={"channel": PercentileSettings(percentile=100.0)})
    network = converter.build("channel")
    # the neuron after each junction has one threshold per channel, in ANN units
    junctions = {n: m.threshold for n, m in network.neurons().items() if n.endswith("act2")}
    assert len(junctions) == 9 and all(th.dim() == 1 for th in junctions.values())
    spread = max(float(th.max() / th.min()) for th in junctions.values())
    assert spread > 10  # the branches' channel scales really differ
    with torch.no_grad():
        ann = model(x)
    snn = network.simulate(x, 128).readout[-1]
    error = (snn - ann).norm() / ann.norm()
    assert error < 0.15, float(error)
    assert (snn.argmax(1) == ann.argmax(1)).float().mean() > 0.9


class _SequenceMLP(nn.Module):
    """Linear layers applied to [B, L, F] tensors: features on the last axis, not dim 1."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.act = nn.ReLU()
        self.out = nn.Linear(8 * 16, 10)

    def forward(self, x):
        h = self.act(self.fc1(x.view(x.size(0), 8, 8)))
        return self.out(h.flatten(1))


def test_channel_wise_refuses_a_layer_whose_channels_are_not_on_dim_1():
    calib, _ = digits_tensors(train=True, n=32)
    converter = Converter(_SequenceMLP().eval(), calib)
    with pytest.raises(MethodNotApplicable, match=r"act: method 'channel' cannot scale"):
        converter.build("channel")
    converter.build("percentile")  # layer-wise still applies
