"""A fixture that makes a directory read-only, even for root (chattr +i), and undoes it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def read_only():
    """``read_only(path)``: no file can be created in or removed from ``path`` afterwards.

    chmod 0555 for a normal user; root ignores modes, so for root the directory is also made
    immutable (chattr +i), and the test is skipped where the filesystem does not allow that.
    """
    made: list[Path] = []

    def make(path: Path) -> Path:
        path = Path(path)
        os.chmod(path, 0o555)
        made.append(path)
        if os.geteuid() == 0 and not _chattr("+i", path):
            pytest.skip(
                "running as root on a filesystem without chattr +i: cannot make a read-only dir"
            )
        return path

    yield make
    for path in made:
        if os.geteuid() == 0:
            _chattr("-i", path)
        os.chmod(path, 0o755)
