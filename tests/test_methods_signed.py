"""Signed neurons with imbalanced threshold for LeakyReLU(alpha) (Kim et al. 2020, SPEC 1.7)."""

from __future__ import annotations

import pytest
import torch
from test_methods_fixtures import digits_tensors, trained_digits
from torch import nn

from spikebridge.convert import Converter, MethodNotApplicable
from spikebridge.engine.neurons import SignedIFNeuron


@pytest.mark.parametrize("alpha", [0.1, 0.25])
def test_signed_neuron_rate_matches_leaky_relu_for_constant_inputs(alpha):
    theta, steps = 0.8, 1000
    # inputs from -theta/alpha (the fastest negative rate) to +theta (the fastest positive rate),
    # with outputs of at least 10% of the largest: one spike in T = 1000 is then at most 1%
    x = torch.cat(
        [
            torch.linspace(-theta / alpha, -0.1 * theta / alpha, 50),
            torch.linspace(0.1, 1, 50) * theta,
        ]
    )
    neuron = SignedIFNeuron(theta, alpha=alpha)
    out = neuron.forward_sequence(x.expand(steps, -1).clone())
    rate = out.sum(0) / steps  # mean output per step, in units of the input
    expected = nn.LeakyReLU(alpha)(x)
    assert (x < 0).sum() > 10 and (x > 0).sum() > 10
    assert torch.all((rate - expected).abs() <= 0.01 * expected.abs() + 1e-6), (rate, expected)


def test_leaky_relu_network_converts_to_signed_neurons_and_tracks_its_ann():
    model = trained_digits("cnn", "leaky-relu")
    x, y = digits_tensors(train=False)
    calib, _ = digits_tensors(train=True, n=256)
    network = Converter(model, calib).build("channel")
    neurons = network.neurons()
    assert neurons and all(isinstance(n, SignedIFNeuron) for n in neurons.values())
    assert all(n.alpha == pytest.approx(0.1) for n in neurons.values())
    with torch.no_grad():
        ann = (model(x).argmax(1) == y).float().mean()
    snn = network.simulate(x, 64).accuracy(y)[-1]
    assert snn >= ann - 0.02, (float(snn), float(ann))


def test_signed_neurons_need_reset_by_subtraction():
    calib, _ = digits_tensors(train=True, n=32)
    with pytest.raises(
        MethodNotApplicable, match=r"^2: signed neurons.*reset='zero'.*method 'max'"
    ):
        Converter(trained_digits("cnn", "leaky-relu"), calib).build("max", reset="zero")
