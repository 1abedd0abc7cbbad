"""Spiking max-pool (Rueckauer et al. 2017) against the AvgPool replacement."""

from __future__ import annotations

import warnings

import torch
from test_methods_fixtures import digits_tensors, trained_digits

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
