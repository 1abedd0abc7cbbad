"""Seeded noise: spec parsing, named errors, and the same noisy images for every route."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from spikebridge.compare.noise import (
    NoiseSpec,
    NoiseSpecError,
    NoisyDataset,
    add_noise,
    noise_conditions,
    noisy_loader,
    parse_noise,
    parse_noise_specs,
)


def test_parse_specs():
    assert parse_noise("gaussian:0.1,0.2,0.3") == NoiseSpec("gaussian", (0.1, 0.2, 0.3))
    assert parse_noise("Salt_Pepper:0.05, 0.1") == NoiseSpec("salt-pepper", (0.05, 0.1))
    specs = parse_noise_specs(["gaussian:0.1", "salt-pepper:0.05,0.1"])
    assert noise_conditions(specs) == [
        ("gaussian", 0.1),
        ("salt-pepper", 0.05),
        ("salt-pepper", 0.1),
    ]
    assert str(specs[1]) == "salt-pepper:0.05,0.1"


@pytest.mark.parametrize(
    "spec, match",
    [
        ("blur:0.1", "unknown noise 'blur'"),
        ("gaussian:0", r"gaussian: level 0 is out of range.*\(0, 1\]"),
        ("gaussian:1.5", "gaussian: level 1.5 is out of range"),
        ("salt-pepper:-0.1", "salt-pepper: level -0.1 is out of range"),
        ("speckle:abc", "speckle: level 'abc' is not a number"),
        ("gaussian", "NAME:LEVEL"),
        ("gaussian:", "gives no levels"),
    ],
)
def test_bad_specs_are_named_errors(spec, match):
    with pytest.raises(NoiseSpecError, match=match):
        parse_noise(spec)


def test_a_kind_given_twice_is_an_error():
    with pytest.raises(NoiseSpecError, match="gaussian given more than once"):
        parse_noise_specs(["gaussian:0.1", "gaussian:0.2"])


def test_noise_properties_on_digits(digits_loaders):
    x, _ = digits_loaders[1].dataset[0]
    sp = add_noise(x, "salt-pepper", 0.3, seed=0, index=0)
    changed = (sp != x).float().mean().item()
    assert 0.1 < changed <= 0.3 + 0.1  # about density/2..density of the pixels change
    assert set(sp[sp != x].unique().tolist()) <= {0.0, 1.0}
    g = add_noise(x, "gaussian", 0.2, seed=0, index=0)
    assert g.min() >= 0 and g.max() <= 1 and not torch.equal(g, x)
    s = add_noise(torch.zeros_like(x), "speckle", 0.5, seed=0, index=0)
    assert torch.equal(s, torch.zeros_like(x))  # multiplicative: black stays black


def test_same_noisy_images_for_every_route(digits_loaders):
    """Whatever batch size, order or shard a route reads the test set in, sample i gets the
    same noise; a different seed or level gives different noise."""
    test_set = digits_loaders[1].dataset
    noisy = NoisyDataset(test_set, "gaussian", 0.2, seed=5)
    route_a = torch.cat([x for x, _ in DataLoader(noisy, batch_size=64)])
    route_b = torch.cat([x for x, _ in DataLoader(noisy, batch_size=7)])
    assert torch.equal(route_a, route_b)
    odd = [noisy[i][0] for i in range(1, 40, 2)]  # a second shard of every other sample
    assert all(torch.equal(route_a[i], x) for i, x in zip(range(1, 40, 2), odd))
    via_loader = torch.cat([x for x, _ in noisy_loader(digits_loaders[1], "gaussian", 0.2, 5)])
    assert torch.equal(route_a, via_loader)
    other_seed = NoisyDataset(test_set, "gaussian", 0.2, seed=6)[0][0]
    other_level = NoisyDataset(test_set, "gaussian", 0.3, seed=5)[0][0]
    assert not torch.equal(route_a[0], other_seed)
    assert not torch.equal(route_a[0], other_level)
    labels = torch.cat([y for _, y in DataLoader(noisy, batch_size=64)])
    assert torch.equal(labels, torch.as_tensor(test_set.targets))


def test_event_data_is_rejected():
    data = [(torch.zeros(4, 2, 8, 8), 0)]
    with pytest.raises(ValueError, match="not defined for event data"):
        NoisyDataset(data, "gaussian", 0.1)[0]


class _Recorder(torch.nn.Module):
    """An 'ANN' that remembers every batch it is shown and predicts class 0."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.clone())
        return torch.nn.functional.one_hot(torch.zeros(len(x), dtype=torch.long), 10).float()


def test_robustness_table_scores_every_route_on_the_same_images(digits_loaders):
    from spikebridge.compare.robustness import Scored, robustness_figure, robustness_table

    small = DataLoader(torch.utils.data.Subset(digits_loaders[1].dataset, range(50)), 20)
    a, b = _Recorder(), _Recorder()
    specs = parse_noise_specs(["gaussian:0.1,0.3", "salt-pepper:0.05"])
    table = robustness_table([Scored("ann", "a", a), Scored("conversion", "b", b)], small, specs)
    assert len(a.seen) == len(b.seen) == 4 * 3  # 4 conditions x 3 batches
    assert all(torch.equal(x, y) for x, y in zip(a.seen, b.seen))
    assert not torch.equal(a.seen[0], a.seen[3])  # clean differs from noisy
    assert list(table["noise"][:4]) == ["clean", "gaussian", "gaussian", "salt-pepper"]
    assert list(table["level"][:4]) == [0.0, 0.1, 0.3, 0.05]
    assert (table["accuracy_drop"] == table["clean_accuracy"] - table["accuracy"]).all()
    assert len(robustness_figure(table).axes) == 2  # one panel per noise kind
