"""Conversion-aware training with QCFS (Bu et al. 2022, SPEC 1.8) and its conversion."""

from __future__ import annotations

import pytest
import torch
from test_methods_fixtures import digits_tensors, trained_digits

from spikebridge.activations import QCFS
from spikebridge.convert import Converter, MethodNotApplicable, applicable_methods
from spikebridge.engine.neurons import IFNeuron


@pytest.mark.parametrize("levels", [4, 8])
def test_if_neuron_with_half_threshold_start_reproduces_qcfs_at_t_equals_l(levels):
    """theta = lambda, u[0] = theta/2, reset by subtraction: after L steps of a constant input z
    the mean output is exactly h(z) = lambda * clamp(floor(z L / lambda + 1/2) / L, 0, 1)."""
    qcfs = QCFS(levels, initial_lambda=1.7)
    z = torch.linspace(-0.5, 2.5, 301)
    z = z[((z * levels / 1.7 + 0.5) - (z * levels / 1.7 + 0.5).round()).abs() > 1e-3]  # no ties
    neuron = IFNeuron(qcfs.lambda_.detach(), "subtract", initial_potential=0.5)
    out = neuron.forward_sequence(z.expand(levels, -1).clone()).mean(0)
    assert torch.allclose(out, qcfs(z).detach(), atol=1e-5)


def test_qcfs_trained_cnn_converts_with_lambda_thresholds_and_tracks_its_ann_at_t_4():
    model = trained_digits("cnn", "qcfs", levels=4)
    assert "qcfs" in applicable_methods(model)
    x, y = digits_tensors(train=False)
    network = Converter(model).build("qcfs")  # data-free: theta = lambda, signed IF neurons
    lambdas = [m.lambda_.detach().abs() for m in model.modules() if isinstance(m, QCFS)][:-1]
    neurons = list(network.neurons().values())
    assert all(n.initial_potential == 0.5 and n.reset == "subtract" for n in neurons)
    assert all(n.negative_spikes for n in neurons)
    assert all(torch.allclose(n.threshold, lam) for n, lam in zip(neurons, lambdas))
    with torch.no_grad():
        ann = float((model(x).argmax(1) == y).float().mean())
    snn = float(network.simulate(x, 4).accuracy(y)[-1])
    assert snn >= ann - 0.03, (snn, ann)


def test_negative_spikes_make_the_spike_count_the_rounded_total_input():
    """Signed IF (Wang 2022, Hu 2023): whatever the order in which inputs arrive, the net count
    after T steps is clamp(floor(sum z / theta + 1/2), 0, T), QCFS's rounding of the total; the
    plain IF neuron cannot take back spikes fired on an early positive run."""
    torch.manual_seed(0)
    theta, steps = 1.3, 8
    z = (torch.rand(steps, 4000) * 2 - 1) * theta * 0.999  # each step within (-theta, theta)
    z[:, :1000] = z[:, :1000].abs().sort(0, descending=True)[0] * torch.tensor([1.0, -1.0]).repeat(
        steps // 2
    ).unsqueeze(1)  # positive first, then negative: the worst order for a plain IF neuron
    expected = torch.clamp(torch.floor(z.sum(0) / theta + 0.5), 0, steps)
    signed = IFNeuron(theta, "subtract", 0.5, negative_spikes=True)
    count = signed.forward_sequence(z.clone()).sum(0) / theta
    assert torch.equal(count.round(), expected)
    plain = IFNeuron(theta, "subtract", 0.5).forward_sequence(z.clone()).sum(0) / theta
    assert (plain.round() > expected).float().mean() > 0.05  # plain IF overshoots


def test_negative_spikes_keep_state_across_chunks():
    torch.manual_seed(1)
    z = torch.randn(12, 3, 5)
    whole = IFNeuron(1.0, "subtract", 0.5, negative_spikes=True).forward_sequence(z.clone())
    chunked = IFNeuron(1.0, "subtract", 0.5, negative_spikes=True)
    parts = [chunked.forward_sequence(z[i : i + 5].clone()) for i in range(0, 12, 5)]
    assert torch.equal(torch.cat(parts), whole)
    chunked.reset_state()
    assert chunked.count is None and chunked.v is None


def test_negative_spikes_need_reset_by_subtraction():
    with pytest.raises(ValueError, match="negative_spikes needs reset='subtract'"):
        IFNeuron(1.0, "zero", negative_spikes=True)
    with pytest.raises(MethodNotApplicable, match=r"^\S+: negative spikes .* reset='zero'"):
        Converter(trained_digits("cnn", "qcfs", levels=4)).build(
            "qcfs", reset="zero", negative_spikes=True
        )


def test_qcfs_with_negative_spikes_tracks_its_ann_closer_at_t_equals_l():
    """At T = L the signed network's readout is nearer the ANN's logits, and agrees with the
    ANN's predictions more often, than the plain IF network's."""
    model = trained_digits("cnn", "qcfs", levels=4)
    x, _ = digits_tensors(train=False)
    with torch.no_grad():
        logits = model(x)
    converter = Converter(model)
    plain_net = converter.build("qcfs", negative_spikes=False)
    assert not any(n.negative_spikes for n in plain_net.neurons().values())
    results = {}
    for name, net in (("plain", plain_net), ("signed", converter.build("qcfs"))):
        out = net.simulate(x, 4).readout[-1]
        error = float((out - logits).norm() / logits.norm())
        agree = float((out.argmax(1) == logits.argmax(1)).float().mean())
        results[name] = (error, agree)
    assert results["signed"][0] < 0.8 * results["plain"][0], results
    assert results["signed"][1] > results["plain"][1], results


def test_qcfs_method_on_a_relu_ann_names_the_layer_and_the_method():
    model = trained_digits()
    assert "qcfs" not in applicable_methods(model)
    with pytest.raises(
        MethodNotApplicable,
        match=r"^method 'qcfs' needs an ANN trained with QCFS activations \(layer '2' is a ReLU\)",
    ):
        Converter(model).build("qcfs")


def test_qcfs_rejects_non_positive_levels():
    with pytest.raises(ValueError, match="levels"):
        QCFS(0)
