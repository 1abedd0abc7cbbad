"""Checks of a NIR graph as it is read (:func:`~spikebridge.interop.import_nir`): metadata
values that must be there and be numbers, node parameters a network can run (finite weights,
thresholds >= 0, time constants > 0), and a probe input run through each node so a node that
does not fit its input is refused at import, naming it."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import torch
from torch import nn

from .nir_metadata import KEY


class NIRImportError(ValueError):
    """The NIR graph cannot be read into a SpikingNetwork; the message names the node."""


_MISSING = object()


def fact(facts: dict[str, Any], key: str, name: str, default: Any = _MISSING) -> Any:
    """``facts[key]``, or ``default``; NIRImportError naming the node and the key if absent."""
    if key in facts:
        return facts[key]
    if default is not _MISSING:
        return default
    raise NIRImportError(
        f"NIR node {name!r}: its {KEY} metadata lacks {key!r}; the file was not written by "
        "spikebridge's export or was edited (read it with use_metadata=False to ignore the metadata)"
    )


def number(
    facts: dict[str, Any], key: str, name: str, default: Any = _MISSING, *, positive: bool = False
) -> float:
    """A finite number from node ``name``'s metadata (> 0 with ``positive``); else a
    NIRImportError naming the node and the key."""
    value = fact(facts, key, name, default)
    try:
        number = float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise NIRImportError(
            f"NIR node {name!r}: {KEY} metadata {key!r} must be a number, got {value!r:.60}"
        ) from None
    if not math.isfinite(number) or (positive and number <= 0):
        need = "finite and > 0" if positive else "finite"
        raise NIRImportError(
            f"NIR node {name!r}: {KEY} metadata {key!r} must be {need}, got {number}"
        )
    return number


def whole(value: Any, name: str, key: str) -> int:
    """An integer metadata value (e.g. the format version), or a NIRImportError naming it."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise NIRImportError(
            f"NIR {name}: {KEY} metadata {key!r} must be an integer, got {value!r:.60}"
        ) from None


# what each numeric field of a NIR node must hold: "finite", "threshold" (finite, >= 0) or
# "positive" (finite, > 0: time constants, which are divided by)
_FIELD_RULES = {
    "weight": "finite", "bias": "finite", "scale": "finite", "r": "finite", "v_leak": "finite",
    "v_reset": "finite", "w_in": "finite", "v_threshold": "threshold", "tau": "positive",
    "tau_syn": "positive", "tau_mem": "positive",
}  # fmt: skip
_FACT_RULES = {"initial_potential": "finite", "alpha": "finite", "input_amplitude": "positive"}
_RULE_TEXT = {
    "finite": "finite numbers",
    "threshold": "finite and >= 0 (a threshold)",
    "positive": "finite and > 0",
}


def check_parameters(name: str, node: Any, facts: dict[str, Any]) -> None:
    """Refuse a node whose weights, thresholds or time constants are not numbers the network can
    run (NaN, infinite, a negative threshold, a time constant <= 0), naming the node and field."""
    values = [(f, getattr(node, f, None), rule) for f, rule in _FIELD_RULES.items()]
    values += [(f"{KEY} metadata {f!r}", facts.get(f), rule) for f, rule in _FACT_RULES.items()]
    for field, value, rule in values:
        if value is None or isinstance(value, str):
            continue
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise NIRImportError(
                f"NIR node {name!r} ({type(node).__name__}): {field} must hold numbers"
            ) from None
        bad = ~np.isfinite(arr)
        if rule == "threshold":
            bad |= arr < 0
        elif rule == "positive":
            bad |= arr <= 0
        if bad.any():
            first = arr.reshape(-1)[int(np.flatnonzero(bad.reshape(-1))[0])]
            raise NIRImportError(
                f"NIR node {name!r} ({type(node).__name__}): {field} must be {_RULE_TEXT[rule]}, "
                f"but {int(bad.sum())} of its {arr.size} values are not (e.g. {first})"
            )


def node_label(name: str, nodes: dict[str, Any], order: list[str] | None = None) -> str:
    """How messages name NIR node ``name``: its name, its kind and, when the graph has several
    of that kind, which one in ``order`` (default: the nodes' order), e.g. ``NIR node '5' (IF 2
    of 4)``, so that a node named by a number (a Sequential's layer) is found in the network."""
    node = nodes[name]
    kind = type(node).__name__
    same = [n for n in (order or list(nodes)) if type(nodes.get(n)) is type(node)]
    if len(same) <= 1 or name not in same:
        return f"NIR node {name!r} ({kind})"
    return f"NIR node {name!r} ({kind} {same.index(name) + 1} of {len(same)})"


def relabel(message: str, name: str, node: Any, label: str) -> str:
    """``message`` about NIR node ``name`` (``NIR node 'N' (Kind)...`` or ``NIR node 'N'...``)
    with its :func:`node_label` in place of that opening."""
    kind = f"NIR node {name!r} ({type(node).__name__})"
    if message.startswith(kind):
        return label + message[len(kind) :]
    bare = f"NIR node {name!r}"
    if message.startswith(bare) and label != kind:  # the label says which of its kind
        return label + message[len(bare) :]
    return message


class ShapeProbe:
    """Runs one zero input of the graph's input shape ([1, ...]) through each node as it is
    read, so that a node that does not fit its input (a weight of the wrong size, per-neuron
    parameters of another shape, inputs of different shapes summed) is refused at import naming
    the node, not at run time. Skipped when the input node gives no usable shape (or a huge one)."""

    LARGEST = 1 << 24  # elements of the probe input

    def __init__(self, input_node: Any) -> None:
        self.shapes: dict[str, torch.Tensor] = {}
        self.current: torch.Tensor | None = None
        shape = None
        try:
            shape = tuple(int(d) for d in np.asarray(input_node.input_type["input"]).reshape(-1))
        except (AttributeError, KeyError, TypeError, ValueError, OverflowError):
            pass
        usable = shape and all(d > 0 for d in shape) and math.prod(shape) <= self.LARGEST
        self.enabled = bool(usable)
        self.input = torch.zeros(1, *shape) if usable else None

    def sum(self, name: str, node: Any, preds: list[str]) -> None:
        """The example arriving at ``name``: the sum of its predecessors' outputs."""
        if not self.enabled:
            return
        outs = [self.input if p not in self.shapes else self.shapes[p] for p in preds]
        shapes = [tuple(o.shape[1:]) for o in outs]
        if len(set(shapes)) > 1:
            listed = ", ".join(f"{p!r} {list(sh)}" for p, sh in zip(preds, shapes))
            raise NIRImportError(
                f"NIR node {name!r} ({type(node).__name__}) sums inputs of different shapes: "
                f"{listed}"
            )
        self.current = outs[0]

    def forward(self, name: str, node: Any, module: nn.Module | None) -> None:
        """Run ``module`` (None: a node that passes its input on) on the example."""
        if not self.enabled:
            return
        x = self.current
        if module is not None:
            try:
                with torch.no_grad():
                    x = module(x)
            except Exception as err:  # noqa: BLE001 - any failure is this node's misfit
                text = re.sub(r"\s+", " ", str(err)).strip()
                raise NIRImportError(
                    f"NIR node {name!r} ({type(node).__name__}) does not fit its input of shape "
                    f"{list(self.current.shape[1:])}: {text}"
                ) from None
            finally:
                if hasattr(module, "reset_state"):
                    module.reset_state()
        self.shapes[name] = x


__all__ = [
    "NIRImportError",
    "ShapeProbe",
    "check_parameters",
    "fact",
    "node_label",
    "number",
    "relabel",
    "whole",
]
