"""Greedy layer-wise training without labels, then a linear classifier (Tavanaei & Maida 2017).

1. conv1: a sparse spiking auto-encoder learns the kernels from image patches (eq. 4-5).
2. conv2: with conv1 frozen, the feature discovery layer learns by probabilistic STDP (eq. 6).
3. readout: a multinomial logistic regression (scikit-learn) on the feature spike rates, folded
   into the network's last :class:`~torch.nn.Linear` layer (with the feature standardisation).

Only step 3 sees labels. Every random draw (patch choice, Poisson spikes, winner draws) comes
from generators seeded by ``seed``, so a run is reproducible. The phases are
:mod:`.autoencoder`, :mod:`.feature_layer` and :mod:`.readout`; this module runs them in order,
with checkpoints and resume.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from ..engine.network import SpikingNetwork
from .autoencoder import init_kernels_from_patches, train_autoencoder
from .epochs import HistoryCallback, record_epoch
from .feature_layer import likelihood_bias, train_feature_layer
from .inputs import poisson_spikes, sample_patches
from .model import LAYER_NAMES, StdpConfig, StdpDivergenceError, build_network
from .readout import extract_features, feature_network, fit_readout


@dataclass
class StdpResult:
    """A trained network, its per-epoch history rows and the seconds each phase took."""

    network: SpikingNetwork
    config: StdpConfig
    history: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    train_accuracy: float = float("nan")


def train(
    config: StdpConfig,
    train_loader: Iterable,
    seed: int = 0,
    progress: bool = True,
    on_epoch: HistoryCallback | None = None,
    readout_loader: Iterable | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = False,
) -> StdpResult:
    """Greedy layer-wise training of the whole route; ``readout_loader`` (labels) defaults to
    ``train_loader``. Returns the trained :class:`SpikingNetwork` (Poisson input and
    probabilistic feature neurons seeded by ``seed``) in a :class:`StdpResult`.

    With ``checkpoint_path`` the network is saved after each phase (auto-encoder, STDP,
    readout) with the random states the next phase starts from (torch, NumPy, Python and
    ``train_loader.generator``); with ``resume`` the phases a checkpoint there already holds are
    skipped (its configuration and seed must match) and those states restored, so the resumed
    run ends bit for bit where the uninterrupted one does.
    """
    from ..direct.checkpoint import rng_state, set_rng_state
    from .checkpoint import PHASES, StdpCheckpointError, read_checkpoint, save_checkpoint

    shuffle = getattr(train_loader, "generator", None)
    shuffle = shuffle if isinstance(shuffle, torch.Generator) else None

    config.validate()
    torch.manual_seed(seed)
    network = build_network(config, seed=seed)
    seconds: dict[str, float] = {}
    history: list[dict] = []
    done = -1
    if resume and checkpoint_path is not None and os.path.exists(checkpoint_path):
        data = read_checkpoint(checkpoint_path)
        if data["config"] != config.to_dict() or int(data["seed"]) != seed:
            raise StdpCheckpointError(
                f"{checkpoint_path}: the checkpoint was written for another configuration or "
                "seed; start afresh in another --out or without --resume"
            )
        try:
            network.load_state_dict(data["state"])
        except RuntimeError as err:
            raise StdpCheckpointError(
                f"{checkpoint_path}: weights do not fit its configuration: {err}"
            ) from None
        history, seconds = list(data["history"]), dict(data["seconds"])
        done = PHASES.index(data["phase_done"])
        if data.get("rng") is not None:
            set_rng_state(data["rng"], shuffle)

    def finish(phase: str, t0: float) -> None:
        seconds[phase] = time.perf_counter() - t0
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path, network, config, seed, phase, history, seconds, rng_state(shuffle)
            )

    if done < 0:
        t0 = time.perf_counter()
        history += train_autoencoder(network, train_loader, config, seed, progress, on_epoch)
        finish("autoencoder", t0)
    if done < 1:
        t0 = time.perf_counter()
        history += train_feature_layer(network, train_loader, config, seed, progress, on_epoch)
        finish("stdp", t0)
    accuracy = float("nan")
    if done < 2:
        t0 = time.perf_counter()
        feats, labels = extract_features(
            network, readout_loader or train_loader, config.timesteps, progress, "readout"
        )
        accuracy = fit_readout(network, feats, labels, config, seed)
        weight = network.module.readout.weight.detach()
        if not torch.isfinite(weight).all():
            raise StdpDivergenceError(
                f"{LAYER_NAMES['readout']}: the classifier's weights are not finite"
            )
        row = {
            "phase": "readout",
            "layer": "readout",
            "epoch": 1,
            "train_accuracy": accuracy,
            "seconds": time.perf_counter() - t0,
        }
        record_epoch(history, row, on_epoch)
        finish("readout", t0)
    else:
        accuracy = next(
            (r["train_accuracy"] for r in history if r.get("phase") == "readout"), accuracy
        )
    return StdpResult(network, config, history, seconds, accuracy)


__all__ = [
    "HistoryCallback",
    "StdpResult",
    "extract_features",
    "feature_network",
    "fit_readout",
    "init_kernels_from_patches",
    "likelihood_bias",
    "poisson_spikes",
    "sample_patches",
    "train",
    "train_autoencoder",
    "train_feature_layer",
]
