"""Shape arithmetic of an ONNX graph, evaluated on constants (numpy arrays).

Exporters write the target of a reshape as nodes (``Shape`` -> ``Gather`` -> ``Unsqueeze`` ->
``Concat`` -> ``Reshape``). A node whose inputs are all constants is computed here, once, while
the graph is read, so the rebuilt network holds no shape nodes. :data:`CONSTANT_OPS` maps an ONNX
op type to ``fn(inputs, attributes) -> array``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def axes(args: list, attrs: dict) -> list[int] | None:
    """The ``axes`` of a node: its attribute (opset < 13) or its second input (opset >= 13)."""
    found = attrs.get("axes")
    if found is None and len(args) > 1 and args[1] is not None:
        found = [int(a) for a in np.atleast_1d(args[1])]
    return found


def unsqueeze(args: list, attrs: dict) -> np.ndarray:
    out = np.asarray(args[0])
    added = axes(args, attrs) or []
    rank = out.ndim + len(added)
    for axis in sorted(int(a) % rank for a in added):
        out = np.expand_dims(out, axis)
    return out


def squeeze(args: list, attrs: dict) -> np.ndarray:
    out = np.asarray(args[0])
    removed = axes(args, attrs)
    return np.squeeze(out, axis=None if removed is None else tuple(int(a) for a in removed))


def slice_(args: list, attrs: dict) -> np.ndarray:
    data = np.asarray(args[0])
    starts, ends = np.atleast_1d(args[1]), np.atleast_1d(args[2])
    along = np.atleast_1d(args[3]) if len(args) > 3 and args[3] is not None else range(len(starts))
    steps = np.atleast_1d(args[4]) if len(args) > 4 and args[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, along, steps):
        index[int(a)] = slice(int(s), int(e), int(st))
    return data[tuple(index)]


def _divide(a: list, k: dict) -> np.ndarray:
    return a[0] // a[1] if np.issubdtype(np.asarray(a[0]).dtype, np.integer) else a[0] / a[1]


CONSTANT_OPS: dict[str, Callable[[list, dict], np.ndarray]] = {
    "Identity": lambda a, k: a[0],
    "Cast": lambda a, k: a[0],
    "Gather": lambda a, k: np.take(a[0], a[1], axis=k.get("axis", 0)),
    "Unsqueeze": unsqueeze,
    "Squeeze": squeeze,
    "Concat": lambda a, k: np.concatenate([np.atleast_1d(v) for v in a], k["axis"]),
    "Slice": slice_,
    "Mul": lambda a, k: a[0] * a[1],
    "Add": lambda a, k: a[0] + a[1],
    "Sub": lambda a, k: a[0] - a[1],
    "Div": _divide,
    "Neg": lambda a, k: -a[0],
    "Reshape": lambda a, k: np.reshape(a[0], a[1]),
    "Shape": lambda a, k: np.array(np.shape(a[0]), dtype=np.int64),
}


__all__ = ["CONSTANT_OPS", "axes", "slice_", "squeeze", "unsqueeze"]
