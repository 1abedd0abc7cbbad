"""Files the toolkit did not write are never followed, truncated or deleted; checkpoints are
checksummed; a failed run leaves a "failed" record and no lock (issue 19, items 3-9, 11, 13)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch

from spikebridge.cli import main
from spikebridge.rundir import LOCK_NAME, DirectoryNotOwned, claim


def _snapshot(path: Path) -> tuple[bytes, float]:
    return path.read_bytes(), path.stat().st_mtime


def _old(path: Path, seconds: float = 7200) -> None:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


# item 3: the lock file ---------------------------------------------------------------------


def test_a_symlinked_lock_is_refused_and_its_target_left_intact(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("the user's data\n")
    _old(target)
    before = _snapshot(target)
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(target)
    with pytest.raises(DirectoryNotOwned, match=r"\.spikebridge\.lock.*symbolic link.*Remove it"):
        claim(out, "convert", {"seed": 0})
    assert _snapshot(target) == before
    assert (out / LOCK_NAME).is_symlink()  # not removed either


def test_a_dangling_lock_symlink_creates_nothing(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(tmp_path / "would-be-created")
    with pytest.raises(DirectoryNotOwned, match="symbolic link"):
        claim(out, "convert", {"seed": 0})
    assert not (tmp_path / "would-be-created").exists()


def test_a_hard_linked_or_foreign_lock_file_is_refused_untouched(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    os.link(target, out / LOCK_NAME)
    with pytest.raises(DirectoryNotOwned, match="hard links"):
        claim(out, "convert", {"seed": 0})
    assert target.read_text() == "mine"
    (out / LOCK_NAME).unlink()
    (out / LOCK_NAME).write_text("the user's own file called .spikebridge.lock\n")
    with pytest.raises(DirectoryNotOwned, match="other content"):
        claim(out, "convert", {"seed": 0})
    assert (out / LOCK_NAME).read_text().startswith("the user's own file")


def test_a_lock_path_that_is_a_directory_or_fifo_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).mkdir()
    with pytest.raises(DirectoryNotOwned, match="is a directory, not a spikebridge lock"):
        claim(out, "convert", {"seed": 0})
    (out / LOCK_NAME).rmdir()
    os.mkfifo(out / LOCK_NAME)
    with pytest.raises(DirectoryNotOwned, match="not a regular file"):
        claim(out, "convert", {"seed": 0})


def test_a_lock_left_by_a_killed_run_is_reused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": 999999, "command": "train"}) + "\n")
    with claim(out, "convert", {"seed": 0}):
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()


def test_cli_names_the_symlinked_lock_and_exits_2(tmp_path, capsys):
    target = tmp_path / "precious.txt"
    target.write_text("keep")
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).symlink_to(target)
    code = main(["train", "--limit", "32", "--epochs", "1", "--device", "cpu", "--quiet",
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert LOCK_NAME in err and "symbolic link" in err and "Traceback" not in err
    assert target.read_text() == "keep"


# items 4 and 5: export -------------------------------------------------------------------

TRAIN = [
    "train", "--width", "0.25", "--batch-size", "32", "--limit", "32", "--train-limit", "64",
    "--direct-timesteps", "2", "--device", "cpu", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A direct-training run directory (one epoch on digits), written once for the module."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main([*TRAIN, "--epochs", "1", "--out", str(out)]) == 0
    return out


def test_export_keeps_foreign_temporaries_and_its_input(trained, tmp_path, capsys):
    pytest.importorskip("nir")
    net = tmp_path / "net.pt"
    net.write_bytes((trained / "checkpoint.pt").read_bytes())
    (tmp_path / "net.pt.sha256").write_bytes((trained / "checkpoint.pt.sha256").read_bytes())
    foreign = tmp_path / ".thesis.abcd1234.tmp"
    foreign.write_text("chapter 3, unsaved")
    _old(foreign)
    keep = {p: _snapshot(p) for p in (foreign, net)}
    assert main(["export", str(net), str(tmp_path / "net.nir")]) == 0
    assert (tmp_path / "net.nir").is_file()
    assert {p: _snapshot(p) for p in keep} == keep


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
def test_export_refuses_to_write_over_its_input(trained, tmp_path, capsys, spelling):
    net = tmp_path / "net.pt"
    net.write_bytes((trained / "checkpoint.pt").read_bytes())
    before = _snapshot(net)
    out = {
        "same": str(net),
        "dot": os.path.join(tmp_path, ".", "sub", "..", "net.pt"),
        "symlink": str(tmp_path / "link.nir"),
        "hardlink": str(tmp_path / "hard.nir"),
    }[spelling]
    if spelling == "symlink":
        os.symlink(net, out)
    if spelling == "hardlink":
        os.link(net, out)
    assert main(["export", str(net), out, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "is the network being exported" in err and "Traceback" not in err
    assert _snapshot(net) == before


def test_export_refuses_an_existing_output_without_overwrite(trained, tmp_path, capsys):
    pytest.importorskip("nir")
    out = tmp_path / "old.nir"
    out.write_text("an earlier export")
    assert main(["export", str(trained / "checkpoint.pt"), str(out)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "an earlier export"
    assert main(["export", str(trained / "checkpoint.pt"), str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:4] != b"an e"


# item 6: --resume keeps the ownership check ------------------------------------------------


def test_resume_into_a_foreign_folder_without_a_run_record_is_refused(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    for name, text in (("summary.json", '{"my": "notes"}'), ("history.csv", "a,b\n1,2\n")):
        (out / name).write_text(text)
    before = {p.name: _snapshot(p) for p in out.iterdir()}
    assert main([*TRAIN, "--epochs", "1", "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "no spikebridge run record" in err and "--overwrite" in err
    assert {p.name: _snapshot(p) for p in out.iterdir()} == before


# item 8: overwrite only from the command line ---------------------------------------------


def test_a_config_file_cannot_say_overwrite(tmp_path, capsys):
    victim = tmp_path / "other-run"
    victim.mkdir()
    (victim / "checkpoint.pt").write_text("another run's checkpoint")
    config = tmp_path / "c.toml"
    config.write_text(f'out = "{victim}"\noverwrite = true\n')
    assert main(["compare", "--config", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "'overwrite' is not allowed in a config file" in err
    assert "--overwrite on the command line" in err
    assert (victim / "checkpoint.pt").read_text() == "another run's checkpoint"


# item 13: strict JSON ----------------------------------------------------------------------


def _strict(text: str):
    def refuse(name: str):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_results_are_strict_with_null_for_non_finite_numbers(tmp_path):
    import numpy as np
    import torch

    from spikebridge.io import write_json

    path = write_json(
        tmp_path / "summary.json",
        {
            "nan": float("nan"), "inf": float("-inf"), "np": np.float32("nan"),
            "tensor": torch.tensor([1.0, float("nan")]), "ok": 0.5, "path": tmp_path,
        },
    )  # fmt: skip
    data = _strict(path.read_text())
    assert data == {
        "nan": None, "inf": None, "np": None, "tensor": [1.0, None], "ok": 0.5,
        "path": str(tmp_path),
    }  # fmt: skip


def test_a_training_summary_without_test_data_is_strict_json(trained):
    for name in ("summary.json", "run.json"):
        _strict((trained / name).read_text())


# item 11: a full disk and SIGTERM -----------------------------------------------------------


def test_a_full_disk_leaves_a_failed_record_no_lock_and_names_the_path(
    tmp_path, monkeypatch, capsys
):
    import errno

    from spikebridge import io

    real = io._create_temp

    def full(tmp: Path) -> None:  # every new file fails once training wrote its checkpoint
        if tmp.name.startswith(".summary.json."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp))
        real(tmp)

    monkeypatch.setattr(io, "_create_temp", full)
    monkeypatch.setattr(io, "write_text", _no_space(io.write_text, "run.json"))
    out = tmp_path / "run"
    assert main([*TRAIN, "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'summary.json'}: No space left on device" in err
    assert "Traceback" not in err and ".tmp" not in err
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "No space left" in record["error"]
    assert not (out / LOCK_NAME).exists()
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def _no_space(write_text, name: str):
    """``write_text`` that fails with ENOSPC for ``name`` once the run has begun (a disk that
    filled up during the run: only the reserved space is left)."""
    import errno

    calls = {"n": 0}

    def wrapped(path, text):
        if Path(path).name == name:
            calls["n"] += 1
            if calls["n"] > 1:  # the "running" record was written before the disk filled
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write_text(path, text)

    return wrapped


@pytest.mark.slow
def test_sigterm_leaves_a_failed_record_and_no_lock(tmp_path):
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "spikebridge", *TRAIN, "--epochs", "200", "--out", str(out)],
        cwd=root, env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if json.loads((out / "run.json").read_text())["status"] == "running":
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "terminated" in err and "Traceback" not in err
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "Terminated" in record["error"]
    assert not (out / LOCK_NAME).exists()
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


# item 9: the STDP route resumes bit for bit ---------------------------------------------------


def _stdp_config():
    from spikebridge.stdp import config_for

    return config_for(
        "cnn", 1, 8, 10, conv_channels=8, conv_winners=2, feature_channels=16, timesteps=6,
        ae_epochs=1, stdp_epochs=2,
    )  # fmt: skip


def _digits_loader():
    """A fresh shuffling loader, as a new process would make it (its generator at the seed)."""
    from spikebridge.data import make_loaders

    return make_loaders("digits", batch_size=64, seed=0, train_limit=256)[0]


def test_stdp_resumed_after_the_autoencoder_phase_ends_bit_for_bit(tmp_path, monkeypatch):
    from spikebridge.stdp import training
    from spikebridge.stdp.checkpoint import read_checkpoint

    config = _stdp_config()
    whole = training.train(
        config, _digits_loader(), seed=0, progress=False, checkpoint_path=tmp_path / "a.pt"
    )
    path = tmp_path / "b.pt"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the process dies once the auto-encoder phase is saved

    with monkeypatch.context() as patch:
        patch.setattr(training, "train_feature_layer", killed)
        with pytest.raises(KeyboardInterrupt):
            training.train(config, _digits_loader(), seed=0, progress=False, checkpoint_path=path)
    assert read_checkpoint(path)["phase_done"] == "autoencoder"
    resumed = training.train(
        config, _digits_loader(), seed=0, progress=False, checkpoint_path=path, resume=True
    )
    for name, value in whole.network.state_dict().items():
        assert torch.equal(resumed.network.state_dict()[name], value), name
    assert resumed.train_accuracy == whole.train_accuracy
    assert [r["phase"] for r in resumed.history] == [r["phase"] for r in whole.history]


# item 7: checksums ---------------------------------------------------------------------------


def _flip_bit(path: Path, offset_from_end: int = 2000) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) - offset_from_end] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_bit_flipped_training_checkpoint_is_refused_by_resume(trained, tmp_path, capsys):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(trained, out)
    assert (out / "checkpoint.pt.sha256").is_file()
    _flip_bit(out / "checkpoint.pt")
    before = {p.name: _snapshot(p) for p in out.iterdir()}
    assert main([*TRAIN, "--epochs", "2", "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'checkpoint.pt'} is not a readable checkpoint: it is damaged or was" in err
    assert "checkpoint.pt.sha256" in err and "--overwrite" in err and "Traceback" not in err
    after = {p.name: _snapshot(p) for p in out.iterdir() if p.name != "run.json"}
    assert after == {k: v for k, v in before.items() if k != "run.json"}


def test_a_checkpoint_missing_its_keys_is_a_named_error(trained, tmp_path):
    from spikebridge.direct.checkpoint import CheckpointError, load_training_checkpoint

    saved = torch.load(trained / "checkpoint.pt", weights_only=True)
    for broken, message in (
        ({k: v for k, v in saved.items() if k != "optimizer"}, "no 'optimizer' entry"),
        ({k: v for k, v in saved.items() if k != "model"}, "no 'model' entry"),
        ({**saved, "rng": {**saved["rng"], "torch": torch.zeros(3)}}, "torch random state"),
        ({**saved, "rng": "seed 0"}, "not the saved random states"),
        ({**saved, "epoch": "one"}, "not a count of epochs"),
    ):
        path = tmp_path / "bad.pt"
        torch.save(broken, path)  # no checksum file: read with a warning, then refused
        with pytest.warns(UserWarning, match="no checksum file"):
            with pytest.raises(CheckpointError, match=f"bad.pt is not a usable.*{message}"):
                load_training_checkpoint(path, resume=True)


def test_an_old_checkpoint_without_a_checksum_is_used_with_a_warning(trained, tmp_path):
    from spikebridge.direct.checkpoint import load_training_checkpoint
    from spikebridge.io import ChecksumWarning

    path = tmp_path / "old.pt"
    path.write_bytes((trained / "checkpoint.pt").read_bytes())
    with pytest.warns(ChecksumWarning, match="old.pt has no checksum file"):
        assert load_training_checkpoint(path)["epoch"] == 1


def test_save_torch_leaves_file_and_checksum_in_agreement_after_a_kill(tmp_path, monkeypatch):
    from spikebridge import io

    path = tmp_path / "c.pt"
    io.save_torch(path, {"w": torch.zeros(3)})
    old = io.file_sha256(path)

    real, calls = os.replace, []

    def killed(src, dst):  # the process dies between the checksum file and the rename
        calls.append(Path(dst).name)
        if Path(dst) == path:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(io.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        io.save_torch(path, {"w": torch.ones(3)})
    monkeypatch.undo()
    assert calls == ["c.pt.sha256", "c.pt"]
    assert len(io.recorded_checksums(path)) == 2  # the new digest and the old one
    assert io.file_sha256(path) == old
    assert io.verify_checksum(path, "")  # the old file still matches
    io.save_torch(path, {"w": torch.ones(3)})
    assert io.verify_checksum(path, "")
    assert len(io.recorded_checksums(path)) == 1


COMPARE = [
    "compare", "--width", "0.25", "--batch-size", "64", "--limit", "64", "--train-limit", "128",
    "--calibration-samples", "64", "--timesteps", "4", "--epochs", "1", "--direct-epochs", "1",
    "--direct-timesteps", "2", "--methods", "max", "--stdp-epochs", "1", "--stdp-ae-epochs", "1",
    "--stdp-conv-channels", "4", "--stdp-feature-channels", "8", "--stdp-timesteps", "4",
    "--device", "cpu", "--quiet",
]  # fmt: skip


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compared") / "cmp"
    assert main([*COMPARE, "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("name", ["ann.pt", "direct.pt", "stdp.pt"])
def test_a_damaged_cached_checkpoint_stops_a_comparison_naming_it(compared, tmp_path, name, capsys):
    import shutil

    out = tmp_path / "cmp"
    shutil.copytree(compared, out)
    path = out / "checkpoints" / name
    assert (out / "checkpoints" / f"{name}.sha256").is_file()
    _flip_bit(path, offset_from_end=min(2000, path.stat().st_size // 2))
    before = _snapshot(path)
    assert main([*COMPARE, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "damaged or was changed" in err and f"delete {path}" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _snapshot(path) == before


def test_a_truncated_stdp_checkpoint_is_named_not_retrained(compared, tmp_path, capsys):
    import shutil

    out = tmp_path / "cmp"
    shutil.copytree(compared, out)
    path = out / "checkpoints" / "stdp.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    (out / "checkpoints" / "stdp.pt.sha256").unlink()  # as an older version left it
    assert main([*COMPARE, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{path}: not a readable STDP-route checkpoint (truncated or corrupt" in err
    assert f"delete {path} to train it again" in err


def test_comparison_results_are_strict_json(compared):
    for name in ("results.json", "run.json"):
        _strict((compared / name).read_text())


@pytest.mark.slow
def test_a_real_write_failure_names_the_file_and_leaves_a_failed_record(tmp_path):
    """The process may not write files over 40 kB (RLIMIT_FSIZE): the checkpoint's write really
    fails in torch.save; the failure record still fits in the space reserved at the start."""
    import resource
    import signal
    import subprocess
    import sys

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "spikebridge", *TRAIN, "--epochs", "1", "--out", str(out)],
        cwd=Path(__file__).resolve().parents[1], env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, preexec_fn=limit, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"error: {out / 'checkpoint.pt'}: " in done.stderr and ".tmp" not in done.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "checkpoint.pt" in record["error"]
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]


def test_export_refuses_a_bit_flipped_network(trained, tmp_path, capsys):
    net = tmp_path / "net.pt"
    net.write_bytes((trained / "checkpoint.pt").read_bytes())
    (tmp_path / "net.pt.sha256").write_bytes((trained / "checkpoint.pt.sha256").read_bytes())
    _flip_bit(net)
    assert main(["export", str(net), str(tmp_path / "net.nir")]) == 2
    err = capsys.readouterr().err
    assert f"{net} is damaged or was changed" in err and "Traceback" not in err
    assert not (tmp_path / "net.nir").exists()


def test_a_bit_flipped_stdp_checkpoint_is_refused_by_resume(tmp_path):
    from spikebridge.stdp import training
    from spikebridge.stdp.checkpoint import StdpCheckpointError

    path = tmp_path / "checkpoint.pt"
    config = _stdp_config()
    training.train(config, _digits_loader(), seed=0, progress=False, checkpoint_path=path)
    _flip_bit(path)
    with pytest.raises(StdpCheckpointError, match=r"checkpoint.pt is damaged or was changed.*"
                       r"delete it \(and its .sha256\) to train again"):  # fmt: skip
        training.train(
            config, _digits_loader(), seed=0, progress=False, checkpoint_path=path, resume=True
        )


def test_a_model_file_with_a_checksum_beside_it_is_verified_before_it_is_read(tmp_path):
    """`--checkpoint` given a file the toolkit wrote (an ANN with its ``.sha256``): a changed
    copy is refused naming the file; an intact one, or the user's own without a checksum,
    loads."""
    from spikebridge.io import save_torch
    from spikebridge.loading import ModelLoadError, load_model

    def arch():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))

    path = save_torch(tmp_path / "ann.pt", arch().state_dict())
    assert isinstance(load_model(path, arch=arch()), torch.nn.Module)
    _flip_bit(path, offset_from_end=100)
    with pytest.raises(ModelLoadError, match=r"ann\.pt is damaged or was changed.*ann\.pt\.sha256"):
        load_model(path, arch=arch())
    own = tmp_path / "own.pt"
    torch.save(arch().state_dict(), own)
    assert isinstance(load_model(own, arch=arch()), torch.nn.Module)
