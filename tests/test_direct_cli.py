"""``spikebridge train``: output files, resume and bad input (issue 4)."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from spikebridge.cli import main


def shared_data_dir() -> Path:
    env = os.environ.get("SPIKEBRIDGE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


BASE = [
    "train",
    "--arch",
    "cnn",
    "--width",
    "0.25",
    "--batch-size",
    "32",
    "--train-limit",
    "96",
    "--limit",
    "40",
    "--device",
    "cpu",
    "--quiet",
    "--seed",
    "0",
]


def test_train_writes_history_curve_summary_and_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            BASE
            + ["--dataset", "digits", "--direct-timesteps", "3", "--epochs", "1", "--out", str(out)]
        )
        == 0
    )
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == [
        "epoch", "loss", "train_accuracy_pct", "validation_accuracy_pct", "test_accuracy_pct",
        "seconds",
    ]  # fmt: skip
    assert history["epoch"].tolist() == [1]
    curve = pd.read_csv(out / "accuracy_vs_timesteps.csv")
    assert list(curve.columns) == ["route", "method", "timesteps", "accuracy_pct"]
    assert curve["timesteps"].tolist() == [1, 2, 3]
    assert set(curve["route"]) == {"direct"} and set(curve["method"]) == {"stbp-tdbn"}
    assert curve["accuracy_pct"].between(0, 100).all()
    summary = json.loads((out / "summary.json").read_text())
    assert 100 * summary["test_accuracy"] == pytest.approx(curve["accuracy_pct"].iloc[-1])
    assert summary["test_samples"] == 40
    assert (out / "checkpoint.pt").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]

    # --resume continues to epoch 2 and the history keeps epoch 1
    assert (
        main(
            BASE
            + [
                "--dataset",
                "digits",
                "--direct-timesteps",
                "3",
                "--epochs",
                "2",
                "--out",
                str(out),
                "--resume",
            ]
        )
        == 0
    )
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2]


def test_resume_with_another_architecture_fails_clearly(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            BASE
            + ["--dataset", "digits", "--direct-timesteps", "2", "--epochs", "1", "--out", str(out)]
        )
        == 0
    )
    args = BASE + [
        "--dataset",
        "digits",
        "--direct-timesteps",
        "2",
        "--epochs",
        "2",
        "--out",
        str(out),
        "--resume",
    ]
    args[args.index("--width") + 1] = "0.5"
    assert main(args) == 2
    assert "different" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1"])
def test_non_positive_timesteps_is_a_usage_error(tmp_path, value):
    with pytest.raises(SystemExit) as err:
        main(BASE + ["--dataset", "digits", "--timesteps", value, "--out", str(tmp_path)])
    assert err.value.code == 2


def test_nmnist_events_train_through_the_cli(tmp_path):
    root = shared_data_dir() / "nmnist-small"
    if not (root / "test100.txt").exists():
        pytest.skip(f"N-MNIST subset not found in {root} (set SPIKEBRIDGE_SHARED_DATA)")
    out = tmp_path / "nmnist"
    args = BASE + [
        "--dataset",
        "nmnist",
        "--data-root",
        str(root),
        "--direct-timesteps",
        "4",
        "--epochs",
        "1",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_samples"] == 40
    assert summary["spec"]["encoding"] == "events" and summary["spec"]["in_channels"] == 2
    assert len(pd.read_csv(out / "accuracy_vs_timesteps.csv")) == 4
