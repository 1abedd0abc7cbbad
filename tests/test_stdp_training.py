"""Greedy layer-wise training of the STDP route on digits: learning, reproducibility, errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Subset

from spikebridge.engine.network import SpikingNetwork
from spikebridge.evaluation import evaluate
from spikebridge.stdp import (
    StdpDivergenceError,
    UnsupportedArchitectureError,
    build_network,
    config_for,
    train,
    train_autoencoder,
    train_feature_layer,
)

SMALL = dict(conv_channels=8, conv_winners=2, feature_channels=16, timesteps=8)


def small_config(**overrides):
    return config_for("cnn", 1, 8, 10, **{**SMALL, **overrides})


@pytest.fixture(scope="module")
def subset_loader(digits_loaders):
    data = digits_loaders[0].dataset
    return DataLoader(Subset(data, list(range(384))), batch_size=64, shuffle=False)


@pytest.fixture(scope="module")
def trained(digits_loaders):
    config = small_config(stdp_epochs=2)
    return train(config, digits_loaders[0], seed=0, progress=False)


def test_autoencoder_reconstruction_error_falls():
    # a loader of its own: the session's shared loader reshuffles, so its batch order (and this
    # test's first and last batches) would depend on which tests ran before
    from spikebridge.data import make_loaders

    config = small_config(ae_epochs=2)
    net = build_network(config)
    train_loader, _ = make_loaders("digits", batch_size=64, seed=0)
    rows = train_autoencoder(net, train_loader, config, seed=0, progress=False)
    errors = rows[0]["batch_errors"] + rows[1]["batch_errors"]
    first, last = sum(errors[:3]) / 3, sum(errors[-3:]) / 3
    assert last < 0.9 * first, (first, last)
    assert rows[1]["reconstruction_error"] < rows[0]["reconstruction_error"]


def test_learned_features_classify_digits(trained, digits_loaders):
    ev = evaluate(trained.network, digits_loaders[1], trained.config.timesteps, count_ops=True)
    accuracy = ev.accuracy[-1].item()
    assert accuracy > 0.8, accuracy  # chance is 0.1
    # the network is counted by the same operation counters as the other routes
    assert set(ev.layers) >= {"conv1", "conv2", "readout"}
    assert ev.sops().sum() > 0
    assert {"lif1", "lif2"} <= set(ev.spikes)


def test_seeded_run_is_reproducible(subset_loader):
    config = small_config()
    a = train(config, subset_loader, seed=3, progress=False)
    b = train(config, subset_loader, seed=3, progress=False)
    for (name, pa), pb in zip(a.network.state_dict().items(), b.network.state_dict().values()):
        assert torch.equal(pa, pb), name
    x = next(iter(subset_loader))[0]
    assert torch.equal(a.network.simulate(x, 8).readout, b.network.simulate(x, 8).readout)
    c = train(config, subset_loader, seed=4, progress=False)
    assert not torch.equal(a.network.module.conv2.weight, c.network.module.conv2.weight)


def test_nan_weights_stop_naming_the_layer(subset_loader):
    config = small_config(ae_learning_rate=1e38)
    with pytest.raises(StdpDivergenceError, match=r"conv1 \(spiking auto-encoder.*NaN"):
        train_autoencoder(build_network(config), subset_loader, config, progress=False)


def test_silent_layers_stop_naming_the_layer(subset_loader):
    config = small_config(conv_threshold=1e9, silent_batches=3)
    with pytest.raises(StdpDivergenceError, match=r"conv1 .*no neuron won"):
        train_autoencoder(build_network(config), subset_loader, config, progress=False)
    config = small_config(feature_threshold=1e9, silent_batches=3)
    net = build_network(config)
    train_autoencoder(net, subset_loader, config, progress=False)
    with pytest.raises(StdpDivergenceError, match=r"conv2 \(feature discovery.*no neuron won"):
        train_feature_layer(net, subset_loader, config, progress=False)


def test_unsupported_architectures_are_named_errors():
    with pytest.raises(UnsupportedArchitectureError, match="resnet20"):
        config_for("resnet20", 3, 32, 10)
    with pytest.raises(UnsupportedArchitectureError, match="conv2 .*does not fit"):
        config_for("tavanaei2017", 1, 12, 10, conv_kernel=5, pool=2, feature_kernel=5)
    with pytest.raises(ValueError, match="event datasets"):
        config = small_config()
        events = [(torch.zeros(2, 4, 2, 8, 8), torch.zeros(2, dtype=torch.long))]
        train_autoencoder(build_network(config), events, config, progress=False)


def test_network_is_a_spiking_network_with_poisson_input(trained):
    assert isinstance(trained.network, SpikingNetwork)
    x = torch.rand(2, 1, 8, 8)
    sim = trained.network.simulate(x, 5)
    assert sim.readout.shape == (5, 2, 10)
