"""Comparison settings: TOML config files (unknown keys and wrong types name key and line), the
energy formula and firing rates of SPEC 3.2, and flag/config precedence of the CLI."""

from __future__ import annotations

import sys

import pytest
import torch

from spikebridge.cli import build_parser
from spikebridge.cli.compare import settings_from_args
from spikebridge.compare.config import ConfigError, Settings, key_line, load_config
from spikebridge.energy.table import energy_pj, firing_rate, snn_energy_row
from spikebridge.evaluation import Evaluation, LayerOps


def write(tmp_path, text: str):
    path = tmp_path / "experiment.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_file_reads_every_kind_of_setting(tmp_path):
    path = write(
        tmp_path,
        '# a comparison\narch = "vgg11"\ndata-root = "/data"\nmethods = ["max", "channel"]\n'
        'timesteps = 64\nwidth = 1\ne_ac = 0.077\ndownload = true\nout = "results"\n',
    )
    values = load_config(path)
    assert values == {
        "arch": "vgg11",
        "data_root": "/data",
        "methods": ["max", "channel"],
        "timesteps": 64,
        "width": 1.0,
        "e_ac": 0.077,
        "download": True,
        "out": "results",
    }
    settings = Settings(**{k: v for k, v in values.items() if k != "out"})
    assert settings.experiment()["methods"] == ["max", "channel"]


def test_unknown_key_names_the_key_and_its_line(tmp_path):
    path = write(tmp_path, 'arch = "cnn"\n\ntimestep = 32\n')
    with pytest.raises(ConfigError, match=r"line 3: unknown key 'timestep'"):
        load_config(path)


def test_unknown_table_names_its_header_line(tmp_path):
    path = write(tmp_path, 'arch = "cnn"\n[training]\nepochs = 3\n')
    with pytest.raises(ConfigError, match=r"line 2: unknown key 'training'"):
        load_config(path)


@pytest.mark.parametrize(
    "line, message",
    [
        (
            'timesteps = "32"',
            r"line 2: key 'timesteps': timesteps must be an integer, got str '32'",
        ),
        ("epochs = 2.5", r"line 2: key 'epochs': epochs must be an integer, got float"),
        ("width = true", r"line 2: key 'width': width must be a number, got bool"),
        ("methods = [1, 2]", r"line 2: key 'methods': methods must be a list of method names"),
        ('methods = "max,sparkle"', r"line 2: key 'methods': .*unknown method\(s\) 'sparkle'"),
        ("timesteps = 0", r"line 2: key 'timesteps': timesteps must be a positive integer"),
        ('encoding = "morse"', r"line 2: key 'encoding': encoding must be one of analog, poisson"),
        (
            "overwrite = true",
            r"line 2: key 'overwrite' is not allowed in a config file.*--overwrite",
        ),
    ],
)
def test_wrong_type_or_value_names_the_key_and_its_line(tmp_path, line, message):
    path = write(tmp_path, f'arch = "cnn"\n{line}\n')
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_invalid_toml_and_missing_file_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "arch = \n"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_python_without_a_toml_parser_gets_a_clear_error(tmp_path, monkeypatch):
    path = write(tmp_path, 'arch = "cnn"\n')
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(ConfigError, match="install the 'tomli' package"):
        load_config(path)


def test_key_line_finds_quoted_and_dotted_keys():
    text = 'a = 1\n"data-root" = "x"\n  epochs=3\n[compare]\n'
    assert key_line(text, "data-root") == 2
    assert key_line(text, "epochs") == 3
    assert key_line(text, "compare") == 4
    assert key_line(text, "missing") is None


def test_flags_override_the_config_file(tmp_path):
    path = write(tmp_path, 'dataset = "mnist"\ntimesteps = 64\nepochs = 2\nout = "from-file"\n')
    args = build_parser().parse_args(["compare", "--config", str(path), "--timesteps", "16"])
    settings, out, overwrite = settings_from_args(args)
    assert (settings.dataset, settings.timesteps, settings.epochs) == ("mnist", 16, 2)
    assert out == "from-file" and overwrite is False
    args = build_parser().parse_args(
        ["compare", "--config", str(path), "--out", "cli", "--overwrite"]
    )
    assert settings_from_args(args)[1:] == ("cli", True)


def test_boolean_settings_can_be_switched_either_way_over_the_config_file(tmp_path):
    """negative_spikes defaults per method (None); a file or a flag sets it either way."""
    assert Settings().negative_spikes is None
    path = write(tmp_path, "negative_spikes = true\n")
    args = build_parser().parse_args(["compare", "--config", str(path)])
    assert settings_from_args(args)[0].negative_spikes is True
    args = build_parser().parse_args(["compare", "--config", str(path), "--no-negative-spikes"])
    assert settings_from_args(args)[0].negative_spikes is False


def test_bad_flag_values_name_the_setting():
    args = build_parser().parse_args(["compare", "--methods", "max,nope"])
    with pytest.raises(ConfigError, match="unknown method"):
        settings_from_args(args)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["compare", "--timesteps", "0"])


def test_energy_formula_and_firing_rate():
    assert energy_pj(1e6, 0) == pytest.approx(4.6e6)
    assert energy_pj(2e6, 3e6, e_mac=3.1, e_ac=0.1) == pytest.approx(2e6 * 3.1 + 3e6 * 0.1)
    assert torch.allclose(
        energy_pj(torch.tensor([1.0, 2.0]), torch.tensor([10.0, 0.0])), torch.tensor([13.6, 9.2])
    )
    assert firing_rate(spikes=50, neurons=100, timesteps=4) == pytest.approx(0.125)
    with pytest.raises(ValueError):
        energy_pj(1, 1, e_mac=-1)
    with pytest.raises(ValueError):
        firing_rate(1, 0, 4)


def test_energy_row_combines_analog_macs_and_sops_per_inference():
    """Two samples, T = 2: an analog conv (100 MACs/sample/step) and a conv with known SOPs."""
    ev = Evaluation(
        correct=torch.tensor([1, 2]),
        total=2,
        spikes={"n": torch.tensor([6, 10])},
        neurons={"n": 8},
        layers={
            "conv1": LayerOps("conv", analog=True, macs_per_sample=100),
            "conv2": LayerOps("conv", sops=torch.tensor([40, 60]), inputs=torch.tensor([6, 10])),
        },
    )
    row = snn_energy_row("conversion", "max", ev, e_mac=4.6, e_ac=0.9, ann_energy=2000.0)
    assert row["macs"] == 200  # 100 per step x 2 steps, per sample
    assert row["sops"] == 50  # (40 + 60) / 2 samples
    assert row["energy_pJ"] == pytest.approx(4.6 * 200 + 0.9 * 50)
    assert row["energy_vs_ann"] == pytest.approx(row["energy_pJ"] / 2000.0)
    assert row["firing_rate"] == pytest.approx((16 / 2) / (8 * 2))
    assert row["accuracy"] == 1.0
