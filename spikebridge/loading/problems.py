"""What cannot be rebuilt from a foreign graph, and where in the user's code it comes from.

A node of an ATen or ONNX graph is located by a :class:`Site` (its name in the file, its operation
and the user's source line, read from the stack trace the exporter recorded). A node that cannot be
rebuilt takes the value :data:`BROKEN`; :func:`fix_for` says what to change in the model.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

SUPPORTED = (
    "convolution, linear (addmm/matmul/gemm), batch norm (inference form), relu, leaky_relu, "
    "hardtanh/clamp/clip, max_pool, avg_pool, adaptive_avg_pool, mean over H and W, add, cat, "
    "view/reshape/flatten, dropout"
)
REPLACE_FIX = "express this part of the model with supported operations, retrain, and export again"
SMOOTH_ACTIVATIONS = (
    "gelu", "silu", "swish", "sigmoid", "tanh", "elu", "selu", "celu", "softplus", "softsign",
    "hardswish", "hardsigmoid", "mish", "prelu", "erf", "exp", "log", "softmax",
)  # fmt: skip

_TORCH_DIR = os.path.dirname(torch.__file__)
_FRAME = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>[^\n]+)\n(?P<code>[^\n]*)'
)


def fix_for(op: str) -> str:
    """The fix for an unsupported operation ``op`` (an ATen or ONNX name)."""
    name = op.lower().rsplit(".", 2)
    base = name[1] if len(name) == 3 and name[0] == "aten" else op.lower()
    if any(base.startswith(a) for a in SMOOTH_ACTIVATIONS):
        return (
            f"{op} has no rate-coded spiking counterpart: replace it with ReLU (or LeakyReLU, "
            "Hardtanh(0, max)) in the model, retrain, and export again"
        )
    return REPLACE_FIX


class _Broken:
    """The value of a node that could not be rebuilt (see :meth:`GraphBuilder.problem`)."""

    def __repr__(self) -> str:
        return "BROKEN"


BROKEN = _Broken()


@dataclass(frozen=True)
class Site:
    """Where a node comes from: its name in the file, its operation and the user's source line."""

    node: str
    op: str
    source: str | None = None

    def __str__(self) -> str:
        where = f"node {self.node!r} ({self.op})"
        return f"{where} at {self.source}" if self.source else where


def user_source_line(stack_trace: str | None) -> str | None:
    """The innermost frame of ``stack_trace`` in the user's code (not in torch): ``file:line (code)``."""
    if not stack_trace:
        return None
    frames = list(_FRAME.finditer(stack_trace))
    user = [f for f in frames if not os.path.abspath(f["file"]).startswith(_TORCH_DIR)]
    frame = (user or frames or [None])[-1]
    if frame is None:
        return None
    return f"{frame['file']}:{frame['line']} ({frame['code'].strip()})"


__all__ = [
    "BROKEN",
    "REPLACE_FIX",
    "SMOOTH_ACTIVATIONS",
    "SUPPORTED",
    "Site",
    "fix_for",
    "user_source_line",
]
