"""Checks of argument values shared by the library and the command line (one message each)."""

from __future__ import annotations

import warnings
from typing import Any


def check_positive_int(value: Any, name: str = "timesteps", allow_none: bool = False) -> Any:
    """``value`` when it is a positive integer (not a bool), or None with ``allow_none``; else
    ValueError naming ``name`` (e.g. ``"spike-norm: timesteps (the window)"``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        what = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_methods_apply(model: Any, methods: Any, strict: bool = False) -> None:
    """A ValueError naming ``--methods`` and the fix (e.g. ``--activation qcfs``) when none of
    the conversion methods named in ``methods`` fits the activations of ``model`` (nothing would
    be converted) or, with ``strict`` (``spikebridge convert``, where a method named explicitly
    must apply), when any does not; raised before the ANN trains: an untrained ANN will do, only
    its activation types are read. Otherwise those that do not fit are skipped with their reason
    later, as under ``"all"``. A model the converter cannot prepare is left to the conversion,
    which says why."""
    from .convert.methods import get_method, method_list

    if isinstance(methods, str) and methods.strip() == "all":
        return
    named = [get_method(n) for n in method_list(methods)]
    restricted = [m for m in named if m.activations]  # the others apply to any activation
    if not restricted or (not strict and len(restricted) < len(named)):
        return
    from .convert.prepare import prepare
    from .normalization import activation_layers

    try:
        with warnings.catch_warnings():  # an inspection: the conversion itself warns
            warnings.simplefilter("ignore")
            acts = activation_layers(prepare(model, maxpool="avg"))
    except Exception:  # noqa: BLE001 - the conversion reports an unconvertible ANN
        return
    reasons = []
    for method in restricted:
        wrong = [a for a in acts.values() if not isinstance(a, method.activations)]
        if wrong or not acts:
            found = type(wrong[0]).__name__ if wrong else "no"
            reasons.append(
                f"method {method.name!r} {method.requirement or 'does not apply to this ANN'} "
                f"(this ANN has {found} activations); {method.fix}"
            )
    if reasons and (strict or len(reasons) == len(named)):
        raise ValueError(f"--methods {','.join(m.name for m in named)}: {'; '.join(reasons)}")


def check_percentile_auto(train_size: int, conversion: Any) -> None:
    """With ``percentile="auto"`` the training set must hold images beyond the calibration
    ones (p is chosen on them): checked once the data is loaded, before the ANN trains;
    ValueError naming ``--calibration-samples`` and the count that would work."""
    if conversion.percentile != "auto" or conversion.calibration_samples < train_size:
        return
    suggestion = max(1, train_size - min(conversion.validation_samples, train_size // 2))
    raise ValueError(
        f"--percentile auto chooses p on training images that are not calibration images, but "
        f"--calibration-samples {conversion.calibration_samples} takes all {train_size} "
        f"training images; lower --calibration-samples (e.g. {suggestion}) or give a --percentile"
    )


def check_ann_training(model: Any, train_size: int, batch_size: int, epochs: int) -> None:
    """The ANN can train on the batches it will get (checked before it trains): at least 2
    training images, and no batch of one image for a network with batch normalisation (which
    cannot train on it; :func:`spikebridge.data.make_loaders` leaves out a last batch of one
    image, so only ``--batch-size 1`` remains). ValueError naming the flag."""
    if epochs <= 0:
        return
    if train_size < 2:
        raise ValueError(
            f"training the ANN needs at least 2 training images, got {train_size} "
            "(raise --train-limit, or give --epochs 0 with a trained --checkpoint)"
        )
    from torch import nn

    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
    if batch_size == 1 and any(isinstance(m, norms) for m in model.modules()):
        raise ValueError(
            "--batch-size 1: the ANN has batch normalisation, which cannot train on batches of "
            "one image; use --batch-size 2 or more"
        )


def check_before_training(
    model: Any,
    train_size: int,
    batch_size: int,
    training: Any,
    conversion: Any,
    strict_methods: bool = False,
) -> None:
    """What the conversion route checks once its data and (untrained) ANN are there, before the
    ANN trains: :func:`check_ann_training` (``training.epochs``), :func:`check_methods_apply`
    (``strict_methods``: every method named must apply) and :func:`check_percentile_auto`
    (``conversion``'s settings)."""
    check_ann_training(model, train_size, batch_size, training.epochs)
    check_methods_apply(model, conversion.methods, strict_methods)
    check_percentile_auto(train_size, conversion)
