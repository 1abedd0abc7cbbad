"""The ATen operators that can be rebuilt (:data:`HANDLERS`), and the joins, shapes and
pass-throughs among them (add, cat, reshape, dropout, identity, tuple items).

The layers' handlers live in :mod:`.aten_layers`; what a handler receives in :mod:`.aten_calls`.
An operator absent from :data:`HANDLERS` and :data:`IGNORED` is reported as unsupported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import fx

from . import aten_layers as layers
from .aten_calls import Deferred, Handler, ProgramNode, arg, hint, on_tensor
from .problems import BROKEN, Site
from .program_ir import TensorMeta

if TYPE_CHECKING:
    from .exported import ProgramMapper

# operators that only check or query shapes: they add nothing to the rebuilt graph
IGNORED = frozenset(
    {
        "sym_size",
        "sym_numel",
        "sym_stride",
        "_assert_tensor_metadata",
        "_assert_scalar",
        "sym_constrain_range",
        "sym_constrain_range_for_size",
        "_assert_async",
    }
)


# -- joins, shapes and pass-throughs --------------------------------------------------------


def add(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    if arg(node, 2, "alpha", 1) != 1:
        return m.builder.problem(site, "a scaled addition (alpha != 1)", "use a plain sum")
    return m.builder.add(site, m.value(node.args[0]), m.value(node.args[1]))


def cat(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    tensors = m.value(node.args[0])
    if any(t is BROKEN for t in tensors):
        return BROKEN
    return m.builder.cat(site, tensors, arg(node, 1, "dim", 0))


@on_tensor
def reshape(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    val = node.val
    if val is None:
        return m.builder.problem(site, "a reshape of unknown shape")
    before = m.builder.shape(x)
    after = [hint(s) for s in val.shape]
    if after and before and after[0] != before[0] and _same_batch(node, val):
        after[0] = before[0]  # the example batch differs from the exported one
    return m.builder.reshape(site, x, after)


def _same_batch(node: ProgramNode, val: TensorMeta) -> bool:
    """Whether a reshape's output keeps the input's batch axis (compare the exported shapes)."""
    source = node.args[0]
    src = source.val if isinstance(source, ProgramNode) else None
    if src is None or not val.shape or not src.shape:
        return False
    return str(val.shape[0]) == str(src.shape[0])


@on_tensor
def dropout(m: ProgramMapper, node: ProgramNode, site: Site, x: fx.Node) -> Any:
    p = arg(node, 1, "p", 0.5)
    return m.builder.dropout(site, x, p, m.layer_name(node))


def native_dropout(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    out = dropout(m, node, site)
    mask = Deferred("the dropout mask is used", "use dropout's output only")
    return (out, mask) if out is not BROKEN else BROKEN


def identity(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    return m.value(node.args[0])


def getitem(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
    items = m.value(node.args[0])
    if not isinstance(items, tuple):
        return m.builder.problem(site, "indexing a tensor of the network")
    item = items[node.args[1]]
    if isinstance(item, Deferred):
        return m.builder.problem(site, item.reason, item.fix)
    return item


def _names(handler: Handler, *names: str) -> dict[str, Handler]:
    return dict.fromkeys(names, handler)


HANDLERS: dict[str, Handler] = {
    **_names(layers.conv, "conv1d", "conv2d"),
    "convolution": layers.convolution,
    "linear": layers.linear,
    "addmm": layers.addmm,
    **_names(layers.mm, "mm", "matmul"),
    **_names(layers.transpose, "t", "permute", "transpose", "numpy_T"),
    "batch_norm": layers.batch_norm,
    "_native_batch_norm_legit_no_training": layers.batch_norm_legit,
    **_names(layers.relu, "relu", "relu_"),
    **_names(layers.leaky_relu, "leaky_relu", "leaky_relu_"),
    **_names(layers.hardtanh, "hardtanh", "hardtanh_"),
    "relu6": layers.relu6,
    **_names(layers.clamp, "clamp", "clamp_", "clip", "clip_"),
    **_names(layers.max_pool, "max_pool1d", "max_pool2d"),
    "max_pool2d_with_indices": layers.max_pool_with_indices,
    **_names(layers.avg_pool, "avg_pool1d", "avg_pool2d"),
    **_names(layers.adaptive_avg_pool, "adaptive_avg_pool1d", "adaptive_avg_pool2d"),
    "_adaptive_avg_pool2d": layers.adaptive_avg_pool,
    "mean": layers.mean,
    **_names(add, "add", "add_"),
    **_names(cat, "cat", "concat"),
    **_names(reshape, "view", "reshape", "_unsafe_view", "flatten", "squeeze", "squeeze_"),
    "unsqueeze": reshape,
    **_names(dropout, "dropout", "dropout_", "feature_dropout", "feature_dropout_"),
    **_names(dropout, "alpha_dropout", "feature_alpha_dropout"),
    "native_dropout": native_dropout,
    **_names(identity, "clone", "contiguous", "alias", "detach", "detach_", "lift_fresh_copy"),
    "getitem": getitem,
}
"""The ATen operators that can be rebuilt, by name (see :func:`.aten_calls.op_name`)."""


__all__ = ["HANDLERS", "IGNORED"]
