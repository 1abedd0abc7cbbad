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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...registry import Registry

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


PASSES: Registry[EvaluationPass] = Registry("evaluation pass")
register = PASSES.register
passes = PASSES.entries
PASSES.discover(__name__, __path__)

__all__ = ["PASSES", "PASS_COLUMNS", "EvaluationPass", "passes", "register"]
