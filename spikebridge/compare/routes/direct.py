"""The direct route of a comparison: the same architecture trained as an SNN (STBP-tdBN).

For a user's own graph (``checkpoint``: a .pt2 or ONNX file) the same graph is trained directly
(:func:`spikebridge.direct.graph.direct_from_graph`: ReLU -> LIF, BatchNorm -> tdBN); a graph
that cannot be trained directly is a note naming the node and why, and the conversion rows run.

The trained network is cached in ``DIR/checkpoints/direct.pt``; ``direct.json`` beside it
records the settings it is trained for (:data:`DIRECT_KEYS`), written before training starts, so
an interrupted run resumes and a checkpoint of other settings is never mistaken for this one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from ...direct.checkpoint import CheckpointError, load_training_checkpoint
from ...direct.graph import NotDirectlyTrainable, direct_from_graph
from ...direct.trainer import load_trained, train_direct
from ...models import MODEL_NAMES
from ...plots import register_label
from ...tables import history_frame
from ..checkpoint_cache import matching_checkpoint, start_training
from ..context import ComparisonContext, epoch_line
from . import Candidate, Route, register

DIRECT_METHOD = "stbp-tdbn"
register_label(DIRECT_METHOD, "STBP-tdBN (Zheng 2021)")
DIRECT_KEYS = (
    "arch", "dataset", "width", "pool", "encoding", "direct_epochs", "direct_timesteps",
    "direct_lr", "direct_optimizer", "direct_momentum", "direct_weight_decay", "direct_schedule",
    "direct_threshold", "direct_tau_decay", "direct_surrogate", "direct_surrogate_width", "seed",
    "batch_size", "train_limit", "checkpoint", "checkpoint_sha256", "validation_fraction",
    "normalize",
)  # fmt: skip
"""The settings that define the trained direct SNN."""


def direct_networks(ctx: ComparisonContext) -> Iterator[Candidate]:
    """The trained direct SNN, unless ``direct_epochs`` is 0 or the architecture has no SNN form."""
    s = ctx.settings
    epochs = s.direct_epoch_count()
    if epochs == 0:
        ctx.notes.append("direct route skipped (direct_epochs = 0)")
        return
    network = None
    if ctx.user_graph:
        try:
            network = direct_from_graph(
                ctx.ann, s.direct_threshold, s.direct_tau_decay, s.direct_surrogate,
                s.direct_surrogate_width, encoding=s.encoding, seed=s.seed,
                name=s.model_label(),
            )  # fmt: skip
        except NotDirectlyTrainable as err:
            ctx.notes.append(f"direct route skipped: {err}")
            return
    elif s.arch not in MODEL_NAMES:
        ctx.notes.append(
            f"direct route skipped: the direct route builds {', '.join(MODEL_NAMES)} (LIF neurons "
            f"and tdBN in place of the ANN's activations and norms), not {s.arch!r}"
        )
        return
    network, seconds, reused = trained_direct_snn(ctx, network)
    if reused:
        ctx.notes.append(
            "the direct SNN was loaded from checkpoints/direct.pt (trained in an earlier run)"
        )
    yield Candidate(
        "direct", DIRECT_METHOD, network, s.timesteps, train_seconds=seconds,
        timings={"train_direct": seconds},
    )  # fmt: skip


def trained_direct_snn(ctx: ComparisonContext, network=None):
    """The trained direct SNN (reusing or resuming its checkpoint), training seconds, reused?

    ``network``: an untrained direct SNN to train (the user's graph, from
    :func:`~spikebridge.direct.graph.direct_from_graph`); None builds the architecture ``arch``.
    """
    s = ctx.settings
    experiment = s.experiment()
    expected = {k: experiment[k] for k in DIRECT_KEYS}
    epochs = expected["direct_epochs"]
    path = ctx.checkpoints / "direct.pt"
    saved = matching_checkpoint(path, expected, load_training_checkpoint, CheckpointError)
    if saved is not None and int(saved.get("epoch", 0)) >= epochs:
        ctx.say(f"reusing the direct SNN from {path}")
        if network is None:
            network = load_trained(path, ctx.device)
        else:
            network.load_state_dict(saved["model"])
            network = network.to(ctx.device).eval()
        seconds = sum(float(r.get("seconds", 0.0)) for r in saved.get("history", []))
        ctx.histories.append(history_frame(saved.get("history", []), "direct", DIRECT_METHOD))
        return network, seconds, True
    resume = saved is not None
    start_training(ctx, path, expected, resume)
    what = f"training the direct SNN (STBP-tdBN, {epochs} epochs, T = {s.direct_timesteps})"
    ctx.say(what + (" - resuming its checkpoint" if resume else ""))
    start = time.perf_counter()
    build = {} if network is not None else dict(
        num_classes=ctx.info.num_classes, in_channels=ctx.info.in_channels,
        image_size=ctx.info.image_size, width=s.width, pool=s.pool, encoding=s.encoding,
        threshold=s.direct_threshold, tau_decay=s.direct_tau_decay,
        surrogate=s.direct_surrogate, surrogate_width=s.direct_surrogate_width,
    )  # fmt: skip
    result = train_direct(
        network if network is not None else s.arch,
        ctx.train_loader,
        None,
        timesteps=s.direct_timesteps,
        epochs=epochs,
        optimizer=s.direct_optimizer,
        lr=s.direct_learning_rate(),
        momentum=s.direct_momentum,
        weight_decay=s.direct_weight_decay,
        schedule=s.direct_schedule,
        seed=s.seed,
        checkpoint_path=path,
        resume=resume,
        device=ctx.device,
        progress=ctx.progress,
        validation_loader=ctx.validation_loader,
        on_epoch=lambda row: ctx.say(epoch_line("direct SNN", row, epochs)),
        **build,
    )
    ctx.histories.append(history_frame(result.history, "direct", DIRECT_METHOD))
    seconds = (
        sum(float(r.get("seconds", 0.0)) for r in result.history) or time.perf_counter() - start
    )
    return result.network.eval(), seconds, False


register(Route("direct", direct_networks, order=20))
