"""WTA-LIF neurons: at most k winners per group and step, leak/threshold, seeded draws."""

from __future__ import annotations

import pytest
import torch

from spikebridge.stdp import WTALIFNeuron


@pytest.mark.parametrize("stochastic", [False, True])
@pytest.mark.parametrize("k", [1, 3])
def test_at_most_k_fire_per_group_and_step(stochastic, k):
    torch.manual_seed(0)
    neuron = WTALIFNeuron(threshold=0.5, leak=0.9, winners=k, stochastic=stochastic, seed=1)
    currents = torch.rand(12, 4, 8, 5, 5) * 2  # [T, B, C, H, W]: plenty of eligible neurons
    spikes = neuron.forward_sequence(currents)
    per_group = spikes.sum(2)  # [T, B, H, W]
    assert per_group.max() == k  # the cap is reached (many neurons are above threshold) ...
    assert (per_group <= k).all()  # ... and never exceeded
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


def test_deterministic_winner_is_the_largest_potential_and_group_resets():
    neuron = WTALIFNeuron(threshold=1.0, leak=1.0, winners=1)
    currents = torch.tensor([[[0.6, 0.8, 0.1]], [[0.6, 0.8, 0.1]]])  # [T=2, B=1, C=3]
    spikes = neuron.forward_sequence(currents)
    # step 1: nobody reaches 1.0; step 2: potentials 1.2, 1.6, 0.2 -> neuron 1 wins alone
    assert spikes[0].sum() == 0
    assert spikes[1].tolist() == [[0.0, 1.0, 0.0]]
    assert torch.equal(neuron.v, torch.zeros(1, 3))  # lateral inhibition reset the group


def test_below_threshold_never_fires_and_leak_decays():
    neuron = WTALIFNeuron(threshold=1.0, leak=0.5, winners=2, stochastic=True, seed=0)
    spikes = neuron.forward_sequence(torch.full((20, 2, 4), 0.4))  # u -> 0.8 < 1
    assert spikes.sum() == 0
    assert torch.allclose(neuron.v, torch.full((2, 4), 0.8), atol=1e-5)


def test_seeded_draws_repeat_after_reset():
    neuron = WTALIFNeuron(threshold=0.1, winners=2, temperature=5.0, stochastic=True, seed=7)
    x = torch.rand(10, 3, 6, 4, 4)
    first = neuron.forward_sequence(x)
    neuron.reset_state()
    assert torch.equal(first, neuron.forward_sequence(x))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="winners"):
        WTALIFNeuron(winners=0)
    with pytest.raises(ValueError, match="leak"):
        WTALIFNeuron(leak=1.5)
    with pytest.raises(ValueError, match="C competing"):
        WTALIFNeuron().forward_sequence(torch.ones(3, 4))


def test_simulation_does_not_depend_on_the_chunk_size():
    from spikebridge.stdp import build_network, config_for

    config = config_for("cnn", 1, 8, 10, conv_channels=4, feature_channels=6, timesteps=6)
    torch.manual_seed(0)
    net = build_network(config, seed=3)
    for p in net.parameters():
        torch.nn.init.uniform_(p, 0, 1)
    x = torch.rand(3, 1, 8, 8)
    whole = net.simulate(x, 7).readout
    net.chunk_size = 2
    assert torch.equal(whole, net.simulate(x, 7).readout)
