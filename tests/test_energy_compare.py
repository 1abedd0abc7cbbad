"""The comparison's energy outputs: one column per energy model in every row of energy.csv,
quantised-ANN rows (the calibrated twin among them), break-even columns, the breakdown CSV."""

from __future__ import annotations

import pandas as pd
import pytest

from spikebridge.compare import run
from spikebridge.energy import ENERGY_MODELS


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("energy") / "run"
    return run(
        "cnn", "digits", methods="channel,calibrated", out=out, epochs=1, direct_epochs=1,
        direct_timesteps=2, timesteps=4, targets="2", width=0.25, limit=32, train_limit=128,
        calibration_samples=32, batch_size=32, device="cpu", stdp_epochs=0,
    )  # fmt: skip


def test_energy_csv_has_every_model_in_every_row_and_quantised_anns(comparison):
    energy = pd.read_csv(comparison.out / "energy.csv")
    for model in ENERGY_MODELS.names():
        column = f"energy_{model}_pJ"
        assert energy[column].notna().all() and (energy[column] > 0).all(), column
    quantised = energy[energy["route"] == "ann-quantised"]
    assert set(quantised["timesteps"]) >= {2, 4}
    assert quantised["method"].str.contains("calibrated twin").any()
    spiking = energy[~energy["route"].isin(["ann", "ann-quantised"])]
    assert spiking["breakeven_rate_lemaire"].notna().all()
    assert spiking["breakeven_rate_lemaire_quantised"].notna().all()


def test_energy_breakdown_sums_to_the_energy_columns(comparison):
    energy = pd.read_csv(comparison.out / "energy.csv")
    breakdown = pd.read_csv(comparison.out / "energy_breakdown.csv")
    ann = energy[energy["route"] == "ann"].iloc[0]
    rows = breakdown[(breakdown["route"] == "ann") & (breakdown["model"] == "lemaire")]
    assert rows["energy_pJ"].sum() == pytest.approx(ann["energy_lemaire_pJ"])
    assert {"memory_params", "memory_potential", "addressing"} <= set(breakdown["component"])


def test_one_energy_model_is_chosen_with_its_setting(tmp_path):
    with pytest.raises(Exception, match="unknown energy model 'joules'"):
        run("cnn", "digits", out=tmp_path / "x", energy_models="lemaire,joules", epochs=1)


def test_energy_tables_price_networks_made_outside_a_comparison(trained_digits_cnn, digits_loaders):
    from spikebridge import convert_model
    from spikebridge.energy.book import energy_tables

    train, test = digits_loaders[:2]
    snn = convert_model(trained_digits_cnn, next(iter(train))[0], method="channel")
    energy, breakdown, _ = energy_tables(
        trained_digits_cnn, [("conversion", "channel", snn, 4)], test, train.dataset,
        models="lemaire", calibration_samples=64,
    )  # fmt: skip
    assert energy["route"].tolist() == ["ann", "conversion", "ann-quantised"]
    assert energy["energy_lemaire_pJ"].notna().all()
    assert set(breakdown["model"]) == {"lemaire"}


def test_an_unknown_energy_model_flag_exits_2_naming_the_known_ones(tmp_path, capsys):
    from spikebridge.cli import main

    out = tmp_path / "cmp"
    with pytest.raises(SystemExit) as stop:  # refused by argparse when the flag is parsed
        main(["compare", "--energy-model", "lemaire,nope", "--out", str(out)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "unknown energy model 'nope'" in err and "lemaire" in err and "Traceback" not in err
    assert not out.exists()


def test_convert_and_train_write_every_energy_model_and_convert_the_quantised_ann(tmp_path):
    """convert: the ANN, each network and the quantised-ANN rows under every model, with the
    breakdown; train: its network's row under the models asked for (--energy-model)."""
    from spikebridge.cli import main

    small = ["--dataset", "digits", "--train-limit", "400", "--limit", "120", "--quiet"]
    conv = tmp_path / "conv"
    assert main(["convert", *small, "--epochs", "1", "--methods", "channel",
                 "--timesteps", "4", "--out", str(conv)]) == 0  # fmt: skip
    energy = pd.read_csv(conv / "energy.csv")
    for model in ("ops", "lemaire", "reuse", "loihi"):
        assert (
            energy[f"energy_{model}_pJ"].notna().all() and (energy[f"energy_{model}_pJ"] > 0).all()
        )
    assert set(energy["route"]) == {"ann", "conversion", "ann-quantised"}
    assert (conv / "energy_breakdown.csv").is_file() and (conv / "energy.tex").is_file()

    train = tmp_path / "train"
    assert main(["train", *small, "--epochs", "1", "--direct-timesteps", "2", "--energy-model", "ops,lemaire",
                 "--out", str(train)]) == 0  # fmt: skip
    row = pd.read_csv(train / "energy.csv")
    assert list(row["route"]) == ["direct"] and int(row["timesteps"].iloc[0]) == 2
    assert {"energy_ops_pJ", "energy_lemaire_pJ"} <= set(row.columns)
    assert "energy_loihi_pJ" not in row.columns
    assert row["energy_lemaire_pJ"].iloc[0] > row["energy_ops_pJ"].iloc[0] > 0
