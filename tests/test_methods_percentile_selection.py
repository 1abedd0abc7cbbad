"""Choosing p of the percentile/channel methods on held-out training images (Rueckauer 2017
leaves p to the user): the choice is the validation argmax, never the test set."""

from __future__ import annotations

import json

import pytest
import torch
from test_methods_fixtures import digits_loaders, trained_digits

from spikebridge.cli import main
from spikebridge.convert import Converter, PercentileSettings, select_percentile
from spikebridge.data import calibration_loader
from spikebridge.evaluation import evaluate


def test_held_out_loader_is_disjoint_from_the_calibration_subset():
    train = digits_loaders()[0].dataset
    calib = calibration_loader(train, 300, 50, seed=3)
    held = calibration_loader(train, 300, 50, seed=3, skip=300)
    indices = lambda loader: set(loader.dataset.indices)  # noqa: E731
    assert len(indices(held)) == 300 and not indices(calib) & indices(held)
    with pytest.raises(ValueError, match="skip=.* leaves no samples"):
        calibration_loader(train, 10, 10, skip=len(train))


def test_selection_is_the_validation_argmax_and_shares_one_calibration():
    model = trained_digits()
    train = digits_loaders()[0].dataset
    calib = calibration_loader(train, 256, 64, seed=0)
    validation = list(calibration_loader(train, 256, 64, seed=0, skip=256))
    converter = Converter(model, calib)
    candidates = (90.0, 99.0, 100.0)
    choice = select_percentile(converter, validation, 6, "channel", candidates, 0.5)
    stats = converter.statistics()
    for p in candidates:  # recompute each candidate independently
        own = {"channel": PercentileSettings(percentile=p)}
        independent = Converter(model, calib, settings=own).build("channel", initial_potential=0.5)
        expected = float(evaluate(independent, validation, 6).accuracy[-1])
        assert choice.accuracy[p] == pytest.approx(expected)
    best = max(choice.accuracy.values())
    assert choice.accuracy[choice.percentile] == best
    assert choice.percentile == max(p for p, a in choice.accuracy.items() if a == best)
    assert converter.statistics() is stats  # calibrated once
    thresholds = {
        p: converter.scales("channel", settings=PercentileSettings(percentile=p))
        for p in (90.0, 100.0)
    }
    assert all(torch.all(thresholds[90.0][k] <= thresholds[100.0][k]) for k in thresholds[90.0])


def test_selection_refuses_methods_without_a_percentile_and_empty_inputs():
    converter = Converter(trained_digits(), calibration_loader(digits_loaders()[0].dataset, 64))
    with pytest.raises(ValueError, match="method 'max' has no percentile"):
        select_percentile(converter, [], 4, "max")
    with pytest.raises(ValueError, match="candidates is empty"):
        select_percentile(converter, [], 4, "channel", ())
    with pytest.raises(ValueError, match="validation data is empty"):
        select_percentile(converter, [], 4, "channel")


FAST = ["--dataset", "digits", "--width", "0.25", "--timesteps", "6", "--limit", "64"]


def test_cli_percentile_auto_records_the_choice(tmp_path, capsys):
    out = tmp_path / "auto"
    args = [*FAST, "--quiet", "--train-epochs", "1", "--method", "channel", "--percentile", "auto"]
    args += ["--calibration-samples", "256", "--validation-samples", "128", "--out", str(out)]
    assert main(["convert", *args]) == 0
    summary = json.loads((out / "summary.json").read_text())
    tried = summary["percentile_selection"]["validation_accuracy"]
    assert set(tried) == {"99.0", "99.5", "99.9", "99.99"}
    assert summary["percentile"] in (99.0, 99.5, 99.9, 99.99)
    assert tried[str(summary["percentile"])] == max(tried.values())
    assert "percentile auto (channel, T=6, validation)" in capsys.readouterr().out


def test_cli_percentile_auto_without_held_out_images_is_refused(tmp_path, capsys):
    out = tmp_path / "none"
    args = [*FAST, "--quiet", "--method", "channel", "--percentile", "auto", "--out", str(out)]
    assert main(["convert", *args, "--calibration-samples", "5000"]) == 2
    assert "lower --calibration-samples" in capsys.readouterr().err
    # no result: at most the run record, which says the run failed (docs/reliability.md)
    assert sorted(p.name for p in out.glob("*")) in ([], ["run.json"])
    if (out / "run.json").exists():
        assert json.loads((out / "run.json").read_text())["status"] == "failed"


def test_cli_percentile_rejects_other_words(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--percentile", "best"])
    assert "or 'auto'" in capsys.readouterr().err
