"""Third route: an unsupervised spiking CNN trained layer by layer (Tavanaei & Maida 2017).

A sparse spiking auto-encoder learns the convolutional kernels, probabilistic STDP learns the
feature discovery layer of WTA-thresholded LIF neurons, and a linear classifier reads the
features. The result is a :class:`~spikebridge.engine.network.SpikingNetwork`. See docs/stdp.md.
"""

from ..engine.wta_lif import WTALIFNeuron
from .model import (
    SUPPORTED_ARCHITECTURES,
    StdpConfig,
    StdpDivergenceError,
    UnsupportedArchitectureError,
    build_network,
    config_for,
)
from .rules import autoencoder_update, probabilistic_stdp_update
from .training import (
    StdpResult,
    extract_features,
    fit_readout,
    train,
    train_autoencoder,
    train_feature_layer,
)

__all__ = [
    "SUPPORTED_ARCHITECTURES",
    "StdpConfig",
    "StdpDivergenceError",
    "StdpResult",
    "UnsupportedArchitectureError",
    "WTALIFNeuron",
    "autoencoder_update",
    "build_network",
    "config_for",
    "extract_features",
    "fit_readout",
    "probabilistic_stdp_update",
    "train",
    "train_autoencoder",
    "train_feature_layer",
]
