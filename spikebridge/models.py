"""Architecture specs shared by both routes.

One builder makes the ANN (ReLU or another activation, BatchNorm) or, given other factories, the
directly trained SNN (LIF neurons, tdBN) with the same conv and linear layers, so the two routes
compare layer for layer. Each activation and each norm is a distinct module instance (never one
module called twice), which keeps conversion and spike counting per layer unambiguous.

Builders take ``activation`` and ``norm`` factories:

- ``activation() -> nn.Module``
- ``norm(num_features, dims, alpha) -> nn.Module`` with dims 1 (after Linear) or 2 (after Conv2d)
  and ``alpha`` the tdBN junction factor (1 on serial paths, 1/sqrt(2) where a residual block's
  branches meet; an ANN's BatchNorm ignores it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor, nn

ActivationFactory = Callable[[], nn.Module]
NormFactory = Callable[[int, int, float], nn.Module]

MODEL_NAMES: tuple[str, ...] = ("cnn", "vgg11", "resnet20", "resnet19")
JUNCTION_ALPHA = 1 / math.sqrt(2)


def batch_norm(num_features: int, dims: int, alpha: float = 1.0) -> nn.Module:
    """Plain BatchNorm for the ANN (``alpha`` is the tdBN factor and is ignored here)."""
    return nn.BatchNorm2d(num_features) if dims == 2 else nn.BatchNorm1d(num_features)


def no_norm(num_features: int, dims: int, alpha: float = 1.0) -> nn.Module:
    return nn.Identity()


def activation_factory(
    name: str = "relu", alpha: float = 0.1, levels: int = 4
) -> ActivationFactory:
    """An ANN activation by name: ``relu``, ``leaky-relu`` (slope ``alpha``) or ``qcfs`` (L = ``levels``)."""
    if name == "relu":
        return nn.ReLU
    if name == "leaky-relu":
        return lambda: nn.LeakyReLU(alpha)
    if name == "qcfs":
        from .activations import QCFS

        return lambda: QCFS(levels)
    raise ValueError(f"unknown activation {name!r}: choose relu, leaky-relu or qcfs")


def _pool(kind: str) -> nn.Module:
    if kind == "avg":
        return nn.AvgPool2d(2)
    if kind == "max":
        return nn.MaxPool2d(2)
    raise ValueError(f"unknown pooling {kind!r}: choose 'avg' or 'max'")


def _conv_unit(c_in: int, c_out: int, act: ActivationFactory, norm: NormFactory) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), norm(c_out, 2, 1.0), act()]


class SmallCNN(nn.Sequential):
    """conv32-conv32-pool-conv64-pool-fc256-fc(classes), BN after every conv and the hidden fc.

    Works for any input size divisible by 4 (8x8 digits, 28x28 MNIST, 32x32 CIFAR).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        width: float = 1.0,
        activation: ActivationFactory = nn.ReLU,
        norm: NormFactory = batch_norm,
        pool: str = "avg",
    ) -> None:
        c1, c2, hidden = (
            max(1, round(32 * width)),
            max(1, round(64 * width)),
            max(1, round(256 * width)),
        )
        side = image_size // 4
        super().__init__(
            *_conv_unit(in_channels, c1, activation, norm),
            *_conv_unit(c1, c1, activation, norm),
            _pool(pool),
            *_conv_unit(c1, c2, activation, norm),
            _pool(pool),
            nn.Flatten(),
            nn.Linear(c2 * side * side, hidden, bias=False),
            norm(hidden, 1, 1.0),
            activation(),
            nn.Linear(hidden, num_classes),
        )


class VGG(nn.Module):
    """CIFAR-style VGG; pooling stops once the feature map is 1x1, so small inputs work."""

    CONFIGS = {"vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]}

    def __init__(
        self,
        config: str = "vgg11",
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        width: float = 1.0,
        activation: ActivationFactory = nn.ReLU,
        norm: NormFactory = batch_norm,
        pool: str = "avg",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, side = in_channels, image_size
        for item in self.CONFIGS[config]:
            if item == "M":
                if side >= 2:
                    layers.append(_pool(pool))
                    side //= 2
            else:
                out = max(1, round(item * width))
                layers += _conv_unit(channels, out, activation, norm)
                channels = out
        self.features = nn.Sequential(*layers)
        hidden = max(1, round(512 * width))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * side * side, hidden, bias=False),
            norm(hidden, 1, 1.0),
            activation(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """Residual block: conv-norm-act-conv-norm(alpha) + shortcut, then the activation after the sum.

    The shortcut is the identity when shapes allow (Sengupta 2019), else 1x1 conv-norm(alpha);
    ``alpha`` = 1/sqrt(2) on both branches that meet at the junction (tdBN, Zheng 2021).
    """

    def __init__(
        self, c_in: int, c_out: int, stride: int, activation: ActivationFactory, norm: NormFactory
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm(c_out, 2, 1.0)
        self.act1 = activation()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = norm(c_out, 2, JUNCTION_ALPHA)
        if stride != 1 or c_in != c_out:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), norm(c_out, 2, JUNCTION_ALPHA)
            )
        else:
            self.shortcut = nn.Identity()
        self.act2 = activation()

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(out + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet of :class:`BasicBlock` stages: ``stages`` is a list of (channels, blocks, stride).

    ``hidden`` > 0 adds a hidden fc layer before the classifier (ResNet-19's FC 256).
    """

    def __init__(
        self,
        stem: int,
        stages: list[tuple[int, int, int]],
        num_classes: int = 10,
        in_channels: int = 3,
        hidden: int = 0,
        activation: ActivationFactory = nn.ReLU,
        norm: NormFactory = batch_norm,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, stem, 3, padding=1, bias=False)
        self.bn1 = norm(stem, 2, 1.0)
        self.act1 = activation()
        blocks: list[nn.Module] = []
        channels = stem
        for out, count, stride in stages:
            for i in range(count):
                blocks.append(BasicBlock(channels, out, stride if i == 0 else 1, activation, norm))
                channels = out
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        head: list[nn.Module] = []
        if hidden:
            head += [nn.Linear(channels, hidden, bias=False), norm(hidden, 1, 1.0), activation()]
            channels = hidden
        head.append(nn.Linear(channels, num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        return self.head(self.flatten(self.pool(self.layers(x))))


def _w(c: int, width: float) -> int:
    return max(1, round(c * width))


def build_model(
    name: str,
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
    width: float = 1.0,
    activation: ActivationFactory | str = "relu",
    norm: NormFactory | None = None,
    pool: str = "avg",
    **activation_options,
) -> nn.Module:
    """Build an architecture by name.

    Names: ``cnn`` (small VGG-style CNN), ``vgg11``, ``resnet20`` (CIFAR ResNet, 3x3 blocks of
    16/32/64 x width), ``resnet19`` (tdBN paper, SPEC 2.5: 128/256/512 x width, FC 256), or
    ``torchvision:NAME`` for any torchvision classification model (ANN only).

    Args:
        activation: a factory or a name for :func:`activation_factory` (``alpha``/``levels`` options).
        norm: ``norm(num_features, dims, alpha)`` factory; BatchNorm by default.
        pool: ``avg`` or ``max`` pooling (cnn and vgg11).
    """
    act = (
        activation_factory(activation, **activation_options)
        if isinstance(activation, str)
        else activation
    )
    norm = norm or batch_norm
    if name == "cnn":
        return SmallCNN(num_classes, in_channels, image_size, width, act, norm, pool)
    if name == "vgg11":
        return VGG("vgg11", num_classes, in_channels, image_size, width, act, norm, pool)
    if name == "resnet20":
        stages = [(_w(16, width), 3, 1), (_w(32, width), 3, 2), (_w(64, width), 3, 2)]
        return ResNet(_w(16, width), stages, num_classes, in_channels, 0, act, norm)
    if name == "resnet19":
        stages = [(_w(128, width), 3, 1), (_w(256, width), 3, 2), (_w(512, width), 2, 2)]
        return ResNet(_w(128, width), stages, num_classes, in_channels, _w(256, width), act, norm)
    if name.startswith("torchvision:"):
        return torchvision_model(name.split(":", 1)[1], num_classes, in_channels)
    raise ValueError(
        f"unknown architecture {name!r}: choose one of {', '.join(MODEL_NAMES)} or torchvision:NAME"
    )


def torchvision_model(name: str, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """A torchvision classification model with random weights, its first conv adapted to ``in_channels``."""
    import torchvision

    try:
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes)
    except ValueError as err:
        raise ValueError(f"torchvision has no classification model {name!r}: {err}") from None
    if in_channels != 3:
        for parent in model.modules():
            for child_name, child in parent.named_children():
                if isinstance(child, nn.Conv2d) and child.in_channels == 3:
                    setattr(
                        parent,
                        child_name,
                        nn.Conv2d(
                            in_channels,
                            child.out_channels,
                            child.kernel_size,
                            child.stride,
                            child.padding,
                            child.dilation,
                            child.groups,
                            child.bias is not None,
                        ),
                    )
                    return model
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "MODEL_NAMES",
    "BasicBlock",
    "ResNet",
    "SmallCNN",
    "VGG",
    "activation_factory",
    "batch_norm",
    "build_model",
    "count_parameters",
    "no_norm",
    "torchvision_model",
]
