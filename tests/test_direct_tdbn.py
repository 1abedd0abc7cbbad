"""tdBN (SPEC 2.3) and BN-scale fusion (SPEC 2.4)."""

import math

import pytest
import torch
from torch import nn

from spikebridge.direct import (
    ThresholdDependentBatchNorm1d,
    ThresholdDependentBatchNorm2d,
    build_direct_snn,
    fuse_norms,
    tdbn,
)
from spikebridge.engine.neurons import TimeAware


def test_tdbn_normalises_over_time_batch_and_space():
    torch.manual_seed(0)
    steps, batch = 3, 4
    x = torch.randn(steps, batch, 5, 6, 6) * 2 + 1
    norm = ThresholdDependentBatchNorm2d(5, alpha=1 / math.sqrt(2), threshold=0.5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    y = norm(x.reshape(steps * batch, 5, 6, 6)).reshape_as(x)
    mean = x.mean(dim=(0, 1, 3, 4), keepdim=True)
    var = x.var(dim=(0, 1, 3, 4), unbiased=False, keepdim=True)
    x_hat = norm.alpha * norm.threshold * (x - mean) / torch.sqrt(var + norm.eps)
    expected = norm.weight.view(1, 1, -1, 1, 1) * x_hat + norm.bias.view(1, 1, -1, 1, 1)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norm.running_mean, 0.1 * mean.flatten())


def test_tdbn_1d_and_eval_uses_running_statistics():
    norm = ThresholdDependentBatchNorm1d(4, alpha=1.0, threshold=0.5)
    x = torch.randn(32, 4) * 3 + 2
    for _ in range(50):
        norm(x)
    norm.eval()
    y = norm(x)
    torch.testing.assert_close(y.mean(0), torch.zeros(4), atol=0.05, rtol=0)
    torch.testing.assert_close(y.std(0, unbiased=False), torch.full((4,), 0.5), atol=0.05, rtol=0)


def test_tdbn_factory_and_bad_arguments():
    assert isinstance(tdbn(3, 1), ThresholdDependentBatchNorm1d)
    assert isinstance(tdbn(3, 2), TimeAware)
    with pytest.raises(ValueError, match="dims"):
        tdbn(3, 3)
    with pytest.raises(ValueError, match="alpha"):
        ThresholdDependentBatchNorm2d(3, alpha=0)


def _trained_like(arch: str, width: float) -> nn.Module:
    torch.manual_seed(1)
    net = build_direct_snn(arch, 10, 1, 8, width=width)
    net.train()
    gen = torch.Generator().manual_seed(2)
    for _ in range(3):  # populate running statistics
        net.reset()
        net(net.encode(torch.rand(16, 1, 8, 8, generator=gen), 4))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (ThresholdDependentBatchNorm1d, ThresholdDependentBatchNorm2d)):
                m.weight.uniform_(0.6, 1.6, generator=gen)
                m.bias.uniform_(-0.2, 0.3, generator=gen)
    return net.eval()


@pytest.mark.parametrize("arch, width", [("cnn", 0.25), ("resnet20", 0.5), ("resnet19", 0.0625)])
def test_fused_network_equals_unfused_in_spikes_and_outputs(arch, width):
    net = _trained_like(arch, width)
    fused = fuse_norms(net)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    a = net.simulate(x, 6, record_spikes=True)
    b = fused.simulate(x, 6, record_spikes=True)
    assert a.spikes.keys() == b.spikes.keys() and a.spikes
    assert sum(int(v.sum()) for v in a.spikes.values()) > 0
    for name in a.spikes:
        assert torch.equal(a.spikes[name], b.spikes[name]), name
    assert torch.allclose(a.readout, b.readout, atol=1e-5)
    # per-step outputs of the eval-mode forward too
    net.reset()
    fused.reset()
    seq = net.encode(x, 6)
    with torch.no_grad():
        assert torch.allclose(net(seq), fused(seq), atol=1e-5)


def test_fusion_rejects_a_norm_without_a_preceding_layer():
    from spikebridge.direct import LIFNeuron
    from spikebridge.engine.network import SpikingNetwork

    net = SpikingNetwork(nn.Sequential(tdbn(1, 2), LIFNeuron(), nn.Flatten(), nn.Linear(64, 2)))
    with pytest.raises(ValueError, match="cannot fuse norm layer"):
        fuse_norms(net)
