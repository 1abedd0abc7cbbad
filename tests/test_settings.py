"""Settings dataclasses: one default per setting, and flags and config keys generated from them."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from spikebridge.cli import build_parser
from spikebridge.cli.config import resolve
from spikebridge.cli.flags import add_flags, given
from spikebridge.compare.config import Settings, check_value
from spikebridge.settings import ConversionSettings, SettingsError, TrainingSettings, setting


def test_each_setting_has_one_default_across_commands():
    assert ConversionSettings().calibration_samples == Settings().calibration_samples == 2000
    training = TrainingSettings()
    assert training.direct_optimizer == "sgd" and training.direct_learning_rate() == 0.1
    assert TrainingSettings(direct_optimizer="adam").direct_learning_rate() == 1e-3
    assert training.direct_epoch_count() == training.epochs
    parser = build_parser()
    for command in (["convert"], ["compare"], ["train"]):
        args = parser.parse_args(command)
        assert all(getattr(args, n) is None for n in args.settings)  # the dataclass decides


@dataclass
class _Extended(ConversionSettings):
    noise_std: float = setting(0.0, "std of Gaussian noise on test images", non_negative=True)


def test_a_new_field_is_one_line_and_gets_a_flag_and_checks():
    parser = argparse.ArgumentParser()
    names = add_flags(parser, _Extended)
    assert "noise_std" in names
    args = parser.parse_args(["--noise-std", "0.2", "--method", "max"])
    values = given(args, names)
    assert values == {"noise_std": 0.2, "methods": "max"}
    assert _Extended(**values).noise_std == 0.2
    with pytest.raises(SettingsError, match="noise_std must be >= 0"):
        _Extended(noise_std=-1.0)
    assert "std of Gaussian noise" in parser.format_help()


def test_compare_and_train_flags_come_from_the_same_fields():
    parser = build_parser()
    compare = parser.parse_args(
        ["compare", "--direct-optimizer", "adam", "--calibration-samples", "9"]
    )
    assert (compare.direct_optimizer, compare.calibration_samples) == ("adam", 9)
    train = parser.parse_args(["train", "--optimizer", "adam", "--epochs", "3"])
    resolve(train)  # --epochs: every network train trains, the SNN
    assert (train.direct_optimizer, train.direct_epochs) == ("adam", 3)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--optimizer", "rmsprop"])


def test_bad_values_name_the_setting():
    with pytest.raises(SettingsError, match="percentile must be in"):
        ConversionSettings(percentile=120.0)
    with pytest.raises(SettingsError, match="percentile must be a number or 'auto'"):
        ConversionSettings(percentile="best")
    assert ConversionSettings(percentile="auto").percentile == "auto"
    with pytest.raises(SettingsError, match="initial_potential must be a fraction"):
        check_value("initial_potential", 1.5)
    with pytest.raises(SettingsError, match="unknown setting 'timestep'"):
        check_value("timestep", 3)
