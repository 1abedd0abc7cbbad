"""Noise robustness: every network (and the ANN) on the same seeded noisy test images.

On when ``noise`` names at least one spec (``--noise gaussian:0.1,0.2,0.3 --noise
salt-pepper:0.05,0.1``); each (kind, level) is a condition ``kind:level`` of
``DIR/robustness.csv``. The noise of test sample i depends only on (seed, kind, level, i)
(:mod:`spikebridge.compare.noise`), so every route sees the same images.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..noise import noise_conditions, noisy_loader, parse_noise_specs
from ..robustness import condition_label
from . import EvaluationPass, register


def _loaders(ctx) -> Iterator[tuple[str, Iterable]]:
    s = ctx.settings
    for kind, level in noise_conditions(parse_noise_specs(s.noise)):
        yield condition_label(kind, level), noisy_loader(ctx.test_loader, kind, level, s.seed)


register(EvaluationPass("robustness", _loaders, enabled=lambda s: bool(s.noise), order=10))
