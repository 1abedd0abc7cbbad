"""The threshold-method registry and the one conversion loop: methods are read from one place,
and a method built per target T is built, simulated and reported at each of its own T only."""

from __future__ import annotations

import pytest
import torch
from test_methods_fixtures import digits_loaders, trained_digits

from spikebridge.cli import build_parser
from spikebridge.convert import Converter, SpikeNormSettings, converted_networks, run_conversion
from spikebridge.convert import methods as registry
from spikebridge.convert.loop import default_targets
from spikebridge.data import calibration_loader
from spikebridge.settings import ConversionSettings, SimulationSettings


def test_method_names_help_and_errors_come_from_the_registry():
    assert registry.METHODS == (
        "model", "max", "percentile", "channel", "spike-norm", "qcfs", "calibrated"
    )  # fmt: skip
    assert registry.PERCENTILE_METHODS == ("percentile", "channel")
    assert registry.get_method("qcfs").paper == "Bu 2022"
    text = registry.methods_help()
    assert all(f"{name} (" in text for name in registry.METHODS)
    assert registry.method_list("all") == list(registry.METHODS)
    assert registry.method_list("max, channel,max") == ["max", "channel"]
    with pytest.raises(ValueError, match="unknown method 'robust'.*spike-norm"):
        registry.method_list("max,robust")
    convert_help = build_parser()._subparsers._group_actions[0].choices["convert"].format_help()
    assert "Sengupta 2019" in convert_help and "--method" in convert_help


@pytest.fixture
def per_t_method():
    """A method registered for one test: threshold = T / 8 of the max method's, built per T."""
    built: list[int] = []

    def thresholds(source, settings):
        built.append(source.target)
        stats = source.statistics()
        return {n: torch.tensor(s.layer_max * source.target / 8) for n, s in stats.layers.items()}

    method = registry.register(
        registry.ThresholdMethod(
            name="test-per-t", paper="test", help="test", build=thresholds, calibrates=True,
            per_timesteps=True,
        )
    )  # fmt: skip
    yield method, built
    registry.REGISTRY.unregister(method.name)


def test_default_targets_are_powers_of_two_and_t_itself():
    assert default_targets(8) == [1, 2, 4, 8]
    assert default_targets(12) == [1, 2, 4, 8, 12]
    assert default_targets(1) == [1]


def test_a_per_timesteps_method_gets_one_network_per_target_scored_at_its_own_t(per_t_method):
    _, built = per_t_method
    train, test = digits_loaders()
    calib = calibration_loader(train.dataset, 128, 64, 0)
    conversion = ConversionSettings(methods="test-per-t,max")
    result = run_conversion(
        trained_digits(), calib, test, conversion, SimulationSettings(timesteps=8), strict=True
    )
    assert built == [1, 2, 4, 8]
    assert set(result.networks) == {"test-per-t-T1", "test-per-t-T2", "test-per-t-T4",
                                    "test-per-t-T8", "max"}  # fmt: skip
    rows = result.accuracy[result.accuracy["method"] == "test-per-t"]
    assert rows["timesteps"].tolist() == [1, 2, 4, 8]
    assert result.accuracy[result.accuracy["method"] == "max"]["timesteps"].tolist() == list(
        range(1, 9)
    )
    # each network has its own thresholds: the T = 4 network's are half the T = 8 network's
    t4 = result.networks["test-per-t-T4"].neurons()
    t8 = result.networks["test-per-t-T8"].neurons()
    for name in t4:
        assert torch.allclose(2 * t4[name].threshold, t8[name].threshold)


def test_under_all_a_method_that_does_not_apply_is_skipped_with_its_reason():
    train, _ = digits_loaders()
    converter = Converter(
        trained_digits(),
        calibration_loader(train.dataset, 64, 64, 0),
        settings={"spike-norm": SpikeNormSettings(window=8)},
    )
    skipped: dict[str, str] = {}
    names = [c.method for c in converted_networks(converter, "all", 2, skipped=skipped)]
    assert "qcfs" not in names and "QCFS" in skipped["qcfs"]
    # calibrated builds one network per target T (1, 2)
    assert names == ["model", "max", "percentile", "channel", "spike-norm", *["calibrated"] * 2]


NEW_METHOD = '''
"""A method with a setting, in one file: each layer's largest activation times a factor."""
from dataclasses import dataclass
from typing import ClassVar

from spikebridge.convert.methods import MethodSettings, ThresholdMethod, register
from spikebridge.settings import setting


@dataclass(frozen=True)
class ScaledMaxSettings(MethodSettings):
    prefix: ClassVar[str] = "scaled_max_"
    factor: float = setting(1.0, "scaled-max: factor on each layer's maximum", positive=True)


def thresholds(source, settings):
    stats = source.statistics()
    return {name: settings.factor * s.max.amax() for name, s in stats.layers.items()}


register(ThresholdMethod(name="scaled-max", paper="test", help="the maximum times a factor",
                         build=thresholds, settings=ScaledMaxSettings, calibrates=True))
'''


@pytest.fixture
def new_method(tmp_path):
    """The module above, written to a file and imported (as a method file in the package is)."""
    import importlib.util

    path = tmp_path / "scaled_max.py"
    path.write_text(NEW_METHOD)
    spec = importlib.util.spec_from_file_location("scaled_max", path)
    module = importlib.util.module_from_spec(spec)
    before = {name: registry.get_method(name) for name in registry.method_names()}
    spec.loader.exec_module(module)
    yield module, before
    registry.REGISTRY.unregister("scaled-max")


def test_a_method_with_a_setting_is_one_file_and_nothing_else_changes(new_method):
    from spikebridge.cli.flags import given
    from spikebridge.settings import SettingsError

    module, before = new_method
    # its flag and config key come from its settings dataclass
    parser = build_parser()
    convert = parser._subparsers._group_actions[0].choices["convert"]
    assert "--scaled-max-factor" in convert.format_help()
    args = parser.parse_args(["convert", "--method", "scaled-max", "--scaled-max-factor", "2"])
    settings = registry.resolve_settings(given(args, args.settings))
    assert settings["scaled-max"] == module.ScaledMaxSettings(factor=2.0)
    assert "scaled_max_factor" in {f for f in registry.method_settings_class().__dataclass_fields__}
    with pytest.raises(SettingsError, match="factor must be positive"):
        registry.resolve_settings({"scaled_max_factor": -1.0})
    # it converts, with its own setting
    train, _ = digits_loaders()
    converter = Converter(trained_digits(), calibration_loader(train.dataset, 64, 64, 0),
                          settings=settings)  # fmt: skip
    scaled, plain = converter.scales("scaled-max"), converter.scales("max")
    stats = converter.statistics()
    for name, s in stats.layers.items():
        assert torch.allclose(scaled[name], 2.0 * s.max.amax())
    assert converter.build("scaled-max").neurons()
    # nothing else changed: every other method and its settings are as they were
    assert {n: registry.get_method(n) for n in before} == before
    assert all(settings[n] == registry.get_method(n).settings() for n in before)
    assert registry.method_list("all")[-1] == "scaled-max" and plain


def test_flags_and_config_keys_resolve_to_each_methods_own_settings():
    from spikebridge.convert import CalibratedSettings, SpikeNormSettings
    from spikebridge.settings import SettingsError

    values = {"spike_norm_window": 8, "calibrated_weights": True, "arch": "cnn"}
    settings = registry.resolve_settings(values)
    assert settings["spike-norm"] == SpikeNormSettings(window=8)
    assert settings["calibrated"] == CalibratedSettings(weights=True)
    assert registry.flat_settings(settings)["spike_norm_window"] == 8
    with pytest.raises(SettingsError, match="window must be a positive integer"):
        registry.resolve_settings({"spike_norm_window": 0})
    with pytest.raises(TypeError, match="takes SpikeNormSettings"):
        Converter(trained_digits(), settings={"spike-norm": CalibratedSettings()}).scales(
            "spike-norm"
        )
