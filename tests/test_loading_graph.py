"""Rebuilding exported graphs from standard modules: every listed op, both IR forms, ONNX.

The rebuilt module must compute exactly what the user's model computes (any batch size), be made
of the modules conversion knows (check passes, prepare folds BatchNorm, the operation counters
count it), and refuse ops it cannot express by name.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikebridge.convert import check, prepare
from spikebridge.evaluation import count_ann_ops
from spikebridge.loading import UnsupportedOperationError, onnx_to_module, program_to_module


class EveryOpNet(nn.Module):
    """convolution, linear, batch norm 2d/1d, relu/relu_, leaky_relu, hardtanh, clamp, max and
    avg pooling, adaptive avg pooling, spatial mean, add, cat, view and dropout in one net."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU(inplace=True)
        self.side = nn.Conv2d(4, 4, 1, bias=False)
        self.fc = nn.Linear(8 * 2 * 2 + 8, 16)
        self.bn_fc = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.3)
        self.out = nn.Linear(16, 10)

    def forward(self, x):
        x = self.act(self.bn(self.conv(x)))
        y = F.relu(self.side(x))
        x = torch.cat([x, y], 1) + torch.cat([y, x], 1)
        x = F.leaky_relu(F.max_pool2d(x, 2), 0.1)
        pooled = x.mean((2, 3))
        x = F.adaptive_avg_pool2d(F.avg_pool2d(x, 1), (2, 2))
        x = torch.cat([x.view(x.size(0), -1), pooled], 1)
        x = self.drop(F.hardtanh(self.bn_fc(self.fc(x)), 0.0, 4.0))
        return self.out(x.clamp(min=0.0))


def _trained_stats(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def every_op_net() -> nn.Module:
    torch.manual_seed(0)
    return _trained_stats(EveryOpNet())


@pytest.mark.parametrize("decompose", [False, True], ids=["default-ir", "core-aten"])
def test_program_rebuilds_every_listed_op_exactly(every_op_net, decompose):
    program = torch.export.export(every_op_net, (torch.rand(2, 1, 8, 8),))
    if decompose:
        program = program.run_decompositions()  # convolution, addmm, _native_batch_norm...
    model = program_to_module(program, "EveryOpNet")
    x = torch.rand(7, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), every_op_net(x), atol=1e-5)
    kinds = {type(m) for m in model.modules()}
    for cls in (nn.Conv2d, nn.Linear, nn.BatchNorm2d, nn.BatchNorm1d, nn.ReLU, nn.LeakyReLU):
        assert cls in kinds, cls
    assert nn.MaxPool2d in kinds and nn.AdaptiveAvgPool2d in kinds and nn.Hardtanh in kinds
    assert check(model).ok
    prepared = prepare(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in prepared.modules())  # folded
    with torch.no_grad():
        assert torch.allclose(prepared(x), every_op_net(x), atol=1e-4)
    ops = count_ann_ops(model, x[:1])
    assert ops.macs > 0


def test_program_with_dynamic_batch(every_op_net):
    batch = torch.export.Dim("batch", min=2, max=512)
    program = torch.export.export(
        every_op_net, (torch.rand(4, 1, 8, 8),), dynamic_shapes=({0: batch},)
    )
    model = program_to_module(program)
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), every_op_net(x), atol=1e-5)


def test_onnx_rebuilds_every_listed_op_exactly(every_op_net, tmp_path):
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    path = tmp_path / "every.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(every_op_net, (torch.rand(2, 1, 8, 8),), path, dynamo=False)
    model = onnx_to_module(path)
    x = torch.rand(7, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), every_op_net(x), atol=1e-5)
    assert check(model).ok


def test_onnx_matmul_plus_bias_becomes_one_linear(tmp_path):
    """A MatMul followed by an Add of a constant (as Keras/JAX exporters write dense layers)."""
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed")
    from onnx import TensorProto, helper, numpy_helper

    torch.manual_seed(0)
    w1, b1 = torch.randn(8, 5), torch.randn(5)
    w2 = torch.randn(5, 3)
    inits = [
        numpy_helper.from_array(w1.numpy(), "w1"),
        numpy_helper.from_array(b1.numpy(), "b1"),
        numpy_helper.from_array(w2.numpy(), "w2"),
    ]
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"], axis=1),
        helper.make_node("MatMul", ["f", "w1"], ["m"]),
        helper.make_node("Add", ["m", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    path = tmp_path / "dense.onnx"
    onnx.save(helper.make_model(graph), path)
    model = onnx_to_module(path)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 2 and linears[0].bias is not None and linears[1].bias is None
    x = torch.rand(4, 2, 2, 2)
    expected = torch.relu(x.flatten(1) @ w1 + b1) @ w2
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)


class _Net(nn.Module):
    def __init__(self, body) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.body = body

    def forward(self, x):
        return self.body(self.conv(x))


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (lambda x: torch.cat([x, x], 0).flatten(1), "batch axis"),
        (lambda x: x.clamp(max=1.0).flatten(1), "only max"),
        (lambda x: x.reshape(-1, 16).relu(), "changes the batch axis"),
        (lambda x: (x * 2.0).relu().flatten(1), "unsupported operation mul"),
        (lambda x: x.mean(1), "batch or channel axis"),
    ],
    ids=["cat-batch", "clamp-max-only", "reshape-batch", "scaling", "channel-mean"],
)
def test_operations_that_cannot_convert_are_named(body, words):
    program = torch.export.export(_Net(body).eval(), (torch.rand(2, 1, 8, 8),))
    with pytest.raises(UnsupportedOperationError) as info:
        program_to_module(program, "UserNet")
    message = str(info.value)
    assert words in message and "UserNet" in message and "Fix:" in message
    assert "test_loading_graph.py:" in message  # the user's source line


@pytest.mark.parametrize("decompose", [False, True], ids=["default-ir", "core-aten"])
def test_pooling_a_flattened_tensor_is_named_in_both_ir_forms(decompose):
    """max_pool1d of [B, N] pools the batch axis as channels (torch's unbatched form); core ATen
    writes it as a 2-d pooling of [B, 1, N]: both must be refused by name, not crash."""
    body = lambda x: F.max_pool1d(x.flatten(1), 4)  # noqa: E731
    program = torch.export.export(_Net(body).eval(), (torch.rand(2, 1, 8, 8),))
    if decompose:
        program = program.run_decompositions()
    with pytest.raises(UnsupportedOperationError) as info:
        program_to_module(program, "UserNet")
    message = str(info.value)
    assert "max pooling" in message and "UserNet" in message and "Fix:" in message


def test_missing_onnx_extra_names_the_pip_command(tmp_path, monkeypatch):
    import sys

    from spikebridge.loading import ModelLoadError, load_model

    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ModelLoadError, match=r"pip install 'spikebridge\[onnx\]'"):
        load_model(path)
