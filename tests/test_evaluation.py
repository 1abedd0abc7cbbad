"""The one evaluator: ANNs and spiking networks of both routes, event input through the one
simulate loop, and operation counts on request."""

from __future__ import annotations

import pytest
import torch
from test_methods_fixtures import digits_loaders, trained_digits

from spikebridge.convert import convert_model
from spikebridge.data import calibration_loader
from spikebridge.direct import build_direct_snn
from spikebridge.evaluation import evaluate


def test_ann_and_converted_snn_are_scored_by_the_same_evaluator():
    train, test = digits_loaders()
    ann = trained_digits()
    ann_ev = evaluate(ann, test)
    x, y = zip(*test.dataset)
    manual = (ann(torch.stack(x)).argmax(-1) == torch.tensor(y)).double().mean()
    assert ann_ev.accuracy.shape == (1,) and float(ann_ev.accuracy[0]) == pytest.approx(
        float(manual)
    )
    snn = convert_model(ann, calibration_loader(train.dataset, 128, 64, 0), method="channel")
    snn_ev = evaluate(snn, test, 16, count_ops=True)
    assert snn_ev.accuracy.shape == (16,) and snn_ev.total == ann_ev.total
    assert float(snn_ev.accuracy[-1]) > 0.8  # close to the ANN after 16 steps
    assert snn_ev.sops().sum() > 0 and snn_ev.macs().sum() > 0  # first conv analog, rest SOPs
    with pytest.raises(ValueError, match="not a SpikingNetwork"):
        evaluate(ann, test, 16)
    with pytest.raises(ValueError, match="timesteps must be a positive integer"):
        evaluate(snn, test, 0)


def test_ann_operation_counts_are_per_sample():
    _, test = digits_loaders()
    ev = evaluate(trained_digits(), test, count_ops=True)
    assert ev.macs_per_sample > 0
    assert {op.kind for op in ev.layers.values()} >= {"conv", "linear"}


def test_event_frames_give_the_same_readout_whatever_the_chunk():
    """Event input runs through SpikingNetwork.simulate: a running sum step by step, so the
    readout does not depend on how steps are chunked (bit for bit)."""
    torch.manual_seed(0)
    net = build_direct_snn("cnn", 10, 2, 8, width=0.25, encoding="events").eval()
    frames = (torch.rand(3, 7, 2, 8, 8) < 0.3).float()
    labels = torch.tensor([0, 1, 2])
    readouts = []
    for chunk in (1, 3, None):
        net.chunk_size = chunk
        readouts.append(net.simulate(frames, 7, record_spikes=True).readout)
    assert torch.equal(readouts[0], readouts[1]) and torch.equal(readouts[0], readouts[2])
    ev = evaluate(net, [(frames, labels)], 7, count_ops=True)
    assert ev.accuracy.shape == (7,) and ev.sops().sum() > 0
