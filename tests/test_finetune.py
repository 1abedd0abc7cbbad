"""The short labelled fine-tune of calibrated's quantised twin (issue 23): retraining, said so."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
import torch

from spikebridge.convert import CalibratedSettings, prepare
from spikebridge.convert.calibration import (
    CalibrationWarning,
    ReconstructionDiverged,
    calibrate_target,
)
from spikebridge.convert.quantised_twin import quantisers
from spikebridge.labels import (
    base_method,
    finetune_label,
    finetune_steps_of,
    graded_label,
    spike_levels_of,
)

STEPS = 100


@pytest.fixture(scope="module")
def labelled():
    """Training images with their labels, in a fixed order (the conversion's calibration
    loader: a fixed subset of the training split, never the test set)."""
    from spikebridge.data import calibration_loader, make_loaders

    train = make_loaders("digits", batch_size=64, seed=0)[0]
    return calibration_loader(train.dataset, 512, 128, seed=0)


@pytest.fixture(scope="module")
def prepared_cnn(trained_digits_cnn):
    return prepare(trained_digits_cnn, maxpool="avg")


@pytest.fixture(scope="module")
def tuned(prepared_cnn, labelled):
    """T = 1, where calibration alone leaves the small CNN short (its twin has 2 levels)."""
    return calibrate_target(prepared_cnn, labelled, 1, CalibratedSettings(finetune_steps=STEPS))


def test_zero_steps_is_todays_calibrated(prepared_cnn, labelled):
    """finetune_steps=0 (the default) is calibrated as it was: labels unused, same bytes as
    from the bare images."""
    from spikebridge.convert.calibration import calibration_images

    settings = CalibratedSettings(samples=256)
    assert settings.finetune_steps == 0
    plain = calibrate_target(prepared_cnn, labelled, 2, settings)
    images = calibrate_target(prepared_cnn, calibration_images(labelled, 256), 2, settings)
    assert plain.finetune is None
    for name, theta in plain.thresholds.items():
        assert torch.equal(theta, images.thresholds[name])
    for (name, p), q in zip(
        plain.prepared.state_dict().items(), images.prepared.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q), name


def test_finetune_lowers_the_twins_training_loss_at_one_step(tuned):
    report = tuned.finetune
    assert report is not None and report.steps == STEPS and report.samples == 512
    assert report.loss_after < 0.83 * report.loss_before, report
    # the objective falls by a sixth; the share right moves by at most two of the 512 images
    assert report.accuracy_after >= report.accuracy_before - 2 / 512, report
    assert report.seconds > 0 and tuned.seconds >= report.seconds  # its time is in the total


def test_network_built_from_the_finetuned_twin_equals_it(tuned, digits_loaders):
    """At T = 1 a signed-IF network always ends settled: its readout is its twin's logits."""
    x, _ = next(iter(digits_loaders[1]))
    network = tuned.build()
    with torch.no_grad():
        torch.testing.assert_close(network.simulate(x, 1).readout[-1], tuned.twin()(x))


def test_thresholds_stay_positive_and_potentials_below_one(prepared_cnn, labelled):
    """Even with a step large enough to push thresholds through zero."""
    settings = CalibratedSettings(samples=256, finetune_steps=20, finetune_lr=0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        try:
            result = calibrate_target(prepared_cnn, labelled, 2, settings)
        except ReconstructionDiverged as err:  # refused, naming the setting, is also fine
            assert "finetune" in str(err)
            return
    for name, theta in result.thresholds.items():
        assert torch.isfinite(theta).all() and (theta > 0).all(), name
    for name, phi in result.initial_potentials.items():
        assert ((phi >= 0) & (phi < 1)).all(), name
    for q in quantisers(result.twin()).values():
        assert (q.threshold > 0).all()


def test_a_finetune_that_makes_the_twin_worse_is_rolled_back(prepared_cnn, labelled):
    """A step far too large wrecks the twin; the calibrated one is kept, with a warning."""
    plain = calibrate_target(prepared_cnn, labelled, 1, CalibratedSettings(samples=256))
    settings = CalibratedSettings(samples=256, finetune_steps=10, finetune_lr=1.0)
    with pytest.warns(CalibrationWarning, match="raised the network's training loss"):
        result = calibrate_target(prepared_cnn, labelled, 1, settings)
    assert result.finetune.rolled_back
    assert result.finetune.loss_after == result.finetune.loss_before
    for name, theta in plain.thresholds.items():
        assert torch.equal(theta, result.thresholds[name])
    # the calibration kept is the whole of it, its SNN correction included
    for p, q in zip(
        plain.prepared.state_dict().values(), result.prepared.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q)


@pytest.mark.parametrize("forward", ["network", "twin"])
def test_the_report_measures_what_was_trained(prepared_cnn, labelled, forward):
    """With the network's forward (the default) the loss the fine-tune lowered is the built
    network's own training loss at T; with the twin's, the twin's (the network then gets the
    SNN correction and differs from it where spikes are owed at T)."""
    from spikebridge.convert.calibration.finetune import labelled_data

    settings = CalibratedSettings(samples=256, finetune_steps=30, finetune_forward=forward)
    result = calibrate_target(prepared_cnn, labelled, 2, settings)
    report = result.finetune
    assert report.forward == forward and not report.rolled_back
    assert report.loss_after < report.loss_before
    x, y = labelled_data(labelled, torch.device("cpu"))
    with torch.no_grad():
        network = result.build().simulate(x, 2).readout[-1]
        twin = (result.searched or result).twin()(x)  # before the SNN correction
    trained = network if forward == "network" else twin
    loss = float(torch.nn.functional.cross_entropy(trained, y))
    assert loss == pytest.approx(report.loss_after, rel=1e-4)


def test_two_runs_are_identical(prepared_cnn, labelled, tuned):
    again = calibrate_target(prepared_cnn, labelled, 1, CalibratedSettings(finetune_steps=STEPS))
    for name, theta in tuned.thresholds.items():
        assert torch.equal(theta, again.thresholds[name])
        assert torch.equal(tuned.initial_potentials[name], again.initial_potentials[name])
    for p, q in zip(
        tuned.prepared.state_dict().values(), again.prepared.state_dict().values(), strict=True
    ):
        assert torch.equal(p, q)


def test_unlabelled_data_is_refused_naming_the_setting(prepared_cnn, labelled):
    from spikebridge.convert.calibration import calibration_images

    images = calibration_images(labelled, 128)
    with pytest.raises(ValueError, match="finetune_steps: .*labels"):
        calibrate_target(prepared_cnn, images, 2, CalibratedSettings(finetune_steps=5))


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("finetune_steps", -1, "finetune_steps"),
        ("finetune_lr", 0.0, "finetune_lr must be positive"),
        ("finetune_lr", 2.0, "finetune_lr"),
        ("finetune_distill", 1.5, "finetune_distill"),
    ],
)
def test_bad_settings_are_refused(option, value, message):
    with pytest.raises(ValueError, match=message):
        CalibratedSettings(**{option: value})


def test_labels_say_retrained():
    assert finetune_label("calibrated", 300) == "calibrated+ft300"
    assert finetune_label("calibrated", 0) == "calibrated"
    assert CalibratedSettings(finetune_steps=300).network_label("calibrated") == "calibrated+ft300"
    assert finetune_steps_of("calibrated+ft300") == 300 and finetune_steps_of("qcfs") == 0
    assert base_method("calibrated+ft300") == "calibrated"
    assert finetune_steps_of("calibrated+ft300 twin (2-bit)") == 300  # its quantised-ANN row


def test_fine_tuned_graded_labels_keep_both_facts():
    """<method>[+ftN][-K<K>], then -T<T> per target: each part read back on its own."""
    label = graded_label(finetune_label("calibrated", 300), 4)
    assert label == "calibrated+ft300-K4"
    for text in (label, f"{label}-T2", f"{label} twin (4-bit)"):
        assert (base_method(text.split(" ")[0].removesuffix("-T2")), spike_levels_of(text)) == (
            "calibrated",
            4,
        )
        assert finetune_steps_of(text) == 300
    assert spike_levels_of("calibrated+ft300") == 1 and spike_levels_of("spike-norm") == 1
    from spikebridge.plots import network_label

    legend = network_label("conversion", label)
    assert "fine-tuned 300 steps" in legend and "K = 4" in legend


def test_graded_finetune_trains_the_twin_at_k_times_t_levels(
    prepared_cnn, labelled, digits_loaders
):
    """With K = 2 at T = 1 the fine-tuned twin has 2 levels, and the network built from it
    (graded signed IF, one step: always settled) gives its logits exactly."""
    settings = CalibratedSettings(finetune_steps=20, samples=256, finetune_lr=0.01)
    result = calibrate_target(prepared_cnn, labelled, 1, settings, spike_levels=2)
    assert result.levels == 2 and not result.finetune.rolled_back
    assert result.finetune.loss_after < result.finetune.loss_before
    x, _ = next(iter(digits_loaders[1]))
    with torch.no_grad():
        torch.testing.assert_close(result.build().simulate(x, 1).readout[-1], result.twin()(x))


CLI = [
    "convert", "--dataset", "digits", "--width", "0.25", "--epochs", "1", "--limit", "64",
    "--calibration-samples", "128", "--quiet", "--method", "calibrated", "--targets", "1,2",
    "--timesteps", "2",
]  # fmt: skip


def test_cli_labels_the_retrained_networks_and_counts_their_time(tmp_path):
    from spikebridge.cli import main

    out = tmp_path / "run"
    assert main([*CLI, "--finetune-steps", "3", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "accuracy_vs_timesteps.csv")
    assert set(frame["method"]) == {"calibrated+ft3"}
    assert set(frame["finetune_steps"]) == {3}
    energy = pd.read_csv(out / "energy.csv")
    tuned = energy[energy["method"] == "calibrated+ft3"]
    assert set(tuned["finetune_steps"]) == {3} and (tuned["convert_seconds"] > 0).all()
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["conversion_seconds"]) == {"calibrated+ft3-T1", "calibrated+ft3-T2"}
    assert (out / "snn_calibrated+ft3-T2.pt").is_file()


def test_cli_graded_and_fine_tuned_networks_are_told_apart(tmp_path):
    from spikebridge.cli import main

    out = tmp_path / "run"
    argv = [*CLI, "--finetune-steps", "3", "--spike-levels", "1,2", "--out", str(out)]
    assert main(argv) == 0
    frame = pd.read_csv(out / "accuracy_vs_timesteps.csv")
    assert set(frame["method"]) == {"calibrated+ft3", "calibrated+ft3-K2"}
    assert set(frame["finetune_steps"]) == {3}
    energy = pd.read_csv(out / "energy.csv")
    graded = energy[energy["method"] == "calibrated+ft3-K2"]
    assert (graded["payload_bits"] > 0).all()  # a graded event carries its units
    assert (out / "snn_calibrated+ft3-K2-T2.pt").is_file()


@pytest.mark.parametrize("flag", ["--finetune-steps", "--calibrated-finetune-steps"])
@pytest.mark.parametrize("value", ["-1", "two", "2000000"])
def test_cli_refuses_bad_steps_naming_the_flag(tmp_path, capsys, flag, value):
    from spikebridge.cli import main

    out = tmp_path / "bad"
    with pytest.raises(SystemExit) as refused:
        main([*CLI, flag, value, "--out", str(out)])
    assert refused.value.code == 2
    assert "--calibrated-finetune-steps" in capsys.readouterr().err
    assert not out.exists()


def test_plain_neurons_keep_the_finetuned_twin(prepared_cnn, labelled, tuned):
    """The other kind of neuron redoes only the SNN correction: same fine-tuned thresholds."""
    from spikebridge.convert.calibration import for_neurons

    settings = CalibratedSettings(finetune_steps=STEPS)
    plain = for_neurons(tuned, prepared_cnn, labelled, False, settings)
    assert plain.finetune == tuned.finetune and not plain.negative_spikes
    for name, theta in tuned.thresholds.items():
        assert torch.equal(theta, plain.thresholds[name])


def test_plain_neurons_after_a_network_finetune_are_corrected_towards_its_twin(
    prepared_cnn, labelled
):
    """The fine-tune trained the signed network, which gets no SNN correction; plain IF
    neurons (not what was trained) get theirs, aimed at the fine-tuned twin, at T = 2."""
    from spikebridge.convert.calibration import for_neurons

    settings = CalibratedSettings(samples=256, finetune_steps=20, finetune_lr=0.01)
    signed = calibrate_target(prepared_cnn, labelled, 2, settings)
    assert not signed.finetune.rolled_back
    assert signed.searched is not None  # kept for the other kind of neuron
    plain = for_neurons(signed, prepared_cnn, labelled, False, settings)
    moved = [
        not torch.equal(p, q)
        for p, q in zip(
            signed.prepared.state_dict().values(), plain.prepared.state_dict().values(), strict=True
        )
    ]
    assert any(moved) and not plain.negative_spikes


def test_compare_lists_the_retrained_networks_with_their_column(tmp_path):
    from spikebridge.compare import run

    result = run(
        "cnn", "digits", methods="calibrated", out=tmp_path / "cmp", epochs=1, direct_epochs=0,
        timesteps=2, width=0.25, limit=32, train_limit=128, calibration_samples=64,
        batch_size=32, device="cpu", calibrated_finetune_steps=2,
    )  # fmt: skip
    converted = result.accuracy[result.accuracy["route"] == "conversion"]
    assert set(converted["method"]) == {"calibrated+ft2"}
    written = pd.read_csv(tmp_path / "cmp" / "accuracy_vs_timesteps.csv")
    steps = dict(zip(written["method"], written["finetune_steps"], strict=True))
    assert steps["calibrated+ft2"] == 2 and set(steps.values()) == {0, 2}  # stdp: 0
    energy = pd.read_csv(tmp_path / "cmp" / "energy.csv")
    tuned = energy[energy["method"] == "calibrated+ft2"]
    assert len(tuned) == 2 and (tuned["convert_seconds"] > 0).all()
    assert (energy[energy["route"] == "ann"]["finetune_steps"] == 0).all()
    twins = energy[energy["method"].str.startswith("calibrated+ft2 twin")]
    assert len(twins) == 2 and set(twins["finetune_steps"]) == {2}  # the twins retrained too


@pytest.mark.parametrize(
    ("arch", "spike_levels", "timesteps"),
    [("cnn", 1, 2), ("cnn", 2, 2), ("resnet20", 1, 3), ("resnet20", 3, 1)],
)
def test_simulated_twin_gives_the_networks_readout_exactly(
    labelled, digits_loaders, arch, spike_levels, timesteps
):
    """The fine-tune's forward (tandem learning) is the built network's own simulation, bit for
    bit, through max-pooling (cnn) and residual additions (resnet20), binary and graded; and
    unlike the twin's it sees the spikes still owed at T."""
    from spikebridge.convert.calibration.simulated_twin import SimulatedTwin
    from spikebridge.models import build_model

    torch.manual_seed(0)
    model = build_model(arch, 10, 1, 8, width=0.25, pool="max").eval()
    prepared = prepare(model, maxpool="spiking")
    settings = CalibratedSettings(samples=128, snn_correction=False)
    result = calibrate_target(prepared, labelled, timesteps, settings, spike_levels=spike_levels)
    x, _ = next(iter(digits_loaders[1]))
    with torch.no_grad():
        network = result.build().simulate(x, timesteps).readout[-1]
        simulated = SimulatedTwin(result.twin(), timesteps, spike_levels, True)(x)
    assert torch.equal(simulated, network)


def test_simulated_twin_passes_the_twins_gradient(prepared_cnn, labelled, digits_loaders):
    """Backward: each layer gets its twin quantiser's gradient at the mean input, so the
    gradient reaches every weight, threshold and initial potential the fine-tune trains."""
    from spikebridge.convert.calibration.simulated_twin import SimulatedTwin

    result = calibrate_target(prepared_cnn, labelled, 2, CalibratedSettings(samples=128))
    twin = result.twin()
    for p in twin.parameters():
        p.requires_grad_(True)
    x, y = next(iter(digits_loaders[1]))
    torch.nn.functional.cross_entropy(SimulatedTwin(twin, 2, 1, True)(x), y).backward()
    for name, q in quantisers(twin).items():
        assert q.threshold.grad is not None and q.threshold.grad.abs().sum() > 0, name
    convs = [m for m in twin.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.weight.grad.abs().sum() > 0 for m in convs)
