"""BN-scale fusion for inference (Zheng et al. 2021, SPEC 2.4).

Each (td)BN that directly follows a conv or linear layer is folded into it:

    W' = lambda * alpha * V_th * W / sqrt(sigma^2 + eps)
    B' = lambda * alpha * V_th * (B - mu) / sqrt(sigma^2 + eps) + beta

with the running statistics (mu, sigma^2). The result has no normalisation layers, stays fully
spiking (the neurons see the same currents), and in eval mode gives the same spikes and outputs
as the unfused network. Plain BatchNorm (alpha * V_th = 1) is fused the same way.
"""

from __future__ import annotations

import copy

import torch
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

from ..engine.graph import SpikingTracer, set_submodule
from ..engine.network import SpikingNetwork
from .tdbn import TDBN_TYPES

_FUSIBLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


class _NormLeafTracer(SpikingTracer):
    """Keeps neurons and every BatchNorm (including tdBN) as leaf modules."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, _BatchNorm) or super().is_leaf_module(m, module_qualified_name)


def _effective_norm(norm: _BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of the affine transform after normalisation: (lambda * alpha * V_th, beta)."""
    if isinstance(norm, TDBN_TYPES):
        weight = norm.effective_weight()
    elif norm.weight is not None:
        weight = norm.weight
    else:
        weight = torch.ones(norm.num_features, device=norm.running_mean.device)
    bias = norm.bias if norm.bias is not None else torch.zeros_like(weight)
    return weight.detach(), bias.detach()


def fuse_layer(layer: nn.Module, norm: _BatchNorm) -> nn.Module:
    """A copy of ``layer`` (Conv or Linear) with ``norm`` (its running statistics) folded in."""
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError(
            f"{type(norm).__name__} has no running statistics (track_running_stats=False) and "
            "cannot be fused; train it with running statistics"
        )
    weight, bias = _effective_norm(norm)
    fused = copy.deepcopy(layer)
    if isinstance(layer, nn.Linear):
        w, b = fuse_linear_bn_weights(
            layer.weight, layer.bias, norm.running_mean, norm.running_var, norm.eps, weight, bias
        )
    else:
        w, b = fuse_conv_bn_weights(
            layer.weight, layer.bias, norm.running_mean, norm.running_var, norm.eps, weight, bias
        )
    fused.weight = nn.Parameter(w.detach().clone())
    fused.bias = nn.Parameter(b.detach().clone())
    return fused


def fuse_module(module: nn.Module) -> fx.GraphModule:
    """Trace ``module`` (neurons and norms as leaves) and fold every norm into the layer before it.

    Raises ValueError naming the norm layer when one does not directly follow a conv/linear layer
    that feeds nothing else.
    """
    source = copy.deepcopy(module)
    tracer = _NormLeafTracer()
    graph = tracer.trace(source)
    gm = fx.GraphModule(source, graph, type(module).__name__ + "Fused")
    modules = dict(gm.named_modules())
    calls: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], _BatchNorm):
            continue
        prev = node.args[0] if node.args else None
        ok = (
            isinstance(prev, fx.Node)
            and prev.op == "call_module"
            and isinstance(modules[prev.target], _FUSIBLE)
            and len(prev.users) == 1
            and calls[prev.target] == 1
        )
        if not ok:
            raise ValueError(
                f"cannot fuse norm layer {node.target!r}: it does not directly follow a conv or "
                "linear layer whose output feeds only this norm"
            )
        set_submodule(gm, prev.target, fuse_layer(modules[prev.target], modules[node.target]))
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


def fuse_norms(network: SpikingNetwork) -> SpikingNetwork:
    """A copy of ``network`` without norm layers (SPEC 2.4), equal to it in eval mode.

    The copy keeps the encoder, chunk size and the names of every neuron layer, so spike
    counts of the fused and unfused networks line up layer by layer. The original's weights are
    untouched (its neuron state is reset).
    """
    if not isinstance(network, SpikingNetwork):
        raise TypeError(f"fuse_norms expects a SpikingNetwork, got {type(network).__name__}")
    network.reset()  # neuron state is transient and may hold an autograd graph
    fused = copy.deepcopy(network)
    fused.module = fuse_module(fused.module)
    return fused.eval()


__all__ = ["fuse_layer", "fuse_module", "fuse_norms"]
