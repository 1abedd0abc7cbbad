"""Flags for a network too weak to report as if nothing were wrong.

A network is *weak* when its test accuracy is near chance, or far below its accuracy on the
training images (undertrained, overfitted, or scored with BatchNorm statistics that lag its
weights). The commands print the flag on the terminal, in the tables (a ``warning`` column)
and in the report; they never drop the numbers.
"""

from __future__ import annotations

import math

NEAR_CHANCE = 0.25
"""Near chance: test accuracy below chance + 25 % of the way from chance to 100 % (32.5 % for ten
classes)."""
GAP_POINTS = 15.0
"""Far below training: test accuracy more than 15 points below the training accuracy."""

CONVERTED_ADVICE = (
    "simulate it longer (--timesteps), try another method, or check the ANN it was converted from"
)
"""What to do about a converted network near chance (it has no training of its own)."""


def weak_network(
    test_accuracy: float, num_classes: int, train_accuracy: float | None = None
) -> str:
    """A short flag for a weak network ('' for one that is not): ``near chance`` or ``test far
    below training``. Accuracies are fractions in [0, 1]; NaN counts as unknown."""
    if test_accuracy is None or math.isnan(test_accuracy) or num_classes < 2:
        return ""
    chance = 1.0 / num_classes
    if test_accuracy < chance + NEAR_CHANCE * (1.0 - chance):
        return "near chance"
    if (
        train_accuracy is not None
        and not math.isnan(train_accuracy)
        and 100 * (train_accuracy - test_accuracy) > GAP_POINTS
    ):
        return "test far below training"
    return ""


def weak_network_message(
    name: str,
    test_accuracy: float,
    num_classes: int,
    train_accuracy: float | None = None,
    advice: str | None = None,
) -> str | None:
    """One line for the terminal and the report naming the network and what to do (``advice``,
    or the advice for a trained network), or None."""
    flag = weak_network(test_accuracy, num_classes, train_accuracy)
    if not flag:
        return None
    test = f"{100 * test_accuracy:.1f} %"
    if flag == "near chance":
        return (
            f"{name} is weak: test accuracy {test} is near chance ({100 / num_classes:.0f} % for "
            f"{num_classes} classes); "
            + (
                advice
                or "train it longer (more epochs) or check its inputs (e.g. --normalize "
                "for a model trained on normalised images)"
            )
        )
    return (
        f"{name} is weak: test accuracy {test} is far below its training accuracy "
        f"{100 * train_accuracy:.1f} %; train it longer or with another learning rate, and "
        "see the training history"
    )


__all__ = ["CONVERTED_ADVICE", "GAP_POINTS", "NEAR_CHANCE", "weak_network", "weak_network_message"]
