"""Runs that meet in one output directory, killed runs and resumed runs, through the CLI
(issue 12): the second of two runs is refused and the first's files stay intact; a kill during a
write leaves no temporary file after the next run; ``--resume`` with a changed T is refused."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from spikebridge.cli import main
from spikebridge.io import atomic_write
from spikebridge.rundir import LOCK_NAME, RECORD_NAME

ROOT = Path(__file__).resolve().parents[1]
TRAIN = [
    "train", "--width", "0.25", "--batch-size", "32", "--limit", "32", "--direct-timesteps", "2",
    "--device", "cpu", "--quiet",
]  # fmt: skip
COMPARE = [
    "compare", "--width", "0.25", "--batch-size", "64", "--limit", "64", "--train-limit", "256",
    "--calibration-samples", "64", "--timesteps", "8", "--epochs", "2", "--direct-epochs", "1",
    "--direct-timesteps", "2", "--methods", "max,channel", "--device", "cpu", "--quiet",
]  # fmt: skip


def _spikebridge(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "spikebridge", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_lock(out: Path, pid: int, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads((out / LOCK_NAME).read_text()).get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        if process.poll() is not None:
            pytest.fail(f"the first run ended before it took {out}: {process.communicate()}")
        time.sleep(0.05)
    pytest.fail(f"the first run did not take {out} within {timeout} s")


@pytest.mark.slow
def test_second_train_into_a_busy_directory_is_refused_and_the_first_finishes(tmp_path, capsys):
    out = tmp_path / "run"
    first = _spikebridge(
        [*TRAIN, "--train-limit", "512", "--epochs", "3", "--seed", "0", "--out", str(out)]
    )
    try:
        _wait_for_lock(out, first.pid, first)
        status = main(
            [*TRAIN, "--train-limit", "64", "--epochs", "1", "--seed", "1", "--out", str(out)]
        )
        message = capsys.readouterr().err
    finally:
        stdout, stderr = first.communicate(timeout=600)
    assert status == 2
    assert re.search(rf"--out .* is in use by another spikebridge run \(pid {first.pid}\b", message)
    assert first.returncode == 0, stderr
    # every file is the first run's: 3 epochs of seed 0 on 512 samples (461 once the 10 % held
    # out for validation are set aside)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["epochs"], summary["seed"], summary["train_samples"]) == (3, 0, 461)
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2, 3]
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    assert saved["epoch"] == 3 and saved["config"]["seed"] == 0
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["status"] == "finished" and record["settings"]["seed"] == 0
    assert not (out / LOCK_NAME).exists()


@pytest.mark.slow
def test_two_comparisons_started_together_one_is_refused_and_the_results_are_one_experiments(
    tmp_path,
):
    out = tmp_path / "cmp"
    runs = {
        seed: _spikebridge([*COMPARE, "--seed", str(seed), "--out", str(out)]) for seed in (0, 1)
    }
    results = {seed: (*p.communicate(timeout=600), p.returncode) for seed, p in runs.items()}
    statuses = sorted(status for _, _, status in results.values())
    assert statuses == [0, 2], results
    winner = next(seed for seed, (_, _, status) in results.items() if status == 0)
    loser = 1 - winner
    # refused while the winner holds the directory (the usual case), or, should the loser start
    # only after the winner has finished, for the directory holding another experiment
    busy = rf"--out .* is in use by another spikebridge run \(pid {runs[winner].pid}\b"
    taken = r"--out .* holds the results of a different experiment"
    assert re.search(rf"spikebridge compare: error: ({busy}|{taken})", results[loser][1]), results[
        loser
    ][1]
    # every record in the directory is the winner's experiment
    assert json.loads((out / "results.json").read_text())["settings"]["seed"] == winner
    assert json.loads((out / "experiment.json").read_text())["settings"]["seed"] == winner
    assert json.loads((out / RECORD_NAME).read_text())["settings"]["seed"] == winner


def _kill_while_writing(target: Path) -> None:
    """A forked process is killed (SIGKILL) halfway through writing ``target`` atomically."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:

            def write(tmp: str) -> None:
                Path(tmp).write_bytes(b"half a checkpoint")
                os.write(ready_w, b"1")
                time.sleep(60)

            atomic_write(target, write)
        finally:
            os._exit(1)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_a_kill_during_a_write_leaves_no_temporary_file_after_the_next_run(tmp_path):
    out = tmp_path / "run"
    assert main([*TRAIN, "--train-limit", "64", "--epochs", "1", "--out", str(out)]) == 0
    before = (out / "checkpoint.pt").read_bytes()
    _kill_while_writing(out / "checkpoint.pt")
    assert [p.name for p in out.glob(".checkpoint.pt.*.tmp")], "the killed write left nothing"
    assert (out / "checkpoint.pt").read_bytes() == before  # the half-written file never replaced it
    assert (
        main([*TRAIN, "--train-limit", "64", "--epochs", "2", "--resume", "--out", str(out)]) == 0
    )
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2]


def test_resume_with_a_changed_timesteps_is_refused_and_summary_records_what_ran(tmp_path, capsys):
    out = tmp_path / "run"
    base = [*TRAIN, "--train-limit", "64", "--out", str(out)]
    assert main([*base, "--epochs", "1"]) == 0
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main([*base, "--epochs", "2", "--resume", "--direct-timesteps", "3"]) == 2
    err = capsys.readouterr().err
    assert "--direct-timesteps: 2 in the run being resumed, 3 now" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    # the same settings with more epochs resume, and summary.json says what ran
    assert main([*base, "--epochs", "2", "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["timesteps"] == 2 and summary["epochs"] == 2
    assert summary["resumed_from_epoch"] == 1
    record = json.loads((out / RECORD_NAME).read_text())
    assert record["status"] == "finished" and record["settings"]["direct_epochs"] == 2
    assert "summary.json" in record["files"]


def test_overwrite_replaces_another_commands_results(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*TRAIN, "--train-limit", "64", "--epochs", "1", "--out", str(out)]) == 0
    convert = [
        "convert", "--width", "0.25", "--batch-size", "64", "--limit", "32",
        "--calibration-samples", "32", "--timesteps", "4", "--method", "max", "--device", "cpu",
        "--quiet", "--out", str(out),
    ]  # fmt: skip
    assert main(convert) == 2
    assert "holds the results of `spikebridge train`" in capsys.readouterr().err
    assert main([*convert, "--overwrite"]) == 0
    names = {p.name for p in out.iterdir()}
    assert "checkpoint.pt" not in names  # train's files are gone; history.csv is convert's
    assert set(pd.read_csv(out / "history.csv")["route"]) == {"ann"}
    assert {"snn_max.pt", "summary.json", RECORD_NAME} <= names
    assert json.loads((out / RECORD_NAME).read_text())["command"] == "convert"


def test_max_pool_replacement_warns_once_per_layer():
    """Listing the applicable methods inspects the network without warning; the conversion
    with ``maxpool="avg"`` warns once per replaced max-pool layer."""
    import warnings

    from spikebridge.convert.converter import Converter, applicable_methods
    from spikebridge.data import make_loaders
    from spikebridge.models import build_model

    model = build_model("cnn", 10, 1, 8, width=0.25, pool="max").eval()
    pools = sum(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    assert pools >= 1
    train_loader, _ = make_loaders("digits", batch_size=32, seed=0, train_limit=32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        applicable_methods(model)
        Converter(model, train_loader, "avg")
    replaced = [w for w in caught if "max-pooling replaced" in str(w.message)]
    assert len(replaced) == pools
