"""Operation counts of the one evaluator (SPEC 3.2): hand-computed SOPs/MACs of a tiny network,
exact fan-outs at the borders, residual junctions, analog versus Poisson input, and a published
MAC figure."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from spikebridge.engine.encoding import PoissonEncoder
from spikebridge.engine.network import SpikingNetwork
from spikebridge.engine.neurons import IFNeuron
from spikebridge.evaluation import count_ann_ops, evaluate, fanout_map


class Tiny(nn.Module):
    """conv(1->1) - IF - conv(1->2, padded 3x3) - IF - avgpool 2 - flatten - linear(8 -> 3).

    The convs pass only their centre tap (weight 1), so with threshold 1 the spikes are known:
    an input of 1.0 fires every step, 0.5 every second step (steps 2, 4, ...).
    """

    def __init__(self, residual: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        self.n1 = IFNeuron(1.0)
        self.conv2 = nn.Conv2d(1, 2, 3, padding=1, bias=False)
        self.n2 = IFNeuron(1.0)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(8, 3)
        self.residual = residual
        with torch.no_grad():
            self.conv1.weight.zero_()
            self.conv1.weight[0, 0, 1, 1] = 1
            self.conv2.weight.zero_()
            self.conv2.weight[:, 0, 1, 1] = 1

    def forward(self, x):
        s1 = self.n1(self.conv1(x))
        z = self.conv2(s1)
        if self.residual:
            z = z + s1  # a junction fed spikes straight from n1
        return self.fc(torch.flatten(self.pool(self.n2(z)), 1))


def tiny_input() -> torch.Tensor:
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = 1.0  # corner: a padded 3x3 conv reaches 4 outputs per channel
    x[0, 0, 1, 1] = 1.0  # interior: 9 outputs
    x[0, 0, 0, 2] = 0.5  # edge: 6 outputs, spikes on even steps only
    return x


def test_tiny_network_counts_match_hand_computation():
    ev = evaluate(
        SpikingNetwork(Tiny(), chunk_size=3), [(tiny_input(), torch.tensor([0]))], 4, count_ops=True
    )
    layers = ev.layers
    # conv1 sees the analog input: dense MACs every step = 16 outputs x 9 taps
    assert layers["conv1"].analog and layers["conv1"].macs_per_sample == 16 * 9
    assert ev.macs().tolist() == [144.0] * 4
    # conv2: spikes at corner+interior (odd steps) and + edge (even steps), 2 output channels each
    assert layers["conv2"].sops.tolist() == [2 * (4 + 9), 2 * (4 + 9 + 6)] * 2
    # n2 copies n1's spikes into both channels; each reaches exactly one pooling window
    assert ev.spikes["n1"].tolist() == [2, 3, 2, 3]
    assert ev.spikes["n2"].tolist() == [4, 6, 4, 6]
    assert layers["pool"].sops.tolist() == [4, 6, 4, 6]
    # fc: non-zero pooled values (1 window per channel on odd steps, 2 on even) x 3 outputs
    assert layers["fc"].sops.tolist() == [2 * 3, 4 * 3] * 2
    assert ev.sops().tolist() == [26 + 4 + 6, 38 + 6 + 12] * 2
    assert ev.neurons == {"n1": 16, "n2": 32}


def test_residual_junction_counts_one_op_per_arriving_spike_and_broadcast():
    ev = evaluate(
        SpikingNetwork(Tiny(residual=True)), [(tiny_input(), torch.tensor([0]))], 4, count_ops=True
    )
    adds = [op for name, op in ev.layers.items() if op.kind == "add"]
    assert len(adds) == 1
    # n1's spikes ([1, 4, 4]) are broadcast onto both channels of conv2's output: 2 ops each
    assert adds[0].sops.tolist() == [2 * 2, 3 * 2, 2 * 2, 3 * 2]
    assert adds[0].inputs.tolist() == [2, 3, 2, 3]


def test_poisson_input_makes_the_first_layer_event_driven():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 4, 4)
    net = SpikingNetwork(Tiny(), encoder=PoissonEncoder(seed=0), chunk_size=6)
    ev = evaluate(net, [(x, torch.zeros(3, dtype=torch.long))], 6, count_ops=True)
    assert not ev.layers["conv1"].analog
    assert ev.macs().sum() == 0
    # the same Poisson stream (one chunk of 6 steps): input spikes x fan-out of their position
    seq = PoissonEncoder(seed=0)(x, 6)  # [T, B, 1, 4, 4]
    fan, factor = fanout_map(nn.Conv2d(1, 1, 3, padding=1), (4, 4))
    expected = (seq.ne(0).sum((1, 2)) * fan).flatten(1).sum(1) * factor
    assert ev.layers["conv1"].sops.tolist() == expected.tolist()


@pytest.mark.parametrize(
    "layer, shape",
    [
        (nn.Conv2d(1, 3, 3, padding=1), (5, 6)),
        (nn.Conv2d(1, 2, 3, stride=2, padding=1), (7, 7)),
        (nn.Conv2d(1, 2, (3, 5), stride=(1, 2), padding=(0, 2), dilation=(2, 1)), (9, 8)),
        (nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"), (4, 5)),
        (nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), (5, 5)),
        (nn.Conv2d(1, 2, 3, padding="same"), (5, 4)),
        (nn.Conv1d(1, 4, 5, stride=2, padding=2), (11,)),
        (nn.AvgPool2d(3, stride=2, padding=1), (7, 6)),
        (nn.AvgPool2d(2, ceil_mode=True), (5, 5)),
        (nn.AvgPool1d(3, stride=2, padding=1), (9,)),
        (nn.AdaptiveAvgPool2d((3, 2)), (7, 5)),
    ],
)
def test_fanout_map_counts_the_outputs_each_input_reaches(layer, shape):
    """Definition: fan-out of input i = number of non-zero Jacobian entries in column i."""
    layer = layer.double()
    if hasattr(layer, "weight"):
        with torch.no_grad():
            layer.weight.fill_(1.0)
            if layer.bias is not None:
                layer.bias.zero_()
    x = torch.rand(1, 1, *shape, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v), x)
    reached = jac.reshape(-1, x.numel()).ne(0).sum(0).reshape(shape)
    fan, factor = fanout_map(layer, shape)
    assert torch.equal(fan * factor, reached)


def test_vgg11_macs_at_224_match_the_published_figure():
    """torchvision lists VGG-11 at 7.61 GFLOPS (multiply-accumulates) for 224x224 inputs."""
    with torch.device("meta"):
        model = torchvision.models.vgg11()
    ops = count_ann_ops(model, torch.zeros(1, 3, 224, 224, device="meta"))
    assert ops.macs == pytest.approx(7.609e9, rel=2e-3)
    convs = [op for op in ops.layers.values() if op.kind == "conv"]
    assert len(convs) == 8
    # the first conv by hand: 64 x 224 x 224 outputs x 3 x 3 x 3
    assert convs[0].macs_per_sample == 64 * 224 * 224 * 27


def test_ann_counts_functional_pooling_and_residual_additions():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.fc = nn.Linear(2, 5)

        def forward(self, x):
            y = F.relu(self.conv(x)) + x
            return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))

    ops = count_ann_ops(Block(), torch.zeros(4, 2, 6, 6))
    kinds = {op.kind: op for op in ops.layers.values()}
    assert kinds["conv"].macs_per_sample == 2 * 36 * 2 * 9
    assert kinds["add"].acs_per_sample == 2 * 36
    assert kinds["avgpool"].macs_per_sample == 2 * 36
    assert kinds["linear"].macs_per_sample == 2 * 5
    assert ops.macs == 2 * 36 * 18 + 72 + 10 and ops.acs == 72


def test_untraceable_network_still_counts_its_modules_and_says_so():
    class Branchy(Tiny):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace this
                return super().forward(x)
            return super().forward(-x)

    ev = evaluate(SpikingNetwork(Branchy()), [(tiny_input(), torch.tensor([0]))], 4, count_ops=True)
    assert any("could not be traced" in n for n in ev.notes)
    assert ev.layers["conv1"].analog  # runs before the first neuron
    assert ev.layers["conv2"].sops.tolist() == [26, 38, 26, 38]


def test_a_layer_shared_by_two_call_sites_is_counted_at_each():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
            self.n1, self.n2 = IFNeuron(1.0), IFNeuron(1.0)
            self.fc = nn.Linear(16, 2)
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.weight[0, 0, 1, 1] = 1

        def forward(self, x):  # the same conv on the input and on n1's spikes
            return self.fc(self.n2(self.conv(self.n1(self.conv(x)))).flatten(1))

    ev = evaluate(SpikingNetwork(Shared()), [(tiny_input(), torch.tensor([0]))], 4, count_ops=True)
    first, second = ev.layers["conv"], ev.layers["conv_call"]
    assert first.analog and first.macs_per_sample == 16 * 9
    assert not second.analog and second.sops.tolist() == [4 + 9, 4 + 9 + 6] * 2
    assert ev.spikes["n2"].tolist() == ev.spikes["n1"].tolist() == [2, 3, 2, 3]
