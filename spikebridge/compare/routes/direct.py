"""The direct route of a comparison: the same architecture trained as an SNN (STBP-tdBN).

The trained network is cached in ``DIR/checkpoints/direct.pt``; ``direct.json`` beside it
records the settings it is trained for (:data:`DIRECT_KEYS`), written before training starts, so
an interrupted run resumes and a checkpoint of other settings is never mistaken for this one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from ...direct.checkpoint import CheckpointError, load_training_checkpoint
from ...direct.trainer import load_trained, train_direct
from ...io import write_json
from ...models import MODEL_NAMES
from ..context import ComparisonContext
from . import Candidate, Route, register

DIRECT_METHOD = "stbp-tdbn"
DIRECT_KEYS = (
    "arch", "dataset", "width", "pool", "encoding", "direct_epochs", "direct_timesteps",
    "direct_lr", "direct_optimizer", "direct_momentum", "direct_weight_decay", "direct_schedule",
    "direct_threshold", "direct_tau_decay", "direct_surrogate", "direct_surrogate_width", "seed",
    "batch_size", "train_limit",
)  # fmt: skip
"""The settings that define the trained direct SNN."""


def direct_networks(ctx: ComparisonContext) -> Iterator[Candidate]:
    """The trained direct SNN, unless ``direct_epochs`` is 0 or the architecture has no SNN form."""
    s = ctx.settings
    epochs = s.direct_epoch_count()
    if epochs == 0:
        ctx.notes.append("direct route skipped (direct_epochs = 0)")
        return
    if s.arch not in MODEL_NAMES:
        ctx.notes.append(
            f"direct route skipped: the direct route builds {', '.join(MODEL_NAMES)} (LIF neurons "
            f"and tdBN in place of the ANN's activations and norms), not {s.arch!r}"
        )
        return
    network, seconds, reused = trained_direct_snn(ctx)
    if reused:
        ctx.notes.append(
            "the direct SNN was loaded from checkpoints/direct.pt (trained in an earlier run)"
        )
    yield Candidate(
        "direct", DIRECT_METHOD, network, s.timesteps, train_seconds=seconds,
        timings={"train_direct": seconds},
    )  # fmt: skip


def trained_direct_snn(ctx: ComparisonContext):
    """The trained direct SNN (reusing or resuming its checkpoint), training seconds, reused?"""
    s = ctx.settings
    experiment = s.experiment()
    expected = {k: experiment[k] for k in DIRECT_KEYS}
    epochs = expected["direct_epochs"]
    path = ctx.checkpoints / "direct.pt"
    record = path.with_suffix(".json")
    try:
        recorded = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    except json.JSONDecodeError:
        recorded = None
    saved = None
    if recorded == expected and path.is_file():
        try:
            saved = load_training_checkpoint(path)
        except CheckpointError:
            saved = None
    if saved is not None and int(saved.get("epoch", 0)) >= epochs:
        ctx.say(f"reusing the direct SNN from {path}")
        network = load_trained(path, ctx.device)
        seconds = sum(float(r.get("seconds", 0.0)) for r in saved.get("history", []))
        return network, seconds, True
    resume = saved is not None
    ctx.barrier()
    if ctx.shard.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not resume and path.exists():
            path.unlink()
        write_json(record, expected)
    ctx.barrier()
    what = f"training the direct SNN (STBP-tdBN, {epochs} epochs, T = {s.direct_timesteps})"
    ctx.say(what + (" - resuming its checkpoint" if resume else ""))
    start = time.perf_counter()
    result = train_direct(
        s.arch,
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
        num_classes=ctx.info.num_classes,
        in_channels=ctx.info.in_channels,
        image_size=ctx.info.image_size,
        width=s.width,
        pool=s.pool,
        encoding=s.encoding,
        threshold=s.direct_threshold,
        tau_decay=s.direct_tau_decay,
        surrogate=s.direct_surrogate,
        surrogate_width=s.direct_surrogate_width,
    )
    seconds = (
        sum(float(r.get("seconds", 0.0)) for r in result.history) or time.perf_counter() - start
    )
    return result.network.eval(), seconds, False


register(Route("direct", direct_networks, order=20))
