"""The conversion route of a comparison: the ANN converted with every requested method."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

from ...convert import ConversionError, Converter, converted_networks, method_list
from ...convert.calibration import low_latency_settings
from ...convert.tuning import held_out_loader, resolve_percentile
from ...data import calibration_loader
from ..context import ComparisonContext
from . import Candidate, Route, register


def conversion_networks(ctx: ComparisonContext) -> Iterator[Candidate]:
    """Calibrate once, then build and yield each method's network(s) (see
    :func:`spikebridge.convert.converted_networks`); methods that do not apply become notes."""
    s = ctx.settings
    calib = calibration_loader(
        ctx.train_loader.dataset, s.calibration_samples, s.batch_size, s.seed
    )
    names = method_list(s.methods)
    skipped: dict[str, str] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            converter = Converter(
                ctx.ann, calib, s.maxpool, 99.9, ctx.device, progress=ctx.progress, seed=s.seed,
                spike_norm_window=s.spike_norm_window, spike_norm_samples=s.spike_norm_samples,
                low_latency=low_latency_settings(s, seed=s.seed, progress=ctx.progress),
            )  # fmt: skip
        except ConversionError as err:
            ctx.notes.append(f"the ANN cannot be converted, so no conversion method ran: {err}")
            return
        validation = None
        if s.percentile == "auto":
            validation = held_out_loader(ctx.train_loader.dataset, s, s.batch_size, s.seed)
        converter, choice = resolve_percentile(
            converter, s, names, validation, s.timesteps, s.encoding
        )
        if choice is not None:
            tried = ", ".join(f"p={p:g}: {100 * a:.2f}%" for p, a in choice.accuracy.items())
            ctx.notes.append(
                f"percentile auto ({choice.method}, T={choice.timesteps}, validation): {tried} -> "
                f"p={choice.percentile:g}"
            )
        for item in converted_networks(
            converter, s.methods, s.timesteps, s, s.encoding, skipped=skipped
        ):
            yield Candidate(
                "conversion", item.method, item.network, item.timesteps, item.report_steps,
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
