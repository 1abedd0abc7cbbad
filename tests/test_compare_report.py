"""The HTML report a user opens: self-contained, and rendered by a real browser (headless
Chromium) with the plots visible (non-blank images) and the tables drawn."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spikebridge.compare import run

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
# the first two curve colours of the plots (Okabe-Ito vermillion and blue) and the table header grey
PLOT_COLOURS = [(0xD5, 0x5E, 0x00), (0x00, 0x72, 0xB2)]
HEADER_GREY = (0xD9, 0xD9, 0xD9)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    run(
        "cnn", "digits", methods="max,percentile", out=out, epochs=1, direct_epochs=1, direct_timesteps=2,
        timesteps=8, width=0.25, limit=32, train_limit=128, calibration_samples=32, batch_size=32, device="cpu",
    )  # fmt: skip
    return out / "report.html"


def test_report_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    # latency, energy, firing rates, accuracy vs energy per model and the training history
    assert text.count('src="data:image/png;base64,') == 5
    assert "Which networks beat which ANN, per energy model" in text
    # nothing to fetch: no external scripts, stylesheets or images
    assert not re.search(r'(src|href)="(?!data:)', text)
    assert "<table" in text and "data-based max (Diehl 2015)" in text


def screenshot(html: Path, png: Path, profile: Path) -> np.ndarray:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1400,4000",
        "--hide-scrollbars", html.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert png.is_file(), f"chromium wrote no screenshot: {done.stderr[-2000:]}"
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def colour_pixels(image: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> int:
    return int((np.abs(image - np.array(colour)).max(-1) <= tolerance).sum())


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"
)
def test_report_renders_plots_and_tables_in_chromium(report, tmp_path):
    shot = screenshot(report, tmp_path / "report.png", tmp_path / "profile")
    # control: the same page with the images taken out
    bare = tmp_path / "bare.html"
    bare.write_text(
        re.sub(r"<img [^>]*>", "", report.read_text(encoding="utf-8")), encoding="utf-8"
    )
    control = screenshot(bare, tmp_path / "bare.png", tmp_path / "profile2")

    ink = lambda img: int((img.min(-1) < 200).sum())  # noqa: E731 - dark or coloured pixels
    assert ink(shot) > ink(control) + 20_000, (
        "the plots did not render (page looks the same without them)"
    )
    for colour in PLOT_COLOURS:  # the curves are drawn in their colours
        assert colour_pixels(shot, colour) > 300, f"no plot curve in colour {colour}"
        assert colour_pixels(control, colour) == 0
    # the tables: their header cells' grey fills a visible area, with text drawn into it
    assert colour_pixels(shot, HEADER_GREY, tolerance=2) > 5_000, "no table header visible"
    rows = np.where((np.abs(shot - np.array(HEADER_GREY)).max(-1) <= 2).sum(1) > 200)[0]
    assert len(rows) > 20  # header bands of several tables


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"
)
def test_report_fits_a_laptop_screen_without_horizontal_scrolling(report, tmp_path):
    """At 1366 px wide (a common laptop) the page's width is the window's: wide tables scroll
    inside their own box, never the page. The page measures itself (a script added to a copy)
    and chromium's --dump-dom reads the result."""
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { const d = document.documentElement;"
        " document.body.setAttribute('data-page-width', d.scrollWidth);"
        " document.body.setAttribute('data-window-width', window.innerWidth); });</script>"
    )
    probe.write_text(
        report.read_text(encoding="utf-8").replace("</body>", script + "</body>"),
        encoding="utf-8",
    )
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1366,768",
        "--virtual-time-budget=5000", "--dump-dom", probe.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    page = re.search(r'data-page-width="(\d+)"', done.stdout)
    window = re.search(r'data-window-width="(\d+)"', done.stdout)
    assert page and window, f"the page did not measure itself: {done.stderr[-2000:]}"
    assert int(window.group(1)) > 1000  # the laptop width took effect
    assert int(page.group(1)) <= int(window.group(1)), (
        f"the page is {page.group(1)} px wide in a {window.group(1)} px window"
    )
