"""Choosing the percentile p of the percentile and channel methods on held-out data.

Rueckauer et al. 2017 leave p to the user (99.9 and 99.99 in their experiments). A lower p clips
rare large activations but gives finer rates, which is what few timesteps need; the best p
depends on the network and the latency. :func:`select_percentile` tries candidates on validation
images (never the test set) at the latency the user targets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..data import calibration_loader
from ..evaluation import evaluate
from ..settings import ConversionSettings
from ..validation import check_positive_int
from .converter import Converter
from .methods import PERCENTILE_METHODS, get_method, method_names

DEFAULT_CANDIDATES: tuple[float, ...] = (99.0, 99.5, 99.9, 99.99)


@dataclass
class PercentileChoice:
    """The chosen p and the validation accuracy (fraction) at ``timesteps`` of every candidate,
    judged on ``method``'s networks."""

    percentile: float
    timesteps: int
    accuracy: dict[float, float]
    method: str = "channel"


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
    check_positive_int(timesteps, "timesteps")
    batches = list(validation)
    if not batches:
        raise ValueError("select_percentile: the validation data is empty")
    accuracy: dict[float, float] = {}
    own = converter.settings_of(method)
    for p in sorted(float(c) for c in candidates):
        network = converter.build(
            method, reset, encoding, initial_potential, negative_spikes=negative_spikes,
            settings=dataclasses.replace(own, percentile=p),
        )  # fmt: skip
        result = evaluate(network, batches, timesteps, device=converter.device)
        accuracy[p] = float(result.accuracy[timesteps - 1])
    best = max(accuracy, key=lambda p: (accuracy[p], p))
    return PercentileChoice(best, timesteps, accuracy, method)


def use_percentile(converter: Converter, percentile: float) -> None:
    """Give every method that uses a percentile (:data:`PERCENTILE_METHODS`) p = ``percentile``
    in ``converter``'s settings."""
    for name in method_names():
        if get_method(name).uses_percentile:
            own = converter.settings_of(name)
            converter.settings[name] = dataclasses.replace(own, percentile=float(percentile))


def percentile_note(choice: PercentileChoice) -> str:
    """One line on how ``percentile auto`` chose p (for the command line and reports)."""
    tried = ", ".join(f"p={p:g}: {100 * a:.2f}%" for p, a in choice.accuracy.items())
    return (
        f"percentile auto ({choice.method}, T={choice.timesteps}, validation): {tried} -> "
        f"p={choice.percentile:g}"
    )


def resolve_percentile(
    converter: Converter,
    conversion: ConversionSettings,
    methods: Sequence[str],
    validation: Iterable | None,
    timesteps: int,
    encoding: str = "analog",
) -> PercentileChoice | None:
    """Set the percentile methods' p in ``converter`` to ``conversion.percentile``: a number as
    it is; ``"auto"`` selects p on ``validation`` at ``conversion.selection_timesteps`` (default
    ``timesteps``), judged on ``channel`` when it is among ``methods``, else ``percentile``, and
    returns the choice."""
    if conversion.percentile != "auto":
        use_percentile(converter, float(conversion.percentile))
        return None
    method = next((m for m in ("channel", "percentile") if m in methods), None)
    if method is None:
        raise ValueError(
            f"percentile auto: none of the methods {', '.join(methods)} uses a percentile; "
            "add channel or percentile to the methods, or give the percentile as a number"
        )
    if validation is None:
        raise ValueError("percentile auto needs validation images (held-out training images)")
    choice = select_percentile(
        converter,
        validation,
        conversion.selection_timesteps or timesteps,
        method,
        initial_potential=conversion.initial_potential,
        negative_spikes=conversion.negative_spikes,
        reset=conversion.reset,
        encoding=encoding,
    )
    use_percentile(converter, choice.percentile)
    return choice


def conversion_loaders(train_dataset, conversion: ConversionSettings, batch_size: int, seed: int):
    """The calibration images (``conversion.calibration_samples`` training images) and, for
    ``percentile="auto"``, the held-out validation images (else None)."""
    calibration = calibration_loader(
        train_dataset, conversion.calibration_samples, batch_size, seed
    )
    validation = None
    if conversion.percentile == "auto":
        validation = held_out_loader(train_dataset, conversion, batch_size, seed)
    return calibration, validation


def held_out_loader(train_dataset, conversion: ConversionSettings, batch_size: int, seed: int):
    """``conversion.validation_samples`` training images disjoint from the calibration ones
    (for ``percentile="auto"``; never the test set)."""
    if conversion.calibration_samples >= len(train_dataset):
        raise ValueError(
            f"percentile auto: the {len(train_dataset)} training images are all calibration "
            f"images (calibration samples {conversion.calibration_samples}); lower "
            "--calibration-samples to leave held-out images for validation"
        )
    return calibration_loader(
        train_dataset, conversion.validation_samples, batch_size, seed,
        skip=conversion.calibration_samples,
    )  # fmt: skip
