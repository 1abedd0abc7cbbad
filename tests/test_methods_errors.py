"""Bad input to the conversion methods: errors name the layer, the method and both shapes."""

from __future__ import annotations

import pytest
import torch
from test_methods_fixtures import trained_digits

from spikebridge.convert import Converter, MethodNotApplicable


def test_calibration_data_of_the_wrong_size_names_both_shapes():
    model = trained_digits()  # trained on [B, 1, 8, 8]
    converter = Converter(model, torch.rand(4, 1, 12, 12))
    with pytest.raises(
        ValueError,
        match=r"\(4, 1, 12, 12\).*\[B, 1, \.\.\.\].*expects input of shape \[\*, \d+\] but receives \(1, \d+\)",
    ):
        converter.build("percentile")


def test_calibration_data_with_the_wrong_channels_names_both_shapes():
    converter = Converter(trained_digits(), torch.rand(4, 3, 8, 8))
    with pytest.raises(
        ValueError,
        match=r"\(4, 3, 8, 8\).*expects input of shape \[B, 1, H, W\] but receives \(1, 3, 8, 8\)",
    ):
        converter.build("max")


def test_unknown_method_lists_the_methods():
    with pytest.raises(ValueError, match="unknown method 'robust'.*spike-norm"):
        Converter(trained_digits(), torch.rand(4, 1, 8, 8)).build("robust")


def test_every_inapplicable_method_names_layer_and_method():
    x = torch.rand(8, 1, 8, 8)
    with pytest.raises(MethodNotApplicable, match=r"^method 'qcfs' .*\(layer '\S+' is a "):
        Converter(trained_digits(), x).build("qcfs")
