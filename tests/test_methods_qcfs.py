"""Conversion-aware training with QCFS (Bu et al. 2022, SPEC 1.8) and its conversion."""

from __future__ import annotations

import pytest
import torch
from test_methods_fixtures import digits_tensors, trained_digits

from spikebridge.activations import QCFS
from spikebridge.convert import Converter, MethodNotApplicable, applicable_methods
from spikebridge.neurons import IFNeuron


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
    network = Converter(model).build("qcfs")  # data-free: theta = lambda
    lambdas = [m.lambda_.detach().abs() for m in model.modules() if isinstance(m, QCFS)][:-1]
    neurons = list(network.neurons().values())
    assert all(n.initial_potential == 0.5 and n.reset == "subtract" for n in neurons)
    assert all(torch.allclose(n.threshold, lam) for n, lam in zip(neurons, lambdas))
    with torch.no_grad():
        ann = float((model(x).argmax(1) == y).float().mean())
    snn = float(network.simulate(x, 4).accuracy(y)[-1])
    assert snn >= ann - 0.03, (snn, ann)


def test_qcfs_method_on_a_relu_ann_names_the_layer_and_the_method():
    model = trained_digits()
    assert "qcfs" not in applicable_methods(model)
    with pytest.raises(MethodNotApplicable, match=r"^2: method 'qcfs' needs an ANN trained with"):
        Converter(model).build("qcfs")


def test_qcfs_rejects_non_positive_levels():
    with pytest.raises(ValueError, match="levels"):
        QCFS(0)
