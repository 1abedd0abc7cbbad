"""Reading one call of an exported program's ATen graph, for the handlers of its operators.

The handlers (:mod:`.aten_layers`, :mod:`.aten_ops`) take the
:class:`~spikebridge.loading.exported.ProgramMapper` (values of earlier nodes, stored weights,
layer names), the node and its :class:`~spikebridge.loading.problems.Site`, and return the node's
value: an fx node of the new graph, a :class:`Weight`, a tuple, or ``BROKEN`` after recording a
problem. Here: argument access, stored weights, tuple elements whose use is refused, and
:func:`on_tensor` for handlers whose first argument must be a tensor of the network.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import fx

from .problems import Site
from .program_ir import ProgramNode, SymSize, Unreadable, Weight

if TYPE_CHECKING:
    from .exported import ProgramMapper

Handler = Callable[["ProgramMapper", ProgramNode, Site], Any]


class Deferred:
    """A tuple element whose use is a problem (max-pool indices, dropout masks)."""

    def __init__(self, reason: str, fix: str) -> None:
        self.reason = reason
        self.fix = fix


def op_name(target: Any) -> str:
    """The ATen name of a call's target (``aten.conv2d.default`` -> ``conv2d``)."""
    if isinstance(target, str):
        return target
    if isinstance(target, torch._ops.OpOverload):
        return target._opname
    return getattr(target, "__name__", str(target))


def arg(node: ProgramNode, index: int, name: str, default: Any = None) -> Any:
    """Argument ``index`` of ``node``, or its keyword ``name``, or ``default``."""
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def hint(size: Any) -> int:
    """A size of an exported shape as an int (a symbolic size: its example value, else 2)."""
    if isinstance(size, SymSize):
        return size.hint if size.hint is not None else 2
    try:
        return int(size)
    except (TypeError, ValueError):
        node = getattr(size, "node", None)
        value = getattr(node, "hint", None)
        return int(value) if value is not None else 2


def on_tensor(handler: Callable[[ProgramMapper, ProgramNode, Site, fx.Node], Any]) -> Handler:
    """A handler whose first argument must be a tensor of the network; it receives it as ``x``
    (a constant there is recorded as a problem)."""

    @functools.wraps(handler)
    def checked(m: ProgramMapper, node: ProgramNode, site: Site) -> Any:
        x = m.tensor_input(node, site)
        if x is None:
            return m.builder.constant_input(site)
        return handler(m, node, site, x)

    return checked


__all__ = [
    "Deferred",
    "Handler",
    "ProgramNode",
    "Unreadable",
    "Weight",
    "arg",
    "hint",
    "on_tensor",
    "op_name",
]
