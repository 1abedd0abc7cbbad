"""The routes of a comparison: each yields named spiking networks to score, with their own T.

A route is one module in this package that registers a :class:`Route`; the package imports them
all, so a new route (e.g. ``stdp``) is one new file and the pipeline is not edited::

    # spikebridge/compare/routes/my_route.py
    from . import Candidate, Route, register

    def _networks(ctx):                       # ctx: spikebridge.compare.context.ComparisonContext
        network = ...                         # a SpikingNetwork, trained or built here
        yield Candidate("my-route", "my-method", network, ctx.settings.timesteps,
                        train_seconds=12.0)

    register(Route("my-route", _networks, order=30))

Every candidate is scored by :func:`spikebridge.evaluation.evaluate` with operation counting,
on the same test set, and becomes rows of the comparison's tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...engine.network import SpikingNetwork
from ...registry import Registry

if TYPE_CHECKING:
    from ..context import ComparisonContext


@dataclass
class Candidate:
    """One network a route offers for scoring.

    Attributes:
        route: the route's name (``conversion``, ``direct``, ...); ``method``: the network's.
        network: the spiking network.
        timesteps: simulate it for this many steps.
        report_steps: the steps t reported (None: every t <= ``timesteps``); a network built
            for one T is reported at that T only, and its energy is counted at that T.
        train_seconds, convert_seconds: what it cost to make (NaN when not applicable).
        timings: extra named durations for ``results.json`` (seconds).
    """

    route: str
    method: str
    network: SpikingNetwork
    timesteps: int
    report_steps: tuple[int, ...] | None = None
    train_seconds: float = float("nan")
    convert_seconds: float = float("nan")
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """A route: ``networks(ctx)`` yields :class:`Candidate` networks, one at a time (each is
    scored before the next is made); ``order`` places it among the routes."""

    name: str
    networks: Callable[[ComparisonContext], Iterator[Candidate]]
    order: int = 100


ROUTES: Registry[Route] = Registry("comparison route")
register = ROUTES.register
routes = ROUTES.entries
ROUTES.discover(__name__, __path__)

__all__ = ["ROUTES", "Candidate", "Route", "register", "routes"]
