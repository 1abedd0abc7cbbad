"""The ANN both routes start from: trained once (on rank 0), cached in ``DIR/checkpoints/ann.pt``.

The checkpoint records the settings it was trained with (:data:`ANN_KEYS`); a later run with the
same settings loads it instead of training again.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from ..io import ChecksumMismatch, save_torch, verify_checksum
from ..loading import check_input, is_graph_file
from ..model_files import load_ann
from ..models import build_model
from ..tables import history_frame
from ..training import train_ann
from .checkpoint_cache import damaged
from .context import ComparisonContext, epoch_line

ANN_CHECKPOINT_FORMAT = "spikebridge-compare-ann"
ANN_KEYS = (
    "arch", "dataset", "width", "activation", "alpha", "levels", "pool", "epochs", "lr", "seed",
    "batch_size", "train_limit", "validation_fraction", "normalize",
)  # fmt: skip
"""The settings that define the trained ANN."""


def build_ann(ctx: ComparisonContext) -> nn.Module:
    """The untrained ANN of the experiment's architecture (seeded by ``seed``), or the user's
    trained ANN from ``checkpoint`` (its own graph for a .pt2 or ONNX file)."""
    s = ctx.settings
    torch.manual_seed(s.seed)
    if s.checkpoint and is_graph_file(s.checkpoint):
        model = load_ann(s.checkpoint, None, s.trust_checkpoint)
        images = next(iter(ctx.test_loader))[0][:2]
        check_input(model, images, s.checkpoint, s.dataset, ctx.info.num_classes)
        ctx.user_graph = True
        return model
    model = build_model(
        s.arch, ctx.info.num_classes, ctx.info.in_channels, ctx.info.image_size, s.width,
        activation=s.activation, pool=s.pool, alpha=s.alpha, levels=s.levels,
    )  # fmt: skip
    if s.checkpoint:
        loaded = load_ann(s.checkpoint, model, s.trust_checkpoint)
        ctx.user_graph = loaded is not model  # a trusted pickled module: the user's own class
        model = loaded
    return model


def _load_ann_checkpoint(path: Path, expected: dict) -> dict | None:
    """The cached ANN when it was trained with ``expected``; None when absent or another
    experiment's; a damaged file (checksum, unreadable) is a named error, never retrained over."""
    if not path.is_file():
        return None
    try:
        verify_checksum(path, "")
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except ChecksumMismatch as err:
        raise damaged(path, str(err).rstrip("; ")) from None
    except Exception as err:
        reason = (f"{type(err).__name__}: {err}".splitlines() or [""])[0][:200]
        raise damaged(path, f"{path} is not a readable checkpoint ({reason})") from None
    if not isinstance(saved, dict) or saved.get("format") != ANN_CHECKPOINT_FORMAT:
        return None
    return saved if saved.get("settings") == expected else None


def _wait_for_ann_checkpoint(path: Path, expected: dict, poll_seconds: float = 1.0) -> dict:
    """Rank 0's ANN checkpoint once it is on disk (written atomically, so never half-read).

    Under torchrun a process that fails ends the whole job, so this cannot wait forever on a
    crashed rank 0.
    """
    while True:
        saved = _load_ann_checkpoint(path, expected)
        if saved is not None:
            return saved
        time.sleep(poll_seconds)


def trained_ann(ctx: ComparisonContext, model: nn.Module) -> tuple[nn.Module, float, bool]:
    """``model`` trained (or loaded from the checkpoint when it fits): (model, training seconds,
    reused?). An ANN from the user's ``checkpoint`` is already trained: it is used as it is."""
    s = ctx.settings
    if s.checkpoint:
        ctx.say(f"using the trained ANN from {s.checkpoint}")
        ctx.notes.append(f"the ANN is the trained model in {s.checkpoint} (not trained here)")
        return model.to(ctx.device).eval(), float("nan"), False
    experiment = s.experiment()
    expected = {k: experiment[k] for k in ANN_KEYS}
    path = ctx.checkpoints / "ann.pt"
    saved = _load_ann_checkpoint(path, expected)
    if saved is None:
        if ctx.shard.rank == 0:
            ctx.say(f"training the ANN ({s.arch}, {s.epochs} epochs)")
            start = time.perf_counter()
            history = train_ann(
                model, ctx.train_loader, s.epochs, s.lr, ctx.device, s.seed, ctx.progress,
                validation_loader=ctx.validation_loader,
                on_epoch=lambda row: ctx.say(epoch_line("ANN", row, s.epochs)),
            )  # fmt: skip
            seconds = time.perf_counter() - start
            path.parent.mkdir(parents=True, exist_ok=True)
            save_torch(
                path,
                {
                    "format": ANN_CHECKPOINT_FORMAT,
                    "version": 1,
                    "settings": expected,
                    "model": {k: v.cpu() for k, v in model.state_dict().items()},
                    "history": history,
                    "train_seconds": seconds,
                },
            )
        # other processes wait for rank 0's checkpoint without a collective call, which would
        # time out (30 min by default) on a long training run
        saved = _wait_for_ann_checkpoint(path, expected)
        reused = False
    else:
        ctx.say(f"reusing the trained ANN from {path}")
        reused = True
    model.load_state_dict(saved["model"])
    ctx.histories.append(history_frame(saved.get("history", []), "ann", s.ann_method()))
    return model.to(ctx.device).eval(), float(saved["train_seconds"]), reused
