"""Routes and extra evaluation passes plug into the comparison without editing the pipeline."""

from __future__ import annotations

import pandas as pd
import pytest

from spikebridge.compare import passes, routes, run
from spikebridge.convert import convert_model

TINY = dict(
    epochs=1, direct_epochs=0, stdp_epochs=0, timesteps=6, width=0.25, limit=32, train_limit=128,
    calibration_samples=64, batch_size=32, device="cpu", methods="max",
)  # fmt: skip


@pytest.fixture
def plugged():
    """A route offering one network built for T = 4, and a pass re-scoring on the clean set."""

    def networks(ctx):
        net = convert_model(ctx.ann, None, method="model")
        yield routes.Candidate("extra", "model-t4", net, 4, (4,), train_seconds=1.0)

    def loaders(ctx):
        yield "clean copy", ctx.test_loader

    route = routes.register(routes.Route("extra", networks, order=30))
    evaluation_pass = passes.register(passes.EvaluationPass("copy", loaders))
    yield
    routes.ROUTES.unregister(route.name)
    passes.PASSES.unregister(evaluation_pass.name)


def test_a_registered_route_and_pass_are_scored_by_the_pipeline(plugged, tmp_path):
    result = run("cnn", "digits", out=tmp_path / "run", **TINY)
    extra = result.accuracy[result.accuracy["route"] == "extra"]
    assert extra["timesteps"].tolist() == [4]  # reported at its own T only
    row = result.energy.set_index("route").loc["extra"]
    assert row["timesteps"] == 4 and row["train_seconds"] == 1.0
    routes = list(result.energy["route"])
    assert [r for r in routes if r != "ann-quantised"] == ["ann", "conversion", "extra"]
    assert routes[-1] == "ann-quantised"  # the fair ANN of each T follows (spikebridge.energy)
    table = result.extra["copy"]
    assert set(table["route"]) == {"ann", "conversion", "extra"}
    # the pass scored the same networks on the same images: the same accuracies
    again = table[table["route"] != "ann"][["route", "method", "timesteps", "accuracy"]]
    main = result.accuracy[["route", "method", "timesteps", "accuracy"]]
    pd.testing.assert_frame_equal(again.reset_index(drop=True), main, check_dtype=False)
    assert table[table["route"] == "ann"]["accuracy"].iloc[0] == pytest.approx(result.ann_accuracy)
    assert pd.read_csv(tmp_path / "run" / "copy.csv").shape == table.shape
