"""The conversion route: constraint check, preparation, and the SNN's convergence to the ANN."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from spikebridge import IFNeuron
from spikebridge.convert import (
    BLOCKS,
    COSTS,
    ConversionError,
    Converter,
    check,
    convert_model,
    prepare,
)
from spikebridge.models import build_model
from spikebridge.normalization import activation_layers


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            m.bias.data.copy_(0.4 * torch.rand(n, generator=gen) - 0.2)
    return model.eval()


@pytest.mark.parametrize(
    "name, factory",
    [
        ("vgg11", lambda: build_model("vgg11", 10, 3, 32, width=0.125)),
        ("resnet20", lambda: build_model("resnet20", 10, 3, 32, width=0.5)),
        ("torchvision:resnet18", lambda: torchvision.models.resnet18(num_classes=10)),
    ],
)
def test_max_norm_snn_converges_to_ann(name, factory):
    """Time-averaged SNN output -> ANN output (reset by subtraction, max norm on the same inputs)."""
    torch.manual_seed(0)
    model = randomize_batchnorm(factory())
    x = torch.rand(6, 3, 32, 32)
    converter = Converter(model, [(x, None)], maxpool="avg")
    with torch.no_grad():
        ann = converter.prepared_(x)
    sim = converter.build("max", reset="subtract").simulate(x, 512)
    err = {t: float((sim.readout[t - 1] - ann).norm() / ann.norm()) for t in (64, 512)}
    assert err[512] < 0.05, err
    assert err[512] < 0.5 * err[64], err


def test_prepare_folds_batchnorm_and_keeps_the_function():
    model = randomize_batchnorm(build_model("cnn", 10, 1, 8, width=0.5))
    gm = prepare(model)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in gm.modules())
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x), rtol=1e-4, atol=1e-5)
    assert model.training is False and any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


class FunctionalNet(nn.Module):
    """ReLU in every style a user writes it, a module used twice, dropout and a softmax at the end."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.c3 = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = self.act(self.c2(x))
        x = torch.relu(self.c3(x) + x)
        x = self.act(x).relu()
        x = F.avg_pool2d(x, 2)
        x = self.drop(x.view(x.size(0), -1))
        return F.softmax(self.fc(x), dim=1)


def test_prepare_gives_each_activation_call_site_its_own_layer():
    model = FunctionalNet().eval()
    gm = prepare(model)
    acts = activation_layers(gm)
    assert len(acts) == 5 and len({id(m) for m in acts.values()}) == 5
    x = torch.rand(3, 1, 8, 8)
    with (
        torch.no_grad()
    ):  # softmax dropped: same argmax, logits equal the model's pre-softmax output
        assert torch.equal(gm(x).argmax(1), model(x).argmax(1))
    snn = Converter(model, [(x, None)]).build("max")
    assert sum(isinstance(m, IFNeuron) for m in snn.modules()) == 5


def test_check_reports_layer_rule_consequence_and_fix():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.Sigmoid(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.LayerNorm(36),
        nn.Linear(36, 2),
    )
    report = check(model)
    by_layer = {v.layer: v for v in report.violations}
    assert by_layer["1"].consequence == BLOCKS and "Sigmoid" in by_layer["1"].rule
    assert by_layer["2"].consequence == COSTS and "AvgPool" in by_layer["2"].fix
    assert by_layer["4"].consequence == BLOCKS
    assert not report.ok
    frame = report.to_frame()
    assert list(frame.columns[:4]) == ["layer", "rule", "consequence", "fix"]


def test_check_passes_a_conversion_friendly_cnn():
    report = check(build_model("cnn", 10, 1, 28))
    assert report.ok and not report.violations


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2, 2)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        y = y * torch.sigmoid(y)  # a gating product: not rate-codable
        return self.fc(y.mean((2, 3)))


def test_unsupported_operation_is_an_error_naming_the_node():
    with pytest.raises(ConversionError) as err:
        prepare(Gated())
    message = str(err.value)
    assert "mul" in message and "sigmoid" in message and "Fix" in message


def test_nan_weights_are_an_error_naming_the_parameter():
    model = build_model("cnn", 10, 1, 8, width=0.25)
    model[3].weight.data[0, 0, 0, 0] = float("nan")
    with pytest.raises(ConversionError, match=r"'3\.weight'.*NaN"):
        prepare(model)


def test_empty_calibration_data_is_an_error():
    model = build_model("cnn", 10, 1, 8, width=0.25).eval()
    with pytest.raises(ValueError, match="calibration data is empty"):
        convert_model(model, [], method="percentile")


def test_calibration_shape_mismatch_names_the_shapes():
    model = build_model("cnn", 10, 1, 8, width=0.25).eval()
    with pytest.raises(ValueError, match=r"\(2, 3, 8, 8\).*1 input"):
        convert_model(model, [(torch.rand(2, 3, 8, 8), None)], method="max")


@pytest.mark.parametrize("steps", [0, -3])
def test_nonpositive_timesteps_are_an_error(steps):
    model = build_model("cnn", 10, 1, 8, width=0.25).eval()
    snn = convert_model(model, [(torch.rand(4, 1, 8, 8), None)], method="max")
    with pytest.raises(ValueError, match="timesteps must be a positive integer"):
        snn.simulate(torch.rand(2, 1, 8, 8), steps)


def test_maxpool_avg_replacement_warns_that_the_function_changes():
    model = build_model("cnn", 10, 1, 8, width=0.25, pool="max").eval()
    with pytest.warns(UserWarning, match="changes the network's function"):
        gm = prepare(model, maxpool="avg")
    assert not any(isinstance(m, nn.MaxPool2d) for m in gm.modules())


def test_conversion_leaves_the_ann_untouched(trained_digits_cnn, digits_loaders):
    before = copy.deepcopy(trained_digits_cnn.state_dict())
    convert_model(trained_digits_cnn, digits_loaders[0], method="channel")
    after = trained_digits_cnn.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_converted_digits_cnn_reaches_ann_accuracy(trained_digits_cnn, digits_loaders):
    """Real data: channel-wise 99.9% conversion of a trained CNN is within 1 point of the ANN at T=32."""
    from spikebridge import evaluate

    train, test = digits_loaders
    ann = float(evaluate(trained_digits_cnn, test).accuracy[0])
    assert ann > 0.9
    snn = convert_model(trained_digits_cnn, train, method="channel")
    acc = evaluate(snn, test, 32).accuracy
    assert acc[31] >= ann - 0.01
    assert acc[31] > acc[1]  # accuracy grows with latency
