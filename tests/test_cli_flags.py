"""One flag, one meaning across commands (issue 22, item 6): ``--epochs`` trains every network a
command trains, ``--ann-*`` / ``--direct-*`` one network each, ``--lr`` refused in compare,
``--timesteps`` the simulated T everywhere; ``--config`` (TOML or a run's own record) on convert,
train and compare; ``--workers``; every option's help text."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from spikebridge.cli import build_parser, main
from spikebridge.cli import compare as compare_cli
from spikebridge.cli import convert as convert_cli
from spikebridge.cli import train as train_cli
from spikebridge.compare.config import Settings
from spikebridge.direct.experiment import training_settings, upgrade_record
from spikebridge.settings import ExperimentSettings, TrainingSettings

SMALL = ["--dataset", "digits", "--width", "0.25", "--limit", "32", "--train-limit", "64",
         "--batch-size", "32", "--device", "cpu", "--quiet"]  # fmt: skip


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


# --- help texts ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["convert", "train", "compare", "demo", "export"])
def test_every_option_has_one_help_text_without_repeated_notes(command):
    parser = subcommands()[command]
    for action in parser._actions:
        name = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{command} {name} has no help text"
        text = action.help
        assert len(re.findall(r"[(;,]\s*default\b", text)) <= 1, f"{command} {name}: {text}"
        assert not re.search(r"(\([^()]*\))\s*\1", text), f"{command} {name} repeats: {text}"
        assert "at most" not in text or text.count("at most") == 1, f"{command} {name}: {text}"
    assert "%(default)s" not in parser.format_help()


def test_the_simulated_t_and_the_training_t_are_two_flags_on_train_and_compare():
    for command in ("train", "compare"):
        options = {o for a in subcommands()[command]._actions for o in a.option_strings}
        assert {"--timesteps", "--direct-timesteps", "--direct-epochs", "--direct-lr"} <= options
    convert = {o for a in subcommands()["convert"]._actions for o in a.option_strings}
    assert {"--ann-epochs", "--ann-lr", "--epochs", "--lr", "--workers", "--config"} <= convert
    assert not any(o.startswith("--direct-") for o in convert)


# --- epochs and learning rates ---------------------------------------------------------------


def compare_settings(*argv: str) -> Settings:
    return compare_cli.settings_from_args(parse("compare", *argv))[0]


def test_compare_ann_epochs_alone_leaves_the_direct_snn_at_its_default():
    s = compare_settings("--ann-epochs", "3")
    assert (s.epochs, s.direct_epoch_count()) == (3, TrainingSettings().epochs)
    assert s.experiment()["direct_epochs"] == 5  # the record holds the resolved numbers


def test_compare_direct_epochs_alone_leaves_the_ann_at_its_default():
    s = compare_settings("--direct-epochs", "2")
    assert (s.epochs, s.direct_epoch_count()) == (5, 2)


def test_compare_epochs_sets_every_network_unless_its_own_flag_is_given():
    assert (
        compare_settings("--epochs", "4").epochs,
        compare_settings("--epochs", "4").direct_epochs,
    ) == (4, 4)
    s = compare_settings("--epochs", "4", "--ann-epochs", "2")
    assert (s.epochs, s.direct_epochs) == (2, 4)
    s = compare_settings("--direct-epochs", "1", "--epochs", "7")
    assert (s.epochs, s.direct_epochs) == (7, 1)


def test_compare_refuses_lr_naming_both_rates(capsys):
    for argv in (["--lr", "0.01"], ["--lr"]):
        with pytest.raises(SystemExit) as exit_:
            main(["compare", *argv])
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert "--lr" in err and "--ann-lr" in err and "--direct-lr" in err
    s = compare_settings("--ann-lr", "0.01", "--direct-lr", "0.2")
    assert (s.lr, s.direct_learning_rate()) == (0.01, 0.2)


def test_convert_and_train_epochs_and_lr_mean_their_one_network():
    convert = convert_cli.settings_from_args(parse("convert", "--epochs", "3", "--lr", "0.01"))
    assert (convert["training"].epochs, convert["training"].lr) == (3, 0.01)
    assert (
        convert_cli.settings_from_args(parse("convert", "--ann-epochs", "2"))["training"].epochs
        == 2
    )
    train = train_cli.settings_from_args(parse("train", "--epochs", "3", "--lr", "0.02"))
    t = train["training"]
    assert (t.direct_epoch_count(), t.direct_learning_rate()) == (3, 0.02)
    t = train_cli.settings_from_args(parse("train", "--direct-epochs", "2", "--optimizer", "adam"))[
        "training"
    ]
    assert (t.direct_epoch_count(), t.direct_optimizer) == (2, "adam")


def test_train_simulates_for_the_training_t_unless_timesteps_is_given():
    record = train_cli.settings_from_args(parse("train", "--direct-timesteps", "3"))["record"]
    assert (record["direct_timesteps"], record["timesteps"]) == (3, 3)
    record = train_cli.settings_from_args(parse("train", "--timesteps", "9"))["record"]
    assert (record["direct_timesteps"], record["timesteps"]) == (4, 9)


def test_train_timesteps_6_after_direct_timesteps_2_gives_rows_up_to_6(tmp_path):
    out = tmp_path / "run"
    argv = ["train", *SMALL, "--epochs", "1", "--direct-timesteps", "2", "--timesteps", "6"]
    assert main([*argv, "--energy-model", "ops", "--out", str(out)]) == 0
    curve = pd.read_csv(out / "accuracy_vs_timesteps.csv")
    assert curve["timesteps"].tolist() == [1, 2, 3, 4, 5, 6]
    assert int(pd.read_csv(out / "energy.csv")["timesteps"].iloc[0]) == 6
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert (settings["direct_timesteps"], settings["timesteps"]) == (2, 6)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["timesteps"], summary["simulated_timesteps"]) == (2, 6)


def test_stdp_route_refuses_timesteps(capsys):
    assert main(["train", "--route", "stdp", "--timesteps", "8", "--out", "unused"]) == 2
    assert "--stdp-timesteps" in capsys.readouterr().err


# --- --config --------------------------------------------------------------------------------


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_convert_record_fed_back_reproduces_the_settings(tmp_path):
    first = tmp_path / "first"
    argv = ["convert", *SMALL, "--epochs", "1", "--methods", "channel", "--timesteps", "4",
            "--calibration-samples", "32", "--percentile", "99.5"]  # fmt: skip
    assert main([*argv, "--out", str(first)]) == 0
    recorded = json.loads((first / "run.json").read_text())["settings"]
    again = convert_cli.settings_from_args(parse("convert", "--config", str(first / "run.json")))
    assert again["record"] == json.loads(json.dumps(recorded))
    # a flag given on the command line wins over the record
    changed = parse("convert", "--config", str(first / "run.json"), "--timesteps", "8")
    assert convert_cli.settings_from_args(changed)["record"]["timesteps"] == 8


def test_convert_toml_keys_are_setting_or_flag_names(tmp_path):
    path = write(tmp_path, "c.toml", 'ann-epochs = 2\nann_lr = 0.01\nmethods = "max"\n'
                 'timesteps = 16\nworkers = 1\nout = "from-file"\nsave-pickle = true\n')  # fmt: skip
    args = parse("convert", "--config", str(path))
    chosen = convert_cli.settings_from_args(args)
    flags = convert_cli.settings_from_args(parse("convert", "--ann-epochs", "2", "--ann-lr",
                                                 "0.01", "--methods", "max", "--timesteps", "16"))  # fmt: skip
    assert chosen["record"] == flags["record"]
    assert (args.workers, args.out, args.save_pickle) == (1, "from-file", True)


def test_train_toml_and_record_reproduce_the_settings(tmp_path):
    toml = write(tmp_path, "t.toml", "epochs = 3\ndirect_timesteps = 2\ntimesteps = 5\n"
                 'optimizer = "adam"\nseed = 4\n')  # fmt: skip
    from_toml = train_cli.settings_from_args(parse("train", "--config", str(toml)))["record"]
    from_flags = train_cli.settings_from_args(parse(
        "train", "--direct-epochs", "3", "--direct-timesteps", "2", "--timesteps", "5",
        "--direct-optimizer", "adam", "--seed", "4"))["record"]  # fmt: skip
    assert from_toml == from_flags
    record = write(tmp_path, "run.json", json.dumps(
        {"format": "spikebridge-run", "version": 1, "command": "train", "settings": from_flags}))  # fmt: skip
    assert (
        train_cli.settings_from_args(parse("train", "--config", str(record)))["record"]
        == from_flags
    )


def test_an_old_train_record_is_read_by_todays_names():
    old = {"arch": "cnn", "timesteps": 2, "epochs": 3, "lr": 0.1, "optimizer": "sgd", "seed": 0}
    new = upgrade_record(old)
    assert new["direct_timesteps"] == 2 and new["timesteps"] == 2
    assert (new["direct_epochs"], new["direct_lr"], new["direct_optimizer"]) == (3, 0.1, "sgd")
    e, t = ExperimentSettings(), TrainingSettings(direct_timesteps=2)
    assert upgrade_record(training_settings(e, t)) == training_settings(e, t)


def test_compare_record_fed_back_reproduces_the_settings(tmp_path):
    chosen = compare_settings("--ann-epochs", "3", "--direct-timesteps", "2", "--methods",
                              "max,channel", "--timesteps", "16", "--noise", "gaussian:0.1")  # fmt: skip
    record = write(tmp_path, "experiment.json", json.dumps(
        {"format": "spikebridge-comparison", "version": 1, "settings": chosen.experiment()}))  # fmt: skip
    again = compare_cli.settings_from_args(parse("compare", "--config", str(record)))[0]
    assert again.experiment() == chosen.experiment()
    toml = write(tmp_path, "c.toml", "epochs = 2\nann-epochs = 1\n")
    s = compare_settings("--config", str(toml))
    assert (s.epochs, s.direct_epochs) == (1, 2)  # a file's own key wins over its every-network key
    s = compare_settings("--config", str(toml), "--epochs", "6")
    assert (s.epochs, s.direct_epochs) == (6, 6)  # the command line wins over the file


REFUSALS = [
    ("convert", "c.toml", "direct_epochs = 2\n", r"c.toml, line 1: key 'direct_epochs' does not apply to `spikebridge convert`"),
    ("convert", "c.toml", "stdp-epochs = 1\n", r"key 'stdp-epochs' does not apply to `spikebridge convert`"),
    ("train", "t.toml", "methods = 'max'\n", r"t.toml, line 1: key 'methods' does not apply to `spikebridge train`"),
    ("convert", "c.toml", "ephocs = 2\n", r"c.toml, line 1: unknown key 'ephocs'"),
    ("compare", "c.toml", "overwrite = true\n", r"c.toml, line 1: key 'overwrite' is not allowed in a config file"),
    ("train", "t.toml", "resume = true\n", r"key 'resume' is not allowed in a config file"),
    ("convert", "c.toml", "trust_checkpoint = true\n", r"key 'trust_checkpoint' is not allowed in a config file.*--trust-checkpoint"),
    ("compare", "c.toml", "lr = 0.1\nann_lr = 0.2\n", r"c.toml, line 2: key 'ann_lr' sets what another key of the file sets \('lr'\)"),
    ("compare", "c.toml", "no-negative-spikes = true\n", r"unknown key 'no-negative-spikes'; write negative_spikes = false instead"),
    ("train", "t.toml", "quiet = true\n", r"key 'quiet' is not a setting; give --quiet on the command line"),
    ("convert", "c.toml", "timesteps = 0\n", r"c.toml, line 1: key 'timesteps': timesteps must be a positive integer"),
    ("convert", "run.json", json.dumps({"format": "spikebridge-run", "command": "train", "settings": {"seed": 0}}), r"run.json: key 'command': a record of `spikebridge train`, not of `spikebridge convert`"),
    ("train", "experiment.json", json.dumps({"format": "spikebridge-comparison", "settings": {"seed": 0}}), r"experiment.json: key 'command': a record of `spikebridge compare`"),
    ("convert", "summary.json", json.dumps({"settings": {"seed": 0}}), r"summary.json: not a spikebridge run record"),
]  # fmt: skip


@pytest.mark.parametrize("command, name, text, expect", REFUSALS, ids=[r[3][:40] for r in REFUSALS])
def test_bad_config_files_are_refused_in_one_line_naming_file_and_key(
    tmp_path, capsys, command, name, text, expect
):
    path = write(tmp_path, name, text)
    out = tmp_path / "out"
    assert main([command, "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(expect, err), err
    assert not out.exists()  # refused before anything ran


# --- --workers and export --quiet --------------------------------------------------------------


class Stop(Exception):
    pass


@pytest.mark.parametrize(
    "command, module",
    [("convert", "spikebridge.convert.experiment"), ("compare", "spikebridge.compare.pipeline")],
)
def test_workers_reach_the_data_loaders(tmp_path, monkeypatch, command, module):
    seen = {}

    def make_loaders(*args, num_workers=0, **kwargs):
        seen["workers"] = num_workers
        raise Stop()

    monkeypatch.setattr(f"{module}.make_loaders", make_loaders)
    with pytest.raises(Stop):
        main([command, *SMALL, "--workers", "2", "--out", str(tmp_path / "run")])
    assert seen["workers"] == 2
    with pytest.raises(SystemExit):
        parse(command, "--workers", "257")


def test_other_libraries_warnings_are_one_line_without_a_source_path(tmp_path):
    script = (
        "import warnings, sys\n"
        "from spikebridge.cli import _plain_warnings\n"
        "_plain_warnings('convert')\n"
        "warnings.warn_explicit('deprecated\\nthing', UserWarning, "
        "'/usr/lib/python3/site-packages/torch/nn/modules/x.py', 12)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert done.stderr.strip() == (
        "spikebridge convert: warning: deprecated thing (UserWarning from torch)"
    )


def test_the_example_config_of_docs_cli_md_reads(tmp_path):
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    args = parse("compare", "--config", str(write(tmp_path, "compare.toml", example)))
    s, out, _ = compare_cli.settings_from_args(args)
    assert (s.epochs, s.direct_epochs, s.direct_timesteps, s.timesteps) == (5, 3, 4, 32)
    assert out == "runs/mnist-compare" and args.workers == 4


def test_a_graph_file_runs_record_feeds_back_without_its_unused_architecture(tmp_path):
    """A run on a .onnx/.pt2 records the architecture defaults too; they are not refused."""
    graph = tmp_path / "net.onnx"
    graph.write_bytes(b"")
    settings = {"arch": "cnn", "width": 1.0, "pool": "avg", "checkpoint": str(graph),
                "timesteps": 8, "methods": "channel", "epochs": 0}  # fmt: skip
    record = write(tmp_path, "run.json", json.dumps(
        {"format": "spikebridge-run", "command": "convert", "settings": settings}))  # fmt: skip
    chosen = convert_cli.settings_from_args(parse("convert", "--config", str(record)))
    assert chosen["files"].checkpoint == str(graph) and chosen["simulation"].timesteps == 8
    toml = write(tmp_path, "c.toml", f'checkpoint = "{graph}"\narch = "vgg11"\n')
    with pytest.raises(ValueError, match="--arch describe"):
        convert_cli.settings_from_args(parse("convert", "--config", str(toml)))


def test_event_data_is_simulated_for_its_frames(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "nmnist", "--direct-timesteps", "4", "--timesteps", "8"]
    assert main([*argv, "--out", str(out)]) == 2
    assert "nmnist is fed as 4 event frames" in capsys.readouterr().err
    assert not out.exists()
