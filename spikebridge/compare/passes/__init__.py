"""Extra evaluation passes of a comparison (e.g. noisy test images): one module each.

The main pass scores every network on the clean test set. An extra pass, registered by a module
in this package (the package imports them all, so a pass is one new file), gives further test
loaders; every network (and the ANN) is scored on each, and the pass's rows (route, method,
condition, timesteps, accuracy) go to ``Comparison.extra[name]`` and ``DIR/<name>.csv``::

    # spikebridge/compare/passes/my_pass.py
    from . import EvaluationPass, register

    def _loaders(ctx):              # ctx: spikebridge.compare.context.ComparisonContext
        yield "sigma=0.1", noisy(ctx.test_loader, 0.1)

    register(EvaluationPass("robustness", _loaders, enabled=lambda s: s.noise_std > 0))
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context import ComparisonContext

PASS_COLUMNS = ["route", "method", "condition", "timesteps", "accuracy"]


def _always(settings: Any) -> bool:
    return True


@dataclass(frozen=True)
class EvaluationPass:
    """An extra evaluation: ``loaders(ctx)`` yields (condition label, test loader) pairs.

    ``enabled(settings)`` says whether the pass runs for these settings (default: always).
    """

    name: str
    loaders: Callable[[ComparisonContext], Iterator[tuple[str, Iterable]]]
    enabled: Callable[[Any], bool] = _always
    order: int = 100


_PASSES: dict[str, EvaluationPass] = {}


def register(evaluation_pass: EvaluationPass) -> EvaluationPass:
    """Add an extra evaluation pass (a second pass of the same name is an error)."""
    name = evaluation_pass.name
    if name in _PASSES and _PASSES[name] is not evaluation_pass:
        raise ValueError(f"evaluation pass {name!r} is registered twice")
    _PASSES[name] = evaluation_pass
    return evaluation_pass


def passes() -> list[EvaluationPass]:
    """Every registered extra pass, in order."""
    return sorted(_PASSES.values(), key=lambda p: (p.order, p.name))


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["PASS_COLUMNS", "EvaluationPass", "passes", "register"]
