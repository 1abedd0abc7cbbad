"""The conversion route of a comparison: the ANN converted with every requested method."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import asdict

from ...convert import ConversionError, converted_networks, resolve_settings
from ...convert.loop import conversion_converter
from ...convert.tuning import conversion_loaders, percentile_note
from ..context import ComparisonContext
from . import Candidate, Route, register


def conversion_networks(ctx: ComparisonContext) -> Iterator[Candidate]:
    """Calibrate once, then build and yield each method's network(s) (the one conversion
    pipeline, :mod:`spikebridge.convert.loop`); methods that do not apply become notes."""
    s = ctx.settings
    skipped: dict[str, str] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        calib, validation = conversion_loaders(ctx.train_loader.dataset, s, s.batch_size, s.seed)
        try:
            converter, choice = conversion_converter(
                ctx.ann, calib, s, resolve_settings(asdict(s)), timesteps=s.timesteps,
                encoding=s.encoding, device=ctx.device, seed=s.seed, progress=ctx.progress,
                validation=validation,
            )  # fmt: skip
        except ConversionError as err:
            ctx.notes.append(f"the ANN cannot be converted, so no conversion method ran: {err}")
            return
        if choice is not None:
            ctx.notes.append(percentile_note(choice))
        for item in converted_networks(
            converter, s.methods, s.timesteps, s, s.encoding, skipped=skipped
        ):
            yield Candidate(
                "conversion", item.label, item.network, item.timesteps, item.report_steps,
                train_seconds=ctx.ann_train_seconds, convert_seconds=item.seconds,
                timings={f"convert_{item.key}": item.seconds},
            )  # fmt: skip
        for method, why in skipped.items():
            ctx.notes.append(
                f"method {method!r} does not apply to this {s.model_label()} and was skipped: {why}"
            )
        for w in caught:
            message = f"conversion: {w.message}"
            if message not in ctx.notes:
                ctx.notes.append(message)


register(Route("conversion", conversion_networks, order=10))
