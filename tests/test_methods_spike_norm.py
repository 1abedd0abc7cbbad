"""Spike-Norm (Sengupta et al. 2019): thresholds are the maxima of the weighted spike input seen."""

from __future__ import annotations

import pytest
import torch
from test_methods_fixtures import digits_tensors, trained_digits
from torch import nn

from spikebridge.convert import Converter, SpikeNormSettings, build_spiking_module, prepare
from spikebridge.engine.encoding import PoissonEncoder
from spikebridge.engine.network import SpikingNetwork
from spikebridge.models import build_model
from spikebridge.normalization.spike_norm import spike_norm

WINDOW, CHUNK, SEED = 12, 4, 3


def _recorded_maxima(prepared, scales, batches, maxpool="spiking") -> dict[str, float]:
    """Simulate the finished SNN once (Poisson input, same seed, same batches and chunks) and
    record the largest input current each neuron layer received."""
    network = SpikingNetwork(build_spiking_module(prepared, scales, maxpool=maxpool))
    peaks: dict[str, float] = {}
    handles = [
        neuron.register_forward_pre_hook(
            lambda _m, inp, name=name: peaks.__setitem__(
                name, max(peaks.get(name, -float("inf")), float(inp[0].max()))
            )
        )
        for name, neuron in network.neurons().items()
    ]
    encoder = PoissonEncoder(seed=SEED)
    with torch.no_grad():
        for x in batches:
            network.reset()
            for start in range(0, WINDOW, CHUNK):
                network(encoder(x, min(CHUNK, WINDOW - start)))
    for h in handles:
        h.remove()
    return peaks


def _check(model: nn.Module, batches: list[torch.Tensor]) -> None:
    prepared = prepare(model)
    scales = spike_norm(prepared, batches, seed=SEED, window=WINDOW, chunk_size=CHUNK)
    peaks = _recorded_maxima(prepared, scales, batches)
    assert set(peaks) == set(scales)
    for name, theta in scales.items():
        assert theta.dim() == 0
        assert float(theta) == pytest.approx(peaks[name], rel=1e-5, abs=1e-6), name


def test_spike_norm_thresholds_are_the_maxima_of_the_weighted_spike_input():
    x, _ = digits_tensors(train=True, n=48)
    _check(trained_digits(), [x[:32], x[32:]])


def test_spike_norm_on_a_residual_network_with_max_pooling():
    torch.manual_seed(0)
    resnet = build_model("resnet20", 10, 1, 8, 0.25).eval()
    x, _ = digits_tensors(train=True, n=16)
    _check(resnet, [x])
    cnn = build_model("cnn", 10, 1, 8, 0.25, pool="max").eval()
    _check(cnn, [x])


def test_spike_norm_first_layer_stays_within_the_all_inputs_spiking_bound():
    """Layer 1's threshold is an input per step: at most the input when every pixel spikes."""
    x, _ = digits_tensors(train=True, n=16)
    prepared = prepare(trained_digits())
    scales = spike_norm(prepared, x, seed=SEED, window=WINDOW, chunk_size=CHUNK)
    first = next(iter(scales))
    conv = next(m for m in prepared.modules() if isinstance(m, nn.Conv2d))
    # layer 1 sees Poisson spikes: its input never exceeds the all-inputs-spiking bound
    bound = conv.weight.detach().clamp(min=0).flatten(1).sum(1) + conv.bias.detach()
    assert float(scales[first]) <= float(bound.max()) + 1e-6


def test_spike_norm_window_is_configurable_through_the_converter():
    x, _ = digits_tensors(train=True, n=16)
    converter = Converter(
        trained_digits(), x, settings={"spike-norm": SpikeNormSettings(window=4, samples=8)}
    )
    short = converter.scales("spike-norm")
    direct = spike_norm(converter.prepared_, x, seed=0, window=4, samples=8)
    assert all(torch.equal(short[n], direct[n]) for n in direct)


def test_spike_norm_bad_inputs():
    x, _ = digits_tensors(train=True, n=8)
    prepared = prepare(trained_digits())
    with pytest.raises(ValueError, match="window"):
        spike_norm(prepared, x, window=0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        spike_norm(prepared, x * 5, window=2)  # Poisson coding needs inputs in [-1, 1]
    with pytest.raises(ValueError, match="empty"):
        spike_norm(prepared, [], window=2)
    with pytest.raises(ValueError, match="calibration"):
        Converter(trained_digits()).build("spike-norm")
