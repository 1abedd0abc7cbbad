"""Files the toolkit did not write are never followed, truncated or deleted; checkpoints are
checksummed; a failed run leaves a "failed" record and no lock (issue 19, items 3-9, 11, 13)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

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
