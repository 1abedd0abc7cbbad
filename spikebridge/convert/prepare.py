"""Preparing an ANN for conversion: the automatic fixes of :func:`check`.

``prepare(model)`` returns a traced copy in eval mode where
- BatchNorm is folded into the preceding conv/linear layer (SPEC 1.2, torch.nn.utils.fusion);
- dropout, identities and a final softmax are removed, and a final activation is dropped so the
  output layer is read out without spiking (rule 6);
- every activation is its own module (functional ``F.relu``/``torch.relu``/``x.relu()`` calls and
  modules called at several places are given one module per call site), so each becomes one neuron
  layer;
- functional max-pooling becomes a module, and with ``maxpool="avg"`` every max-pool is replaced by
  average pooling (a warning says this changes the function).
The original model is left untouched.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from ..engine import graph as g
from .check import check

MAXPOOL_MODES = ("spiking", "avg")


def _replace_with_input(gm: fx.GraphModule, node: fx.Node) -> None:
    node.replace_all_uses_with(node.args[0])
    gm.graph.erase_node(node)


def _unique_name(gm: fx.GraphModule, base: str) -> str:
    base = base.replace(".", "_")
    name, i = base, 0
    while hasattr(gm, name):
        i += 1
        name = f"{base}_{i}"
    return name


def _insert_module(
    gm: fx.GraphModule, node: fx.Node, module: nn.Module, base: str, args
) -> fx.Node:
    name = _unique_name(gm, base)
    gm.add_submodule(name, module)
    with gm.graph.inserting_after(node):
        new = gm.graph.call_module(name, args)
    node.replace_all_uses_with(new)
    gm.graph.erase_node(node)
    return new


def _check_finite(model: nn.Module) -> None:
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise g.ConversionError(
                f"parameter {name!r} holds NaN or infinite values; the model cannot be converted "
                "(check the checkpoint or the training run that produced it)"
            )


def _fold_batchnorms(gm: fx.GraphModule) -> None:
    for node in list(gm.graph.nodes):
        bn = g.module_of(gm, node)
        if not isinstance(bn, g.NORMS) or not node.args:
            continue
        producer = node.args[0]
        layer = g.module_of(gm, producer) if isinstance(producer, fx.Node) else None
        if (
            not isinstance(layer, g.SYNAPTIC)
            or len(producer.users) != 1
            or not bn.track_running_stats
        ):
            continue  # kept as a per-channel affine layer (reported by check)
        fuse = fuse_linear_bn_eval if isinstance(layer, nn.Linear) else fuse_conv_bn_eval
        g.set_submodule(gm, producer.target, fuse(layer, bn))
        _replace_with_input(gm, node)


def _maxpool_module(node: fx.Node) -> nn.Module:
    fn, args, kw = node.target, list(node.args[1:]), dict(node.kwargs)
    if fn in (torch.nn.functional.adaptive_max_pool1d, torch.nn.functional.adaptive_max_pool2d):
        size = args[0] if args else kw["output_size"]
        return (
            nn.AdaptiveMaxPool2d
            if fn is torch.nn.functional.adaptive_max_pool2d
            else nn.AdaptiveMaxPool1d
        )(size)
    cls = nn.MaxPool2d if fn is torch.nn.functional.max_pool2d else nn.MaxPool1d
    names = ["kernel_size", "stride", "padding", "dilation", "ceil_mode"]
    kw.pop("return_indices", None)
    return cls(**dict(zip(names, args)), **kw)


def _avg_for_max(pool: nn.Module) -> nn.Module:
    if isinstance(pool, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveAvgPool2d(pool.output_size)
    if isinstance(pool, nn.AdaptiveMaxPool1d):
        return nn.AdaptiveAvgPool1d(pool.output_size)
    if pool.dilation not in (1, (1, 1)):
        raise g.ConversionError(
            f"max-pool with dilation {pool.dilation} has no average-pool counterpart; "
            "use maxpool='spiking'"
        )
    cls = nn.AvgPool2d if isinstance(pool, nn.MaxPool2d) else nn.AvgPool1d
    return cls(pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode, count_include_pad=False)


def _activation_modules(gm: fx.GraphModule) -> None:
    """Give every activation call site a module of its own."""
    used: set[str] = set()
    for node in list(gm.graph.nodes):
        if node.op == "call_module" and isinstance(g.module_of(gm, node), g.ACTIVATIONS):
            if node.target in used:
                clone = copy.deepcopy(g.module_of(gm, node))
                _insert_module(gm, node, clone, f"{node.target}_site", node.args[:1])
            used.add(node.target)
        elif (node.op == "call_function" and node.target in g.RELU_FUNCTIONS) or (
            node.op == "call_method" and node.target in g.RELU_METHODS
        ):
            _insert_module(gm, node, nn.ReLU(), node.name, node.args[:1])


def prepare(model: nn.Module, maxpool: str = "spiking") -> fx.GraphModule:
    """Trace a copy of ``model`` and apply the automatic fixes (see module docstring).

    Raises :class:`ConversionError` naming every layer that blocks conversion, and for NaN or
    infinite weights.
    """
    if maxpool not in MAXPOOL_MODES:
        raise ValueError(f"maxpool must be one of {MAXPOOL_MODES}, got {maxpool!r}")
    _check_finite(model)
    report = check(model)
    if not report.ok:
        details = "\n".join(f"- {v.layer}: {v.rule}. Fix: {v.fix}" for v in report.blocking)
        raise g.ConversionError(f"{report.model} cannot be converted:\n{details}")
    gm = g.trace(copy.deepcopy(model).eval())
    for node in list(gm.graph.nodes):
        mod = g.module_of(gm, node)
        if isinstance(mod, (*g.DROPOUTS, nn.Identity)) or (
            node.op == "call_function" and node.target in g.DROPOUT_FUNCTIONS
        ):
            _replace_with_input(gm, node)
        elif node.op == "call_function" and node.target in g.MAX_POOL_FUNCTIONS:
            _insert_module(gm, node, _maxpool_module(node), "maxpool", node.args[:1])
    _strip_output_tail(gm)
    _fold_batchnorms(gm)
    _activation_modules(gm)
    if maxpool == "avg":
        for node in list(gm.graph.nodes):
            mod = g.module_of(gm, node)
            if isinstance(mod, g.MAX_POOLS):
                warnings.warn(
                    f"{node.target}: max-pooling replaced by average pooling; this changes the "
                    "network's function (use maxpool='spiking' to keep it)",
                    stacklevel=2,
                )
                g.set_submodule(gm, node.target, _avg_for_max(mod))
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm.eval()


def _strip_output_tail(gm: fx.GraphModule) -> None:
    """Drop a final softmax and a final activation: the output layer is read out, not spiked."""
    output = next(n for n in gm.graph.nodes if n.op == "output")
    while True:
        last = output.args[0]
        if not isinstance(last, fx.Node) or len(last.users) != 1:
            return
        mod = g.module_of(gm, last)
        is_tail = (
            isinstance(mod, (*g.OUTPUT_ONLY, *g.ACTIVATIONS, *g.DROPOUTS, nn.Identity))
            or (
                last.op == "call_function"
                and last.target in (g.OUTPUT_FUNCTIONS | g.RELU_FUNCTIONS)
            )
            or (
                last.op == "call_method"
                and last.target in ("softmax", "log_softmax", *g.RELU_METHODS)
            )
        )
        if not is_tail:
            return
        _replace_with_input(gm, last)
