"""The stdp route and the noise pass inside `spikebridge compare` (digits, tiny settings)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from spikebridge.cli import main
from spikebridge.compare import run
from spikebridge.compare.config import ConfigError, Settings
from spikebridge.compare.routes.stdp import stdp_networks
from spikebridge.data import dataset_info

TINY = dict(
    methods="max",
    epochs=2,
    direct_epochs=1,
    direct_timesteps=2,
    timesteps=8,
    width=0.25,
    limit=40,
    train_limit=192,
    calibration_samples=64,
    batch_size=32,
    device="cpu",
    stdp_conv_channels=8,
    stdp_feature_channels=16,
    stdp_timesteps=8,
    noise=["gaussian:0.1,0.3", "salt-pepper:0.1"],
)


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stdp-compare") / "run"
    return out, run("cnn", "digits", out=out, **TINY)


def test_every_route_is_scored_on_the_same_noisy_images(noisy_run):
    out, result = noisy_run
    assert ("stdp", "ae-stdp") in set(zip(result.energy["route"], result.energy["method"]))
    robust = pd.read_csv(out / "robustness.csv")
    networks = set(zip(robust["route"], robust["method"]))
    assert networks == {
        ("ann", "relu"),
        ("conversion", "max"),
        ("direct", "stbp-tdbn"),
        ("stdp", "ae-stdp"),
    }
    for (route, _), part in robust.groupby(["route", "method"]):
        # every step t <= T of the spiking networks, one row for the ANN
        assert len(part) == 4 * (1 if route == "ann" else 8)
        final = part if route == "ann" else part[part["timesteps"] == 8]
        assert list(zip(final["noise"], final["level"])) == [
            ("clean", 0.0),
            ("gaussian", 0.1),
            ("gaussian", 0.3),
            ("salt-pepper", 0.1),
        ]
    drop = robust["clean_accuracy_pct"] - robust["accuracy_pct"]
    assert (robust["accuracy_drop_points"] - drop).abs().max() < 1e-9
    stdp = robust[(robust["route"] == "stdp") & (robust["timesteps"] == 8)]
    stdp_clean = stdp[stdp["noise"] == "clean"]
    energy = result.energy.set_index("route")
    assert stdp_clean["accuracy_pct"].item() == pytest.approx(100 * energy.loc["stdp", "accuracy"])
    assert (out / "accuracy_vs_noise.png").stat().st_size > 0
    report = (out / "report.html").read_text()
    assert "Accuracy (%) on noisy test images" in report and "gaussian:0.3" in report
    assert (out / "checkpoints" / "stdp.pt").is_file()


def test_unsupported_architecture_is_skipped_with_a_note():
    settings = Settings(arch="vgg11", dataset="digits")
    ctx = SimpleNamespace(settings=settings, info=dataset_info("digits"), notes=[])
    assert list(stdp_networks(ctx)) == []
    assert ctx.notes and ctx.notes[0].startswith("stdp route skipped: the stdp route does not")
    assert "'vgg11'" in ctx.notes[0]


def test_bad_noise_specs_are_named_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="noise: unknown noise 'blur'"):
        Settings(noise=["blur:0.1"])
    with pytest.raises(ConfigError, match="gaussian: level 2 is out of range"):
        Settings(noise=["gaussian:2"])
    code = main(["compare", "--out", str(tmp_path / "x"), "--noise", "salt-pepper:1.5"])
    assert code != 0
    assert "salt-pepper: level 1.5 is out of range" in capsys.readouterr().err
