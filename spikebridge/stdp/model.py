"""The unsupervised spiking CNN of Tavanaei & Maida 2017 as a :class:`SpikingNetwork`.

    input [B, C, H, W] --Poisson--> [T, B, C, H, W] spikes
    conv1  (kernels of the sparse spiking auto-encoder)  -> WTA-LIF (k1 of K1 maps per position)
    pool1  (max pooling of spikes: a pooled unit fires when any unit of its window fires)
    conv2  (feature discovery layer, probabilistic STDP)  -> WTA-LIF (k2 of K2 maps per position)
    pool2  (average pooling of the feature spikes)  -> flatten -> readout (linear classifier)

Every layer is a stock torch module except the neurons, so the operation counters of
:mod:`spikebridge.compare.ops` count it like any converted or directly trained network.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, fields

import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.encoding import PoissonEncoder
from ..engine.network import SpikingNetwork
from ..engine.wta_lif import WTALIFNeuron
from ..settings import StdpSettings

LAYER_NAMES = {
    "conv1": "conv1 (spiking auto-encoder kernels)",
    "conv2": "conv2 (feature discovery layer, STDP)",
    "readout": "readout (linear classifier)",
}
# architectures of the other routes this route can stand beside (plain conv/pool stacks)
SUPPORTED_ARCHITECTURES: tuple[str, ...] = ("cnn", "tavanaei2017")


class SpikeMaxPool2d(nn.MaxPool2d):
    """Max pooling of 0/1 spikes: a pooled unit fires when any unit of its window fires.

    Computed as ``avg_pool2d(x) > 0`` (the same result on non-negative spikes, and several times
    faster on a CPU than max pooling with indices). Still a :class:`~torch.nn.MaxPool2d`, so the
    operation counters treat it as routing, not accumulating. Input [T*B, C, H, W].
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.dilation not in (1, (1, 1)) or self.ceil_mode:
            return super().forward(x)
        pooled = F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)
        return (pooled > 0).to(x.dtype)


class UnsupportedArchitectureError(ValueError):
    """The STDP route cannot build or train the requested architecture."""


class StdpDivergenceError(RuntimeError):
    """Unsupervised training diverged (weights not finite, or a layer never fires)."""


_SETTINGS = StdpSettings()  # the one home of the defaults the command line also shows


def settings_options(settings: StdpSettings) -> dict[str, int]:
    """The :class:`StdpConfig` fields that :class:`~spikebridge.settings.StdpSettings` sets
    (``stdp_conv_channels`` -> ``conv_channels``, ...), for :func:`config_for`."""
    return dict(
        conv_channels=settings.stdp_conv_channels,
        feature_channels=settings.stdp_feature_channels,
        ae_epochs=settings.stdp_ae_epochs,
        stdp_epochs=settings.stdp_epochs,
        timesteps=settings.stdp_timesteps,
    )


@dataclass
class StdpConfig:
    """Architecture and learning constants of the unsupervised route (docs/stdp.md, table 1).

    Sizes: conv1 has ``conv_channels`` kernels of ``conv_kernel`` x ``conv_kernel`` (valid
    convolution), ``pool`` x ``pool`` max pooling, conv2 has ``feature_channels`` kernels of
    ``feature_kernel`` x ``feature_kernel`` over all conv1 maps, ``feature_pool`` average pooling.
    """

    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    conv_channels: int = _SETTINGS.stdp_conv_channels
    conv_kernel: int = 5
    pool: int = 2
    feature_channels: int = _SETTINGS.stdp_feature_channels
    feature_kernel: int = 5
    feature_pool: int = 2
    timesteps: int = _SETTINGS.stdp_timesteps
    # neurons (eq. 1-3)
    leak: float = 0.9
    conv_threshold: float = 1.0
    conv_winners: int = 4
    feature_threshold: float = 1.0
    feature_winners: int = 1
    temperature: float = 1.0
    feature_temperature: float = 1.0
    # sparse spiking auto-encoder (eq. 4-5)
    ae_epochs: int = _SETTINGS.stdp_ae_epochs
    ae_learning_rate: float = 0.05
    ae_patches_per_image: int = 8
    # probabilistic STDP (eq. 6)
    stdp_epochs: int = max(_SETTINGS.stdp_epochs, 1)
    stdp_learning_rate: float = 0.05
    a_plus: float = 1.0
    a_minus: float = 1.0
    stdp_window: int = 2
    w_min: float = -4.0
    w_max: float = 2.0
    # classifier
    readout_c: float = 1.0
    readout_max_iter: int = 200
    # divergence: a layer silent for this many consecutive training batches stops the run
    silent_batches: int = 20

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> StdpConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"StdpConfig: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**values)

    @property
    def conv_side(self) -> int:
        return self.image_size - self.conv_kernel + 1

    @property
    def pooled_side(self) -> int:
        return self.conv_side // self.pool

    @property
    def feature_side(self) -> int:
        return self.pooled_side - self.feature_kernel + 1

    @property
    def num_features(self) -> int:
        return self.feature_channels * (self.feature_side // self.feature_pool) ** 2

    def validate(self) -> StdpConfig:
        """Raise :class:`UnsupportedArchitectureError` naming the layer whose sizes do not fit."""
        positive = (
            "in_channels image_size num_classes conv_channels conv_kernel pool feature_channels "
            "feature_kernel feature_pool timesteps conv_winners feature_winners ae_epochs "
            "ae_patches_per_image stdp_epochs stdp_window readout_max_iter silent_batches"
        ).split()
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"StdpConfig.{name} must be a positive integer, got {value!r}")
        if self.conv_side < 1:
            raise UnsupportedArchitectureError(
                f"{LAYER_NAMES['conv1']}: a {self.conv_kernel}x{self.conv_kernel} kernel does not "
                f"fit a {self.image_size}x{self.image_size} image; use a smaller conv_kernel"
            )
        if self.pooled_side < 1:
            raise UnsupportedArchitectureError(
                f"pool1: {self.pool}x{self.pool} pooling of the {self.conv_side}x{self.conv_side} "
                "conv1 maps leaves nothing; use a smaller pool"
            )
        if self.feature_side < 1:
            raise UnsupportedArchitectureError(
                f"{LAYER_NAMES['conv2']}: a {self.feature_kernel}x{self.feature_kernel} kernel "
                f"does not fit the {self.pooled_side}x{self.pooled_side} pooled maps; use a "
                "smaller feature_kernel"
            )
        if self.feature_side // self.feature_pool < 1:
            raise UnsupportedArchitectureError(
                f"pool2: {self.feature_pool}x{self.feature_pool} pooling does not fit the "
                f"{self.feature_side}x{self.feature_side} feature maps; use feature_pool=1"
            )
        if self.w_min >= self.w_max:
            raise ValueError(f"StdpConfig: w_min ({self.w_min}) must be below w_max ({self.w_max})")
        for name in (
            "leak",
            "conv_threshold",
            "feature_threshold",
            "temperature",
            "feature_temperature",
            "a_plus",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"StdpConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.a_minus <= 0 or self.ae_learning_rate <= 0 or self.stdp_learning_rate <= 0:
            raise ValueError("StdpConfig: a_minus and the learning rates must be > 0")
        return self


def config_for(
    architecture: str, in_channels: int, image_size: int, num_classes: int, **overrides
) -> StdpConfig:
    """The route's configuration for a dataset, standing in for ``architecture`` of the others.

    ``tavanaei2017`` and ``cnn`` (the plain conv/pool stack the other routes call ``cnn``) are
    supported; residual and deep stacks (``vgg11``, ``resnet20``, ``resnet19``, torchvision
    models) are an :class:`UnsupportedArchitectureError`: the route trains one convolutional
    and one feature discovery layer, greedily, and has no rule for deeper or residual nets.
    Images under 20 pixels (8x8 digits) get 3x3 kernels and no pooling after conv1.
    """
    key = architecture.strip().lower()
    if key not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"the stdp route does not support architecture {architecture!r}: it trains a "
            "conv/pool layer and a feature discovery layer (Tavanaei & Maida 2017) and has no "
            f"learning rule for deeper or residual networks; use one of "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    sizes: dict = {"in_channels": in_channels, "image_size": image_size, "num_classes": num_classes}
    if image_size < 20:
        sizes.update(conv_kernel=3, pool=1, feature_kernel=3, feature_pool=2)
    sizes.update(overrides)
    return StdpConfig(**sizes).validate()


def build_network(config: StdpConfig, seed: int = 0) -> SpikingNetwork:
    """A fresh (untrained) network for ``config``; weights are set by :mod:`.training`.

    conv1's neurons take the k largest potentials; the feature layer's probabilistic neurons
    draw their winners from softmax(u / feature_temperature) with a generator seeded by
    ``seed`` and restarted every simulation, so results are reproducible.

    Input: [B, C, H, W] images in [0, 1], Poisson-coded (``seed``) into [T, B, C, H, W] spikes.
    Output of :meth:`SpikingNetwork.simulate`: readout [T, B, classes].
    """
    config.validate()
    c = config

    def neuron(
        threshold: float, winners: int, temperature: float, stochastic: bool, offset: int
    ) -> WTALIFNeuron:
        return WTALIFNeuron(threshold, c.leak, winners, temperature, stochastic, seed + offset)

    module = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(c.in_channels, c.conv_channels, c.conv_kernel, bias=False)),
                ("lif1", neuron(c.conv_threshold, c.conv_winners, c.temperature, False, 1)),
                ("pool1", SpikeMaxPool2d(c.pool)),
                (
                    "conv2",
                    nn.Conv2d(c.conv_channels, c.feature_channels, c.feature_kernel, bias=True),
                ),
                (
                    "lif2",
                    neuron(c.feature_threshold, c.feature_winners, c.feature_temperature, True, 2),
                ),
                ("pool2", nn.AvgPool2d(c.feature_pool)),
                ("flatten", nn.Flatten()),
                ("readout", nn.Linear(c.num_features, c.num_classes)),
            ]
        )
    )
    return SpikingNetwork(module, PoissonEncoder(seed=seed))
