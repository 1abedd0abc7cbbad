"""Phase 3 of the STDP route, the only one that sees labels: a multinomial logistic regression
(scikit-learn) on the feature spike rates, folded into the network's last
:class:`~torch.nn.Linear` layer together with the feature standardisation.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from ..engine.network import SpikingNetwork
from ..progress import progress_bar
from .model import StdpConfig


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


__all__ = ["extract_features", "feature_network", "fit_readout"]
