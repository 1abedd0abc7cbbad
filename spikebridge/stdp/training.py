"""Greedy layer-wise training without labels, then a linear classifier (Tavanaei & Maida 2017).

1. conv1: a sparse spiking auto-encoder learns the kernels from image patches (eq. 4-5).
2. conv2: with conv1 frozen, the feature discovery layer learns by probabilistic STDP (eq. 6).
3. readout: a multinomial logistic regression (scikit-learn) on the feature spike rates, folded
   into the network's last :class:`~torch.nn.Linear` layer (with the feature standardisation).

Only step 3 sees labels. Every random draw (patch choice, Poisson spikes, winner draws) comes
from generators seeded by ``seed``, so a run is reproducible.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.network import SpikingNetwork
from ..progress import progress_bar
from .model import LAYER_NAMES, StdpConfig, StdpDivergenceError, build_network
from .neurons import WTALIFNeuron
from .rules import autoencoder_update, probabilistic_stdp_update

HistoryCallback = Callable[[dict], None]


@dataclass
class StdpResult:
    """A trained network, its per-epoch history rows and the seconds each phase took."""

    network: SpikingNetwork
    config: StdpConfig
    history: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    train_accuracy: float = float("nan")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def poisson_spikes(x: Tensor, steps: int, generator: torch.Generator) -> Tensor:
    """x: [B, ...] intensities in [0, 1] -> [steps, B, ...] spikes in {0, 1} (rate coding)."""
    noise = torch.rand((steps, *x.shape), generator=generator, dtype=x.dtype)
    return (noise < x.clamp(0, 1)).to(x.dtype)


def sample_patches(
    images: Tensor, kernel: int, per_image: int, generator: torch.Generator
) -> Tensor:
    """[B, C, H, W] -> [P, C*kernel*kernel] patches, ``per_image`` non-blank ones per image drawn
    with probability proportional to their summed intensity (blank images give none)."""
    patches = F.unfold(images, kernel)  # [B, D, L]
    energy = patches.sum(1)  # [B, L]
    keep = energy.sum(1) > 0
    if not keep.any():
        return patches.new_zeros((0, patches.shape[1]))
    patches, energy = patches[keep], energy[keep]
    idx = torch.multinomial(energy, per_image, replacement=True, generator=generator)
    chosen = patches.gather(2, idx.unsqueeze(1).expand(-1, patches.shape[1], -1))
    return chosen.transpose(1, 2).reshape(-1, patches.shape[1])


def likelihood_bias(weight: Tensor, w_min: float) -> Tensor:
    """Per-neuron bias b_k = min_j S_j - S_k with S_k = sum_i softplus(w_ki) (docs/stdp.md, eq. 7).

    With w = logit(p), sum_i w_ki y_i - S_k is the Bernoulli log-likelihood of the input y under
    neuron k; -S_k is what the synapses of inactive inputs contribute. Shifting every bias by
    the same constant changes no difference between the neurons (the winner-take-all sees the
    same competition); shifting so the largest bias is 0 keeps a position without input silent
    (u <= 0 < threshold) while input drives u = sum_i efficacy_i y_i + b_k up.
    ``weight``: efficacies [N, D], w = weight + w_min. Returns [N].
    """
    penalty = F.softplus(weight + w_min).sum(1)
    return penalty.min() - penalty


def _check_finite(weight: Tensor, layer: str, epoch: int, batch: int) -> None:
    if not torch.isfinite(weight).all():
        raise StdpDivergenceError(
            f"{LAYER_NAMES[layer]}: weights became NaN/inf at epoch {epoch}, batch {batch}; "
            "lower the learning rate of this layer"
        )


class _SilenceWatch:
    """Stops training when a layer has produced no spike for ``limit`` consecutive batches."""

    def __init__(self, layer: str, limit: int, hint: str) -> None:
        self.layer, self.limit, self.hint, self.silent = layer, limit, hint, 0

    def update(self, spikes: float, epoch: int, batch: int) -> None:
        self.silent = 0 if spikes > 0 else self.silent + 1
        if self.silent >= self.limit:
            raise StdpDivergenceError(
                f"{LAYER_NAMES[self.layer]}: no neuron won (fired) in {self.silent} consecutive "
                f"batches (up to epoch {epoch}, batch {batch}); {self.hint}"
            )


def _images(loader: Iterable) -> Iterable[Tensor]:
    for batch in loader:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if x.dim() != 4:
            raise ValueError(
                f"stdp route: expected static image batches [B, C, H, W], got shape "
                f"{tuple(x.shape)} (event datasets are not supported by this route)"
            )
        yield x.float()


def init_kernels_from_patches(
    conv: nn.Conv2d, loader: Iterable, generator: torch.Generator
) -> None:
    """Start conv1's kernels at random image patches of unit norm (data initialisation)."""
    k = conv.kernel_size[0]
    rows: list[Tensor] = []
    needed = conv.out_channels
    for x in _images(loader):
        rows.append(sample_patches(x, k, 1, generator))
        if sum(r.shape[0] for r in rows) >= needed:
            break
    patches = torch.cat(rows)[:needed]
    if patches.shape[0] < needed:
        raise ValueError(
            f"{LAYER_NAMES['conv1']}: the training data gave {patches.shape[0]} non-blank patches "
            f"for {needed} kernels; pass more training images"
        )
    patches = patches / patches.norm(dim=1, keepdim=True).clamp_min(1e-6)
    with torch.no_grad():
        conv.weight.copy_(patches.view_as(conv.weight))


def train_autoencoder(
    network: SpikingNetwork,
    loader: Iterable,
    config: StdpConfig,
    seed: int = 0,
    progress: bool = True,
    on_epoch: HistoryCallback | None = None,
) -> list[dict]:
    """Learn conv1's kernels with the sparse spiking auto-encoder (no labels).

    Patches [P, D] of the training images are Poisson-coded over T steps; the hidden layer is
    conv1's K neurons (a WTA-LIF group, winners drawn stochastically), so a patch's hidden spikes
    are the spikes conv1 emits at one position. Returns one history row per epoch with the mean
    squared reconstruction error per patch; ``row['batch_errors']`` has every batch's.
    """
    c = config
    conv: nn.Conv2d = network.module.conv1
    gen = _generator(seed)
    init_kernels_from_patches(conv, loader, gen)
    weight = conv.weight.detach().view(c.conv_channels, -1).clone()
    hidden = WTALIFNeuron(
        c.conv_threshold, c.leak, c.conv_winners, c.temperature, stochastic=True, seed=seed + 11
    )
    watch = _SilenceWatch(
        "conv1", c.silent_batches, "lower conv_threshold or check that the images are not blank"
    )
    rows = []
    for epoch in range(1, c.ae_epochs + 1):
        start, errors, spikes, count = time.perf_counter(), [], 0.0, 0
        bar = progress_bar(_images(loader), progress, f"auto-encoder epoch {epoch}")
        for batch, x in enumerate(bar, 1):
            patches = sample_patches(x, c.conv_kernel, c.ae_patches_per_image, gen)
            if patches.shape[0] == 0:
                continue
            spikes_in = poisson_spikes(patches, c.timesteps, gen)  # [T, P, D]
            hidden.reset_state()
            out = hidden.forward_sequence(spikes_in @ weight.T)  # [T, P, K]
            delta, err = autoencoder_update(
                weight, spikes_in.mean(0), out.mean(0), c.ae_learning_rate
            )
            weight += delta
            _check_finite(weight, "conv1", epoch, batch)
            watch.update(float(out.sum()), epoch, batch)
            errors.append(float(err.mean()))
            spikes += float(out.sum())
            count += patches.shape[0]
        with torch.no_grad():
            conv.weight.copy_(weight.view_as(conv.weight))
        row = {
            "phase": "autoencoder",
            "layer": "conv1",
            "epoch": epoch,
            "reconstruction_error": float(np.mean(errors)) if errors else float("nan"),
            "spikes_per_input": spikes / max(count, 1),
            "seconds": time.perf_counter() - start,
            "batch_errors": errors,
        }
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return rows


def _conv1_spikes(network: SpikingNetwork, x: Tensor, steps: int, gen: torch.Generator) -> Tensor:
    """Frozen conv1 -> WTA-LIF -> max pool: [B, C, H, W] -> [T, B, K1, H1, W1] spikes."""
    m = network.module
    seq = poisson_spikes(x, steps, gen)
    cur = m.conv1(seq.flatten(0, 1))
    lif: WTALIFNeuron = m.lif1
    lif.reset_state()
    spikes = lif.forward_sequence(cur.unflatten(0, (steps, x.shape[0])))
    return m.pool1(spikes.flatten(0, 1)).unflatten(0, (steps, x.shape[0]))


def train_feature_layer(
    network: SpikingNetwork,
    loader: Iterable,
    config: StdpConfig,
    seed: int = 0,
    progress: bool = True,
    on_epoch: HistoryCallback | None = None,
) -> list[dict]:
    """Learn conv2 (the feature discovery layer) by probabilistic STDP, conv1 frozen (no labels).

    Every spike of a conv2 neuron at a position updates its kernel (shared over positions) by
    eq. 6, with "pre in window" meaning the conv1/pool1 unit fired at one of the last
    ``stdp_window`` steps up to and including the post-synaptic spike.
    """
    c = config
    m = network.module
    conv2: nn.Conv2d = m.conv2
    gen = _generator(seed + 1)
    span = c.w_max - c.w_min
    with torch.no_grad():  # log-domain weights start in [-1, 0): efficacies near span - 2
        init = torch.rand(conv2.weight.shape, generator=gen) - 1.0 - c.w_min
        conv2.weight.copy_(init.clamp(0, span))
    weight = conv2.weight.detach().view(c.feature_channels, -1).clone()
    post = WTALIFNeuron(
        c.feature_threshold, c.leak, c.feature_winners, c.feature_temperature, True, seed + 12
    )
    m.lif1.stochastic = False
    watch = _SilenceWatch(
        "conv2", c.silent_batches, "lower feature_threshold or retrain conv1 (it may be silent)"
    )
    rows = []
    k = c.feature_kernel
    for epoch in range(1, c.stdp_epochs + 1):
        start, spikes, count = time.perf_counter(), 0.0, 0
        won = torch.zeros(c.feature_channels)
        bar = progress_bar(_images(loader), progress, f"STDP epoch {epoch}")
        with torch.no_grad():
            for batch, x in enumerate(bar, 1):
                pre = _conv1_spikes(network, x, c.timesteps, gen)  # [T, B, K1, H1, W1]
                kernel = weight.view_as(conv2.weight)
                bias = likelihood_bias(weight, c.w_min)
                cur = F.conv2d(pre.flatten(0, 1), kernel, bias).unflatten(0, pre.shape[:2])
                post.reset_state()
                out = post.forward_sequence(cur)  # [T, B, N, H2, W2]
                pre_post = torch.zeros_like(weight)
                for t in range(c.timesteps):
                    recent = pre[max(0, t - c.stdp_window + 1) : t + 1].amax(0)
                    cols = F.unfold(recent, k)  # [B, D, L]
                    # only the (sparse) post spikes count: gather their input columns
                    b, n_idx, pos = out[t].flatten(2).nonzero(as_tuple=True)
                    pre_post.index_add_(0, n_idx, cols[b, :, pos])
                n = out.sum((0, 1, 3, 4))
                weight += probabilistic_stdp_update(
                    weight, pre_post, n, c.a_plus, c.a_minus, c.stdp_learning_rate, c.w_min
                )
                weight.clamp_(0.0, span)
                _check_finite(weight, "conv2", epoch, batch)
                watch.update(float(n.sum()), epoch, batch)
                won += n
                spikes += float(n.sum())
                count += x.shape[0]
        with torch.no_grad():
            conv2.weight.copy_(weight.view_as(conv2.weight))
            conv2.bias.copy_(likelihood_bias(weight, c.w_min))
        row = {
            "phase": "stdp",
            "layer": "conv2",
            "epoch": epoch,
            "spikes_per_input": spikes / max(count, 1),
            "active_fraction": float((won > 0).float().mean()),
            "winner_share_max": float(won.max() / won.sum().clamp_min(1)),
            "seconds": time.perf_counter() - start,
        }
        rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
    return rows


def feature_network(network: SpikingNetwork) -> SpikingNetwork:
    """The network up to (and including) the flatten before the readout, sharing its modules:
    :meth:`SpikingNetwork.simulate` then returns the feature spike rates as its readout."""
    layers = [mod for name, mod in network.module.named_children() if name != "readout"]
    return SpikingNetwork(nn.Sequential(*layers), network.encoder, network.chunk_size)


@torch.no_grad()
def extract_features(
    network: SpikingNetwork,
    loader: Iterable,
    timesteps: int,
    progress: bool = True,
    description: str = "features",
) -> tuple[Tensor, Tensor]:
    """Mean feature spike rates [N, F] after ``timesteps`` steps, and the labels [N]."""
    feats = feature_network(network)
    xs, ys = [], []
    for x, y in progress_bar(loader, progress, description):
        xs.append(feats.simulate(x.float(), timesteps).readout[-1])
        ys.append(torch.as_tensor(y))
    return torch.cat(xs), torch.cat(ys)


def fit_readout(
    network: SpikingNetwork, features: Tensor, labels: Tensor, config: StdpConfig, seed: int = 0
) -> float:
    """Fit the linear classifier on feature rates and write it into ``network.module.readout``.

    Standardisation (mean/std per feature, on the training features) is folded into the weights,
    so the readout stays one Linear layer. Returns the training accuracy.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x = features.double().numpy()
    mean, std = x.mean(0), x.std(0)
    std[std < 1e-8] = 1.0
    clf = LogisticRegression(
        C=config.readout_c, max_iter=config.readout_max_iter, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit((x - mean) / std, labels.numpy())
    coef = clf.coef_ / std
    bias = clf.intercept_ - coef @ mean
    readout: nn.Linear = network.module.readout
    if coef.shape[0] != readout.out_features:  # a class missing from the training labels
        full_w = np.zeros((readout.out_features, coef.shape[1]))
        full_b = np.full(readout.out_features, -1e4)
        full_w[clf.classes_] = coef
        full_b[clf.classes_] = bias
        coef, bias = full_w, full_b
    with torch.no_grad():
        readout.weight.copy_(torch.from_numpy(coef).float())
        readout.bias.copy_(torch.from_numpy(bias).float())
    return float(clf.score((x - mean) / std, labels.numpy()))


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
    readout); with ``resume`` the phases a checkpoint there already holds are skipped (its
    configuration and seed must match).
    """
    from .checkpoint import PHASES, StdpCheckpointError, read_checkpoint, save_checkpoint

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
        network.load_state_dict(data["state"])
        history, seconds = list(data["history"]), dict(data["seconds"])
        done = PHASES.index(data["phase_done"])

    def finish(phase: str, t0: float) -> None:
        seconds[phase] = time.perf_counter() - t0
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, network, config, seed, phase, history, seconds)

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
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        finish("readout", t0)
    else:
        accuracy = next(
            (r["train_accuracy"] for r in history if r.get("phase") == "readout"), accuracy
        )
    return StdpResult(network, config, history, seconds, accuracy)
