"""Spiking max-pool: Rueckauer et al. 2017's gate against the AvgPool replacement, and the running rule."""

from __future__ import annotations

import warnings

import pytest
import torch
from test_methods_fixtures import digits_tensors, trained_digits
from torch import nn

from spikebridge.convert import Converter
from spikebridge.engine.neurons import SpikingMaxPool


def test_spiking_max_pool_beats_avg_pool_replacement_on_a_max_pool_trained_cnn():
    model = trained_digits("cnn", "relu", pool="max")
    x, y = digits_tensors(train=False)
    calib, _ = digits_tensors(train=True, n=256)
    with torch.no_grad():
        ann = float((model(x).argmax(1) == y).float().mean())
    acc = {}
    for mode in ("spiking", "avg"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # avg warns that it changes the function
            network = Converter(model, calib, maxpool=mode).build("percentile")
        gates = [m for m in network.modules() if isinstance(m, SpikingMaxPool)]
        assert bool(gates) == (mode == "spiking")
        acc[mode] = float(network.simulate(x, 64).accuracy(y)[-1])
    assert acc["spiking"] > acc["avg"], acc
    assert acc["spiking"] > ann - 0.05, (acc, ann)


@pytest.mark.parametrize(
    "pool", [nn.MaxPool2d(2), nn.MaxPool2d(3, 2, 1), nn.AdaptiveMaxPool2d(2), nn.MaxPool1d(2)]
)
def test_running_rule_sums_to_the_max_pool_of_the_counts_in_any_chunking(pool):
    """After every step t the running rule's summed output is the max-pool of the summed
    inputs, whatever the chunks the steps come in; every output is a spike of its channel (0 or
    +-theta_c); the gate's summed output is not the max where the leader changes."""
    torch.manual_seed(0)
    steps, batch, channels = 8, 3, 4
    spatial = (6,) if isinstance(pool, nn.MaxPool1d) else (6, 6)
    theta = torch.rand(channels).add(0.1).reshape(1, 1, channels, *[1] * len(spatial))
    spikes = torch.randint(-1, 2, (steps, batch, channels, *spatial)).float()
    spikes = torch.where(spikes.cumsum(0) < 0, torch.zeros_like(spikes), spikes) * theta
    expected = pool(spikes.cumsum(0).flatten(0, 1)).unflatten(0, (steps, batch))
    for chunks in ([8], [3, 5], [1] * 8):
        running = SpikingMaxPool(pool, "running")
        outputs, done = [], 0
        for size in chunks:
            running.steps = size
            chunk = spikes[done : done + size].flatten(0, 1)
            outputs.append(running(chunk).unflatten(0, (size, batch)))
            done += size
        out = torch.cat(outputs)
        torch.testing.assert_close(out.cumsum(0), expected, rtol=0, atol=1e-5)
        amplitude = theta.expand_as(out[:1]).expand_as(out)
        assert torch.all((out == 0) | torch.isclose(out.abs(), amplitude)), chunks
    gate = SpikingMaxPool(pool)
    gate.steps = steps
    summed = gate(spikes.flatten(0, 1)).unflatten(0, (steps, batch)).sum(0)
    assert not torch.allclose(summed, expected[-1], atol=1e-5)
    with pytest.raises(ValueError, match="rule must be one of"):
        SpikingMaxPool(pool, "fastest")
