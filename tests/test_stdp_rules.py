"""The two local learning rules of the STDP route against hand-computed examples."""

from __future__ import annotations

import math

import torch

from spikebridge.stdp import autoencoder_update, probabilistic_stdp_update


def test_stdp_update_matches_hand_computation():
    # two post-synaptic neurons, three synapses; efficacies with w_min = -1 (w = e - 1)
    weight = torch.tensor([[1.0, 0.5, 2.0], [0.0, 0.0, 0.0]])
    # neuron 0 fired 4 times: input 0 preceded all 4 spikes, input 1 one of them, input 2 none
    pre_post = torch.tensor([[4.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    post_count = torch.tensor([4.0, 0.0])  # neuron 1 never fired
    delta = probabilistic_stdp_update(
        weight, pre_post, post_count, a_plus=0.2, a_minus=0.1, learning_rate=0.5, w_min=-1.0
    )
    # per spike: +a_plus * exp(-w) when the pre fired in the window, else -a_minus; mean over 4
    w = weight[0] - 1.0  # log-domain 0.0, -0.5, 1.0
    expected0 = [
        0.5 * (0.2 * math.exp(-w[0].item()) * 1.0 - 0.1 * 0.0),
        0.5 * (0.2 * math.exp(-w[1].item()) * 0.25 - 0.1 * 0.75),
        0.5 * (0.2 * math.exp(-w[2].item()) * 0.0 - 0.1 * 1.0),
    ]
    assert torch.allclose(delta[0], torch.tensor(expected0), atol=1e-7)
    assert torch.equal(delta[1], torch.zeros(3))  # a silent neuron does not learn


def test_stdp_equilibrium_is_log_odds():
    # at w = log(a+/a-) + logit(p) the expected update vanishes (docs/stdp.md)
    p, a_plus, a_minus = 0.3, 0.2, 0.1
    w = math.log(a_plus / a_minus) + math.log(p / (1 - p))
    delta = probabilistic_stdp_update(
        torch.tensor([[w]]), torch.tensor([[p * 1000]]), torch.tensor([1000.0]), a_plus, a_minus
    )
    assert abs(delta.item()) < 1e-6


def test_autoencoder_update_matches_hand_computation():
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])  # K=3 hidden, D=2 inputs
    inputs = torch.tensor([[1.0, 0.5]])  # one patch
    hidden = torch.tensor([[0.5, 0.0, 1.0]])
    delta, err = autoencoder_update(weight, inputs, hidden, learning_rate=0.1)
    recon = torch.tensor([0.5 * 1.0 + 1.0 * 0.5, 0.5 * 0.0 + 1.0 * 0.5])  # h W = [1.0, 0.5]
    e = inputs[0] - recon  # [0.0, 0.0]: a perfect reconstruction does not learn
    assert torch.allclose(err, (e**2).sum().view(1))
    assert torch.allclose(delta, torch.zeros(3, 2))
    inputs = torch.tensor([[1.0, 1.0]])
    delta, err = autoencoder_update(weight, inputs, hidden, learning_rate=0.1)
    # error [0, 0.5]; dW = 0.1 * h^T e
    expected = 0.1 * torch.tensor([[0.0, 0.25], [0.0, 0.0], [0.0, 0.5]])
    assert torch.allclose(delta, expected)
    assert torch.allclose(err, torch.tensor([0.25]))
