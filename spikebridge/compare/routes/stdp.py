"""The STDP route of a comparison: the unsupervised spiking CNN of Tavanaei & Maida 2017.

Trained without labels on the comparison's training images (then a linear readout), cached in
``DIR/checkpoints/stdp.pt``; ``stdp.json`` beside it records the settings it is trained for
(:data:`STDP_KEYS`), so a re-run with the same settings reuses it and an interrupted run resumes.
On for the architectures the route supports (``cnn``); noted as skipped for the others and for a
user's own graph (``--checkpoint`` .pt2/.onnx), whose architecture the route does not learn.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from ...loading import is_graph_file
from ...plots import register_label
from ...stdp import UnsupportedArchitectureError, config_for
from ...stdp import train as train_stdp_layers
from ...stdp.checkpoint import StdpCheckpointError, load_network, read_checkpoint
from ...stdp.model import settings_options
from ...stdp.run import METHOD
from ..checkpoint_cache import matching_checkpoint, start_training
from ..context import ComparisonContext
from . import Candidate, Route, register

STDP_KEYS = (
    "arch", "dataset", "seed", "batch_size", "train_limit", "stdp_epochs", "stdp_ae_epochs",
    "stdp_conv_channels", "stdp_feature_channels", "stdp_timesteps",
)  # fmt: skip
"""The settings that define the trained STDP network."""

register_label(METHOD, "auto-encoder + STDP (Tavanaei 2017)")


def stdp_config(ctx: ComparisonContext):
    """The route's configuration for the comparison's dataset (UnsupportedArchitectureError
    for an architecture it has no form of)."""
    s, info = ctx.settings, ctx.info
    return config_for(
        s.arch, info.in_channels, info.image_size, info.num_classes, **settings_options(s)
    )


def stdp_networks(ctx: ComparisonContext) -> Iterator[Candidate]:
    """The trained STDP network, unless ``stdp_epochs`` is 0 or the architecture is unsupported."""
    s = ctx.settings
    if s.stdp_epochs == 0:
        ctx.notes.append("stdp route skipped (stdp_epochs = 0)")
        return
    if s.normalize:
        ctx.notes.append(
            "stdp route skipped: it encodes intensities in [0, 1] as spike rates, which "
            "normalised inputs (--normalize) are not"
        )
        return
    if s.checkpoint and is_graph_file(s.checkpoint):
        ctx.notes.append(
            f"stdp route skipped: it learns its own architecture (Tavanaei & Maida 2017), not "
            f"the graph of --checkpoint {s.checkpoint}"
        )
        return
    try:
        config = stdp_config(ctx)
    except UnsupportedArchitectureError as err:
        ctx.notes.append(f"stdp route skipped: {err}")
        return
    experiment = s.experiment()
    expected = {k: experiment[k] for k in STDP_KEYS}
    path = ctx.checkpoints / "stdp.pt"
    saved = matching_checkpoint(path, expected, read_checkpoint, StdpCheckpointError)
    if saved is not None and saved["config"] != config.to_dict():
        saved = None
    if saved is not None and saved["phase_done"] == "readout":
        ctx.say(f"reusing the STDP network from {path}")
        network, _, data = load_network(path)
        seconds = float(sum(data["seconds"].values()))
        ctx.notes.append("the STDP network was loaded from checkpoints/stdp.pt (an earlier run)")
    else:
        resume = saved is not None
        start_training(ctx, path, expected, resume)
        ctx.say(
            "training the STDP network (auto-encoder kernels, probabilistic STDP, linear readout)"
            + (" - resuming its checkpoint" if resume else "")
        )
        start = time.perf_counter()
        result = train_stdp_layers(
            config, ctx.train_loader, s.seed, ctx.progress, None,
            checkpoint_path=path if ctx.shard.rank == 0 else None, resume=resume,
        )  # fmt: skip
        network = result.network
        seconds = sum(result.seconds.values()) or time.perf_counter() - start
    ctx.notes.append(
        "stdp route: Poisson input and probabilistic feature neurons (seeded), whatever the "
        "encoding setting; trained without labels except its linear readout"
    )
    yield Candidate(
        "stdp", METHOD, network.to(ctx.device).eval(), s.timesteps,
        train_seconds=seconds, timings={"train_stdp": seconds},
    )  # fmt: skip


register(Route("stdp", stdp_networks, order=30))
