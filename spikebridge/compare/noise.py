"""Seeded image noise for robustness tests, the same noisy images for every route.

A spec reads ``NAME:LEVEL[,LEVEL...]``, e.g. ``gaussian:0.1,0.2,0.3`` or ``salt-pepper:0.05,0.1``
(the noise types of Tavanaei & Maida 2017, section on noisy MNIST). Kinds:

- ``gaussian``: additive white noise, x + sigma * N(0, 1), sigma in (0, 1];
- ``salt-pepper``: each pixel independently replaced, with probability ``density`` in (0, 1], by
  0 or 1 (equally likely);
- ``speckle``: multiplicative noise, x + x * sigma * N(0, 1), sigma in (0, 1].

Results are clipped to [0, 1] (images stay valid rate-coding intensities). The noise of test
sample i depends only on (seed, kind, level, i): not on the batch size, the shard or the order
in which a route reads the test set, so every route is scored on the same noisy images.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..settings import SettingsError, register_check

# kind -> (id mixed into the seed, largest level, what the level means)
NOISE_KINDS: dict[str, tuple[int, float, str]] = {
    "gaussian": (1, 1.0, "standard deviation sigma"),
    "salt-pepper": (2, 1.0, "density (fraction of pixels replaced)"),
    "speckle": (3, 1.0, "standard deviation sigma of the multiplicative noise"),
}
_ALIASES = {"salt-and-pepper": "salt-pepper", "saltpepper": "salt-pepper", "s&p": "salt-pepper"}


class NoiseSpecError(ValueError):
    """A noise spec names an unknown kind or a level out of range."""


@dataclass(frozen=True)
class NoiseSpec:
    """One noise kind and the levels to test it at."""

    kind: str
    levels: tuple[float, ...]

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(f'{v:g}' for v in self.levels)}"


def _kind(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in NOISE_KINDS:
        raise NoiseSpecError(
            f"unknown noise {name!r}; choose one of: {', '.join(NOISE_KINDS)} "
            "(e.g. --noise gaussian:0.1,0.2)"
        )
    return key


def check_level(kind: str, level: float) -> float:
    """``level`` as a float, or a :class:`NoiseSpecError` naming the kind and the range."""
    kind = _kind(kind)
    _, top, meaning = NOISE_KINDS[kind]
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise NoiseSpecError(f"noise {kind}: level {level!r} is not a number") from None
    if not (0 < value <= top):
        raise NoiseSpecError(
            f"noise {kind}: level {value:g} is out of range; the {meaning} must be in (0, {top:g}]"
        )
    return value


def parse_noise(spec: str) -> NoiseSpec:
    """``'gaussian:0.1,0.2'`` -> NoiseSpec('gaussian', (0.1, 0.2)); named errors otherwise."""
    if not isinstance(spec, str) or ":" not in spec:
        raise NoiseSpecError(
            f"noise spec {spec!r} must read NAME:LEVEL[,LEVEL...], e.g. gaussian:0.1,0.2,0.3"
        )
    name, _, levels = spec.partition(":")
    kind = _kind(name)
    parts = [p.strip() for p in levels.split(",") if p.strip()]
    if not parts:
        raise NoiseSpecError(f"noise spec {spec!r} gives no levels, e.g. {kind}:0.1,0.2")
    values = tuple(dict.fromkeys(check_level(kind, p) for p in parts))
    return NoiseSpec(kind, values)


def parse_noise_specs(specs: Iterable[str] | None) -> list[NoiseSpec]:
    """Several specs (repeatable ``--noise``); one kind given twice is an error."""
    parsed = [parse_noise(s) for s in (specs or [])]
    kinds = [p.kind for p in parsed]
    repeated = sorted({k for k in kinds if kinds.count(k) > 1})
    if repeated:
        raise NoiseSpecError(
            f"noise {', '.join(repeated)} given more than once; list all its levels in one spec"
        )
    return parsed


def noise_conditions(specs: Sequence[NoiseSpec]) -> list[tuple[str, float]]:
    """[(kind, level), ...] in the order given."""
    return [(s.kind, level) for s in specs for level in s.levels]


def _rng(seed: int, kind: str, level: float, index: int) -> np.random.Generator:
    return np.random.default_rng(
        [int(seed), NOISE_KINDS[kind][0], int(round(level * 1_000_000)), int(index)]
    )


def add_noise(x: Tensor, kind: str, level: float, seed: int, index: int) -> Tensor:
    """Noisy copy of one image x [C, H, W] in [0, 1], sample ``index`` of the test set."""
    kind = _kind(kind)
    level = check_level(kind, level)
    rng = _rng(seed, kind, level, index)
    img = x.detach().cpu().double().numpy()
    if kind == "gaussian":
        out = img + level * rng.standard_normal(img.shape)
    elif kind == "speckle":
        out = img + img * level * rng.standard_normal(img.shape)
    else:  # salt-pepper
        hit = rng.random(img.shape) < level
        salt = rng.random(img.shape) < 0.5
        out = np.where(hit, salt.astype(np.float64), img)
    return torch.from_numpy(np.clip(out, 0.0, 1.0)).to(x.dtype)


class NoisyDataset(Dataset):
    """``dataset`` with seeded noise on every image; items ``(noisy x, label)``.

    Sample i always gets the same noise for the same (seed, kind, level). Static images only.
    """

    def __init__(self, dataset: Dataset, kind: str, level: float, seed: int = 0) -> None:
        self.dataset = dataset
        self.kind = _kind(kind)
        self.level = check_level(self.kind, level)
        self.seed = int(seed)
        targets = getattr(dataset, "targets", None)
        if targets is not None:
            self.targets = targets

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int):
        x, y = self.dataset[index]
        if not isinstance(x, Tensor) or x.dim() != 3:
            raise ValueError(
                f"noise {self.kind}: expected static images [C, H, W], got "
                f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}; noise is not "
                "defined for event data"
            )
        return add_noise(x, self.kind, self.level, self.seed, index), y


def noisy_loader(loader: DataLoader, kind: str, level: float, seed: int = 0) -> DataLoader:
    """A loader like ``loader`` (same batch size, order, workers) over its noisy dataset."""
    return DataLoader(
        NoisyDataset(loader.dataset, kind, level, seed),
        batch_size=loader.batch_size,
        shuffle=False,
        num_workers=loader.num_workers,
    )


def check_noise_setting(value: list) -> list[str]:
    """The ``noise`` setting checked (SettingsError names it): specs like 'gaussian:0.1,0.2'."""
    if not all(isinstance(v, str) for v in value):
        raise SettingsError(f"noise must be a list of specs like 'gaussian:0.1,0.2', got {value!r}")
    try:
        return [str(spec) for spec in parse_noise_specs(value)]
    except NoiseSpecError as err:
        raise SettingsError(f"noise: {err}") from None


register_check("noise", check_noise_setting)

__all__ = [
    "NOISE_KINDS",
    "NoiseSpec",
    "NoiseSpecError",
    "NoisyDataset",
    "add_noise",
    "check_level",
    "noise_conditions",
    "noisy_loader",
    "parse_noise",
    "parse_noise_specs",
]
