"""``percentile="auto"`` in the comparison: p is chosen on held-out training images by the same
code as ``spikebridge convert --percentile auto``, and the choice is reported."""

from __future__ import annotations

from spikebridge.compare import run

TINY = dict(
    epochs=1, direct_epochs=0, timesteps=6, width=0.25, limit=32, train_limit=256,
    calibration_samples=64, validation_samples=64, batch_size=32, device="cpu",
    methods="channel", percentile="auto",
)  # fmt: skip


def test_compare_chooses_p_on_held_out_images_and_says_so(tmp_path):
    result = run("cnn", "digits", out=tmp_path / "run", **TINY)
    notes = [n for n in result.notes if n.startswith("percentile auto (channel, T=6")]
    assert len(notes) == 1 and "p=99.99:" in notes[0]
    assert result.settings["percentile"] == "auto"
    assert set(result.accuracy["method"]) == {"channel"}
