"""Choosing the percentile p of the percentile and channel methods on held-out data.

Rueckauer et al. 2017 leave p to the user (99.9 and 99.99 in their experiments). A lower p clips
rare large activations but gives finer rates, which is what few timesteps need; the best p
depends on the network and the latency. :func:`select_percentile` tries candidates on validation
images (never the test set) at the latency the user targets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..evaluation import evaluate_snn
from .converter import PERCENTILE_METHODS, Converter

DEFAULT_CANDIDATES: tuple[float, ...] = (99.0, 99.5, 99.9, 99.99)


@dataclass
class PercentileChoice:
    """The chosen p and the validation accuracy (fraction) at ``timesteps`` of every candidate."""

    percentile: float
    timesteps: int
    accuracy: dict[float, float]


def select_percentile(
    converter: Converter,
    validation: Iterable,
    timesteps: int,
    method: str = "channel",
    candidates: Sequence[float] = DEFAULT_CANDIDATES,
    initial_potential: float | None = None,
    negative_spikes: bool | None = None,
    reset: str = "subtract",
    encoding: str = "analog",
) -> PercentileChoice:
    """The p among ``candidates`` whose ``method`` network is most accurate after ``timesteps``
    steps on ``validation`` ((x, y) batches of held-out training images, [B, C, H, W]).

    Calibrates once (the converter's statistics serve every p). Ties go to the larger p, which
    clips less. The networks are built as :meth:`Converter.build` builds them.
    """
    if method not in PERCENTILE_METHODS:
        raise ValueError(
            f"select_percentile: method {method!r} has no percentile; "
            f"choose one of {', '.join(PERCENTILE_METHODS)}"
        )
    if not candidates:
        raise ValueError("select_percentile: candidates is empty; give at least one p")
    if not isinstance(timesteps, int) or timesteps <= 0:
        raise ValueError(f"timesteps must be a positive integer, got {timesteps!r}")
    batches = list(validation)
    if not batches:
        raise ValueError("select_percentile: the validation data is empty")
    accuracy: dict[float, float] = {}
    for p in sorted(float(c) for c in candidates):
        network = converter.with_percentile(p).build(
            method, reset, encoding, initial_potential, negative_spikes=negative_spikes
        )
        result = evaluate_snn(network, batches, timesteps, converter.device)
        accuracy[p] = float(result.accuracy[timesteps - 1])
    best = max(accuracy, key=lambda p: (accuracy[p], p))
    return PercentileChoice(best, timesteps, accuracy)
