"""STBP trainer: learning, exact resume, checkpoints and bad inputs (issue 4)."""

import pytest
import torch

from spikebridge.data import make_loaders
from spikebridge.direct import (
    CheckpointError,
    TrainingDiverged,
    build_direct_snn,
    load_trained,
    train_direct,
)

SMALL = dict(num_classes=10, in_channels=1, image_size=8, width=0.25)


def loaders(batch_size=32):
    return make_loaders("digits", batch_size=batch_size, limit=64, seed=0, train_limit=160)


def test_training_learns_digits_and_reports_every_step():
    train_loader, test_loader = make_loaders(
        "digits", batch_size=32, limit=100, seed=0, train_limit=400
    )
    result = train_direct(
        "cnn",
        train_loader,
        test_loader,
        timesteps=2,
        epochs=3,
        optimizer="adam",
        lr=3e-3,
        device="cpu",
        seed=0,
        **SMALL,
    )
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.history[-1]["train_accuracy"] > 0.6
    assert result.evaluation is not None and result.evaluation.accuracy.shape == (2,)
    assert result.evaluation.accuracy[-1] > 0.3  # chance is 0.1; running stats are young
    assert not result.network.training


class Killed(Exception):
    pass


def test_resume_gives_the_weights_of_an_uninterrupted_run(tmp_path):
    options = dict(timesteps=2, epochs=2, optimizer="sgd", lr=0.05, device="cpu", seed=3, **SMALL)
    straight = train_direct("cnn", *loaders(), checkpoint_path=tmp_path / "a.pt", **options)

    def kill_after_first_epoch(record):
        if record["epoch"] == 1:
            raise Killed

    with pytest.raises(Killed):
        train_direct(
            "cnn",
            *loaders(),
            checkpoint_path=tmp_path / "b.pt",
            on_epoch=kill_after_first_epoch,
            **options,
        )
    resumed = train_direct(
        "cnn", *loaders(), checkpoint_path=tmp_path / "b.pt", resume=True, **options
    )

    a, b = straight.network.state_dict(), resumed.network.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]
    rebuilt = load_trained(tmp_path / "b.pt")
    assert all(torch.equal(rebuilt.state_dict()[k], b[k]) for k in b)


def test_nan_loss_names_the_step_and_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "ck.pt"
    options = dict(timesteps=2, device="cpu", optimizer="sgd")
    torch.manual_seed(0)
    net = build_direct_snn("cnn", **SMALL)

    def poison_after_first_epoch(record):  # weights go bad after the checkpoint of epoch 1
        with torch.no_grad():
            net.module[-1].bias.fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 1 .*ck\.pt \(after epoch 1\)"):
        train_direct(
            net,
            *loaders(),
            epochs=2,
            lr=0.05,
            checkpoint_path=path,
            on_epoch=poison_after_first_epoch,
            **options,
        )
    # an absurd learning rate makes the readout overflow on the step after the first update
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 2 .*none written yet"):
        train_direct("cnn", *loaders(), epochs=1, lr=1e38, **options, **SMALL)


def test_corrupt_truncated_and_missing_checkpoints_are_clear_errors(tmp_path):
    good = tmp_path / "good.pt"
    train_direct(
        "cnn", *loaders(), timesteps=1, epochs=1, device="cpu", checkpoint_path=good, **SMALL
    )
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    for path in (truncated, garbage):
        with pytest.raises(CheckpointError, match="truncated or corrupt"):
            train_direct(
                "cnn",
                *loaders(),
                timesteps=1,
                epochs=2,
                device="cpu",
                checkpoint_path=path,
                resume=True,
                **SMALL,
            )
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train_direct(
            "cnn",
            *loaders(),
            timesteps=1,
            epochs=2,
            device="cpu",
            checkpoint_path=tmp_path / "none.pt",
            resume=True,
            **SMALL,
        )


def test_resuming_into_another_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "ck.pt"
    train_direct(
        "cnn", *loaders(), timesteps=1, epochs=1, device="cpu", checkpoint_path=path, **SMALL
    )
    wider = build_direct_snn("cnn", 10, 1, 8, width=0.5)
    with pytest.raises(CheckpointError, match="different"):
        train_direct(
            wider,
            *loaders(),
            timesteps=1,
            epochs=2,
            device="cpu",
            checkpoint_path=path,
            resume=True,
        )
    resnet = build_direct_snn("resnet20", 10, 1, 8, width=0.25)
    with pytest.raises(CheckpointError, match="different"):
        train_direct(
            resnet,
            *loaders(),
            timesteps=1,
            epochs=2,
            device="cpu",
            checkpoint_path=path,
            resume=True,
        )


@pytest.mark.parametrize("timesteps", [0, -3, 2.5])
def test_non_positive_timesteps_are_rejected(timesteps):
    with pytest.raises(ValueError, match="timesteps"):
        train_direct("cnn", *loaders(), timesteps=timesteps, epochs=1, device="cpu", **SMALL)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"schedule": "linear"}, "schedule"),
        ({"lr": 0.0}, "learning rate"),
        ({"epochs": 0}, "epochs"),
        ({"resume": True}, "checkpoint_path"),
    ],
)
def test_bad_training_arguments(kwargs, message):
    options = dict(timesteps=1, epochs=1, device="cpu")
    options.update(kwargs)
    with pytest.raises(ValueError, match=message):
        train_direct("cnn", *loaders(), **options, **SMALL)


def test_direct_route_refuses_torchvision_models():
    with pytest.raises(ValueError, match="torchvision"):
        build_direct_snn("torchvision:resnet18")


def test_event_input_shorter_than_the_simulation_is_an_error():
    net = build_direct_snn("cnn", 10, 2, 8, width=0.25, encoding="events").eval()
    with pytest.raises(ValueError, match="time bins"):
        net.simulate(torch.rand(3, 2, 2, 8, 8), 4)


def test_event_simulation_reads_frames_in_order_across_chunks():
    torch.manual_seed(0)
    net = build_direct_snn("cnn", 10, 2, 8, width=0.25, encoding="events", chunk_size=2).eval()
    frames = torch.rand(3, 5, 2, 8, 8)
    sim = net.simulate(frames, 5, record_spikes=True)
    net.reset()
    with torch.no_grad():
        whole = net(frames.transpose(0, 1))  # all five frames in one call
    expected = whole.cumsum(0) / torch.arange(1, 6).view(-1, 1, 1)
    torch.testing.assert_close(sim.readout, expected)
    assert all(v.shape == (5,) for v in sim.spikes.values())


def test_adam_without_a_learning_rate_trains_at_the_settings_adam_rate(tmp_path):
    """``train_direct(optimizer="adam")`` takes Adam's default rate from the settings (one
    home: DEFAULT_LR, the flags' default too), not SGD's 0.1."""
    from spikebridge.direct.checkpoint import load_training_checkpoint
    from spikebridge.settings import DEFAULT_LR, TrainingSettings

    path = tmp_path / "adam.pt"
    train_direct("cnn", loaders()[0], optimizer="adam", epochs=1, timesteps=1, device="cpu",
                 checkpoint_path=path, **SMALL)  # fmt: skip
    saved = load_training_checkpoint(path)
    rate = saved["optimizer"]["param_groups"][0]["initial_lr"]
    assert (
        rate
        == DEFAULT_LR["adam"]
        == TrainingSettings(direct_optimizer="adam").direct_learning_rate()
    )
    assert rate != DEFAULT_LR["sgd"]
