"""Model-based normalisation (Diehl et al. 2015, SPEC 1.4.1): thresholds from the weights alone.

Diehl's rule sets lambda_l to the largest input a neuron of layer l can receive in one step when
every input neuron spikes at once, lambda_l = max_j sum_i max(0, W_l[j, i]) (with unit upstream
spikes), so that no neuron ever needs more than one spike per step. Here the rule is applied to
any traced network by upper-bound (interval) propagation through the fx graph of a prepared ANN:

- the input lies in [input_lower, input_bound] (images in [0, 1] by default);
- conv/linear: upper = sum W+ * upper_in + sum W- * lower_in + b, per output channel (W+ / W- are
  the positive / negative weights, summed over the kernel), and symmetrically for the lower bound;
- pooling, flatten, spatial means, concatenation and residual additions propagate the bounds
  (an addition adds them; a concatenation along channels concatenates them);
- a neuron's threshold is the upper bound of its input (the layer's maximum, or per channel with
  ``per_channel=True``); it then outputs at most one spike of amplitude theta per step, so its
  output lies in [0, theta] (or [-theta, theta] for a signed neuron, whose threshold also covers
  the negative side: theta >= alpha * (-lower), Kim 2020).

Spikes carry the amplitude of their threshold (SPEC 1.3, second form), so bounds are in ANN units
throughout and branches meeting at a junction need no common scale. The bounds are sound: on any
input within the input bounds, a neuron's input current per step never exceeds its threshold.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from ..activations import QCFS
from ..engine import graph as g
from ..engine.graph import MethodNotApplicable
from .methods import Scales

METHOD = "model"
_FLATTEN_METHODS = {"flatten", "view", "reshape"}
_PASS_METHODS = {"contiguous"}
_IGNORED_METHODS = {"size", "dim"}
_SPATIAL_POOL_FUNCTIONS = {
    F.avg_pool1d,
    F.avg_pool2d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
    *g.MAX_POOL_FUNCTIONS,
}


@dataclass
class Interval:
    """Bounds on a tensor [B, C, ...]: ``lower``/``upper`` have one entry per channel (dim 1), or
    a single entry for the whole tensor. ``channels`` is the size of dim 1 when known.

    After a channel-major flatten the same per-channel vectors describe the features (each channel
    spreads over consecutive features); a consumer expands them to its own width.
    """

    lower: Tensor
    upper: Tensor
    channels: int | None = None

    def hull(self) -> Interval:
        """One scalar interval containing every entry."""
        return Interval(self.lower.min().reshape(1), self.upper.max().reshape(1), self.channels)

    def with_zero(self) -> Interval:
        """The interval widened to contain 0 (zero padding, empty windows)."""
        return Interval(self.lower.clamp(max=0), self.upper.clamp(min=0), self.channels)


def _expand(values: Tensor, size: int, where: str) -> Tensor:
    """Per-channel bounds [n] -> [size] (broadcast a scalar; spread channels over features)."""
    n = values.numel()
    if n == size:
        return values
    if n == 1:
        return values.expand(size)
    if size % n == 0:
        return values.repeat_interleave(size // n)
    raise MethodNotApplicable(
        f"{where}: method {METHOD!r} cannot match bounds on {n} channels to {size} inputs; the "
        "layer's input is not a channel-major flattening of the previous layer's output"
    )


def _synaptic(layer: nn.Module, bound: Interval, where: str) -> Interval:
    """Bounds of conv/linear outputs, per output channel, from per-input-channel bounds."""
    bound = bound.with_zero()
    w = layer.weight.detach().float()
    if isinstance(layer, nn.Linear):
        fan_in, groups = layer.in_features, 1
        pos, neg = w.clamp(min=0), w.clamp(max=0)
    else:
        fan_in, groups = layer.in_channels, layer.groups
        pos = w.clamp(min=0).flatten(2).sum(2)  # [out, in/groups]
        neg = w.clamp(max=0).flatten(2).sum(2)
    lo = _expand(bound.lower.float(), fan_in, where)
    hi = _expand(bound.upper.float(), fan_in, where)
    out = w.shape[0]
    per_group = fan_in // groups
    group = torch.arange(out) // (out // groups)  # group of each output channel
    lo_in = lo.view(groups, per_group)[group]  # [out, in/groups]
    hi_in = hi.view(groups, per_group)[group]
    upper = (pos * hi_in + neg * lo_in).sum(1)
    lower = (pos * lo_in + neg * hi_in).sum(1)
    if layer.bias is not None:
        b = layer.bias.detach().float()
        upper, lower = upper + b, lower + b
    return Interval(lower, upper, out)


def _affine_norm(norm: nn.Module, bound: Interval, where: str) -> Interval:
    """An unfolded BatchNorm in eval mode: y = a * x + c per channel."""
    var = norm.running_var if norm.running_var is not None else torch.ones(norm.num_features)
    mean = norm.running_mean if norm.running_mean is not None else torch.zeros(norm.num_features)
    a = 1 / torch.sqrt(var.float() + norm.eps)
    c = -mean.float() * a
    if norm.affine:
        a, c = a * norm.weight.detach().float(), c * norm.weight.detach().float()
        c = c + norm.bias.detach().float()
    lo = _expand(bound.lower.float(), norm.num_features, where)
    hi = _expand(bound.upper.float(), norm.num_features, where)
    return Interval(
        torch.minimum(a * lo, a * hi) + c, torch.maximum(a * lo, a * hi) + c, norm.num_features
    )


def _threshold(activation: nn.Module, bound: Interval, per_channel: bool) -> Tensor:
    """The smallest threshold that keeps inputs per step within one spike (SPEC 1.4.1)."""
    upper = bound.upper.float()
    if isinstance(activation, nn.LeakyReLU):
        upper = torch.maximum(upper, -activation.negative_slope * bound.lower.float())
    layer = float(upper.max())
    layer = layer if layer > 0 else 1.0  # a layer that can never fire: any threshold will do
    if not per_channel:
        theta = torch.tensor(layer)
    else:
        theta = torch.where(upper > 0, upper, torch.tensor(layer))
    if isinstance(activation, (nn.ReLU6, nn.Hardtanh)):
        theta = theta.clamp(max=float(activation.max_val))  # the ANN clips there too
    elif isinstance(activation, QCFS):
        theta = theta.clamp(max=float(activation.lambda_.detach().abs()))
    return theta


def _neuron_output(activation: nn.Module, theta: Tensor, channels: int | None) -> Interval:
    upper = theta.reshape(-1)
    lower = -upper if isinstance(activation, nn.LeakyReLU) else torch.zeros_like(upper)
    return Interval(lower, upper, channels)


def _is_channel_flatten(node: fx.Node, mod: nn.Module | None) -> bool:
    """Whether ``node`` flattens [B, C, ...] to [B, C*...] keeping channel-major order."""
    if isinstance(mod, nn.Flatten):
        return mod.start_dim == 1 and mod.end_dim == -1
    if node.op == "call_function" and node.target is torch.flatten:
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        return start == 1 and end == -1
    if node.op == "call_method" and node.target == "flatten":
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        return start == 1 and len(node.args) <= 2
    if (node.op == "call_method" and node.target in ("view", "reshape")) or (
        node.op == "call_function" and node.target is torch.reshape
    ):
        shape = node.args[1:] if node.op == "call_method" else node.args[1:2]
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return len(shape) == 2 and shape[1] == -1
    return False


def _cat(bounds: list[Interval], dim: int) -> Interval:
    if dim == 1 and all(b.channels is not None for b in bounds):
        lower = torch.cat([_expand(b.lower, b.channels, "cat") for b in bounds])
        upper = torch.cat([_expand(b.upper, b.channels, "cat") for b in bounds])
        return Interval(lower, upper, sum(b.channels for b in bounds))
    hulls = [b.hull() for b in bounds]
    return Interval(
        torch.stack([h.lower for h in hulls]).min().reshape(1),
        torch.stack([h.upper for h in hulls]).max().reshape(1),
        bounds[0].channels if dim != 1 else None,
    )


def _add(a: Interval | float, b: Interval | float, where: str) -> Interval:
    if not isinstance(a, Interval):
        a, b = b, a
    if not isinstance(b, Interval):
        shift = torch.tensor(float(b))
        return Interval(a.lower + shift, a.upper + shift, a.channels)
    size = max(a.lower.numel(), b.lower.numel())
    lower = _expand(a.lower, size, where) + _expand(b.lower, size, where)
    upper = _expand(a.upper, size, where) + _expand(b.upper, size, where)
    return Interval(lower, upper, a.channels or b.channels)


def _unsupported(node: fx.Node) -> MethodNotApplicable:
    return MethodNotApplicable(
        f"{g.describe(node)}: method {METHOD!r} cannot bound the output of this operation; "
        "it propagates bounds through conv/linear, BatchNorm, pooling, flatten, addition and "
        "concatenation. Use a data-based method (max, percentile, channel) for this network"
    )


@torch.no_grad()
def model_based_norm(
    prepared: fx.GraphModule,
    input_bound: float = 1.0,
    input_lower: float = 0.0,
    per_channel: bool = False,
) -> Scales:
    """Model-based thresholds (Diehl et al. 2015) by upper-bound propagation; needs no data.

    Args:
        prepared: a prepared ANN (:func:`spikebridge.convert.prepare`), inputs [B, C, ...].
        input_bound: the largest input value (1 for images in [0, 1]).
        input_lower: the smallest input value (0 for images in [0, 1]).
        per_channel: one threshold per output channel instead of one per layer (Diehl's rule
            is per layer, the default).

    Returns:
        activation layer name -> threshold (0-d tensor, or [C] with ``per_channel``) such that
        a neuron's input current per step never exceeds its threshold for any input in
        [input_lower, input_bound]: no neuron ever needs more than one spike per step.
    """
    if not input_bound > input_lower:
        raise ValueError(
            f"model-based normalisation needs input_bound > input_lower, got "
            f"input_bound={input_bound}, input_lower={input_lower}"
        )
    values: dict[fx.Node, object] = {}
    scales: Scales = {}

    def arg(a):
        return values[a] if isinstance(a, fx.Node) else a

    for node in prepared.graph.nodes:
        where = g.describe(node)
        if node.op == "placeholder":
            values[node] = Interval(torch.tensor([input_lower]), torch.tensor([input_bound]))
            continue
        if node.op in ("output", "get_attr"):
            values[node] = None
            continue
        ins = [arg(a) for a in node.args]
        first = ins[0] if ins else None
        mod = g.module_of(prepared, node)
        if node.op == "call_module":
            if isinstance(mod, g.ACTIVATIONS):
                theta = _threshold(mod, first, per_channel)
                scales[str(node.target)] = theta
                values[node] = _neuron_output(mod, theta, first.channels)
            elif isinstance(mod, g.SYNAPTIC):
                values[node] = _synaptic(mod, first, where)
            elif isinstance(mod, g.NORMS):
                values[node] = _affine_norm(mod, first, where)
            elif isinstance(mod, g.AVG_POOLS):
                values[node] = first.with_zero()
            elif isinstance(mod, g.MAX_POOLS) or isinstance(mod, nn.Identity):
                values[node] = first
            elif isinstance(mod, g.SHAPE_MODULES):
                values[node] = first if _is_channel_flatten(node, mod) else first.hull()
            else:
                raise _unsupported(node)
        elif node.op == "call_function":
            fn = node.target
            if fn in g.ADD_FUNCTIONS:
                values[node] = _add(ins[0], ins[1], where)
            elif fn in (torch.cat, torch.concat):
                dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
                values[node] = _cat([arg(a) for a in node.args[0]], dim)
            elif fn in _SPATIAL_POOL_FUNCTIONS or fn is torch.mean:
                values[node] = first.with_zero()
            elif fn in g.SHAPE_FUNCTIONS:
                values[node] = first if _is_channel_flatten(node, None) else first.hull()
            elif fn in (operator.getitem, getattr):
                values[node] = first.hull() if isinstance(first, Interval) else None
            else:
                raise _unsupported(node)
        elif node.op == "call_method":
            if node.target in ("add", "add_"):
                values[node] = _add(ins[0], ins[1], where)
            elif node.target in _FLATTEN_METHODS:
                values[node] = first if _is_channel_flatten(node, None) else first.hull()
            elif node.target in _PASS_METHODS or node.target == "mean":
                values[node] = first
            elif node.target in g.SHAPE_METHODS or node.target in _IGNORED_METHODS:
                values[node] = first.hull() if node.target not in _IGNORED_METHODS else None
            else:
                raise _unsupported(node)
    return scales


__all__ = ["Interval", "model_based_norm"]
