"""The fraud recipe on a tiny simulated bank: simulator, sequences, leakage-free splits,
in-graph encoding, bad CSV input, and one end-to-end training run through the CLI."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from lstm_zoo.recipes import fraud
from lstm_zoo.recipes.fraud_simulator import FRAUD_PATTERNS, simulate_transactions

from lstm_zoo.errors import DataError
from lstm_zoo.training.driver import evaluate, load_model

SMALL = {"accounts": 300, "days": 30, "fraud_account_rate": 0.4}


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_transactions(300, 30, 0.4, seed=3)


def test_simulator_is_seeded_ordered_and_injects_every_pattern(simulated):
    again = simulate_transactions(300, 30, 0.4, seed=3)
    pd.testing.assert_frame_equal(simulated, again)
    assert not simulated.equals(simulate_transactions(300, 30, 0.4, seed=4))
    steps = simulated.groupby("account_id")["timestamp"].diff().dropna()
    assert (steps > pd.Timedelta(0)).all()  # strictly increasing within every account
    frauds = simulated[simulated.is_fraud == 1]
    assert set(frauds.fraud_pattern) == set(FRAUD_PATTERNS)
    assert (simulated.loc[simulated.is_fraud == 0, "fraud_pattern"] == "").all()
    night = frauds[frauds.fraud_pattern == "night_spike"].timestamp.dt.hour
    assert night.between(1, 5).all()
    testing = frauds[frauds.fraud_pattern == "card_testing"]
    assert (testing.amount <= 3.0).mean() > 0.5  # mostly tiny amounts
    assert 0.005 < simulated.is_fraud.mean() < 0.1


def test_sequences_are_left_padded_and_never_cross_accounts(simulated):
    frame, features = fraud.transaction_features(simulated.assign(
        account_id=simulated.account_id.astype(str)))
    position = frame.groupby("account_id").cumcount().to_numpy()
    rows = np.arange(len(frame))
    windows = fraud.sequences(features, position, rows, window=6)
    np.testing.assert_allclose(windows[:, -1], features.astype("float32"))  # ends at the row
    first = np.flatnonzero(position == 0)
    assert (windows[first, :-1] == 0).all()  # an account's first transaction: all padding
    assert features[first, 2].min() == fraud.FIRST_GAP_HOURS
    i = int(np.flatnonzero(position == 3)[0])
    np.testing.assert_allclose(windows[i, 2:], features[i - 3:i + 1].astype("float32"))
    assert (windows[i, :2] == 0).all()
    gap = (frame.timestamp.iloc[i] - frame.timestamp.iloc[i - 1]).total_seconds() / 3600
    assert features[i, 2] == pytest.approx(gap)


def test_splits_keep_accounts_and_time_apart(simulated):
    frame, _ = fraud.transaction_features(simulated.assign(
        account_id=simulated.account_id.astype(str)))
    rows = fraud.split_rows(frame, seed=0)
    accounts = {s: set(frame.account_id.iloc[rows[s]]) for s in ("train", "val", "test")}
    assert not accounts["train"] & accounts["val"]
    assert not accounts["train"] & accounts["test"]
    assert not accounts["val"] & accounts["test"]
    assert frame.timestamp.iloc[rows["train"]].max() < rows["cut_time"]
    for split in ("val", "test"):
        assert frame.timestamp.iloc[rows[split]].min() >= rows["cut_time"]


def test_encoder_matches_numpy_and_model_ignores_padding(tmp_path):
    rng = np.random.default_rng(0)
    raw = np.column_stack([rng.uniform(1, 500, 7), rng.uniform(0, 24, 7), rng.uniform(0, 100, 7),
                           rng.integers(0, 8, 7), rng.integers(0, 2, 7)]).astype("float32")
    stats = {"amount_mean": 3.0, "amount_std": 1.5, "gap_mean": 2.0, "gap_std": 1.2}
    encoded = fraud.TransactionEncoder(8, **stats)(raw[None])
    np.testing.assert_allclose(np.asarray(encoded)[0], fraud.encode_numpy(raw, stats, 8), atol=1e-5)

    model = fraud.build_fraud_lstm(units=4, head_units=0, **stats)
    padded = np.concatenate([np.zeros((1, 5, 5), "float32"), raw[None]], axis=1)
    np.testing.assert_allclose(model(padded), model(raw[None]), rtol=1e-5)
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(padded), model(padded), rtol=1e-6)
    contract = fraud.FraudRecipe().serving_contract(model)
    assert contract["inputs"]["transactions"] == ("float32", (None, None, 5))
    assert contract["outputs"] == {"fraud_probability": ("float32", (None,))}


def test_ranking_metrics_at_alert_budget():
    y = np.array([0] * 190 + [1] * 10)
    score = np.linspace(0, 1, 200)  # frauds get the top scores
    perfect = fraud.ranking_metrics(y, score, budget=0.02)
    assert perfect["pr_auc"] == pytest.approx(1.0) and perfect["roc_auc"] == pytest.approx(1.0)
    assert perfect["precision_at_top_2%"] == 1.0 and perfect["recall_at_top_2%"] == 0.4
    worst = fraud.ranking_metrics(y, -score, budget=0.02)
    assert worst["precision_at_top_2%"] == 0.0 and worst["roc_auc"] == pytest.approx(0.0)


def _csv(tmp_path, frame: pd.DataFrame, name: str = "tx.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_csv_gives_the_same_sequences_as_the_simulator(tmp_path, simulated):
    sim = simulate_transactions(SMALL["accounts"], SMALL["days"], SMALL["fraud_account_rate"], seed=0)
    recipe = fraud.FraudRecipe()
    from_csv = recipe.load(_csv(tmp_path, sim), window=8)
    direct = recipe.load(None, window=8, **SMALL)
    assert from_csv.info["test_sequences"] == direct.info["test_sequences"]
    np.testing.assert_allclose(from_csv.test[0], direct.test[0], atol=1e-3)
    np.testing.assert_array_equal(from_csv.test[1], direct.test[1])


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_column", ["tx.csv", "'is_online'"]),
        ("non_numeric", ["tx.csv", "'amount'", "'twelve'", "line 6"]),
        ("missing_value", ["tx.csv", "'amount'", "missing value", "line 9"]),
        ("bad_label", ["tx.csv", "'is_fraud'", "line 4", "0 or 1"]),
        ("bad_category", ["tx.csv", "'category'", "line 5", "integer"]),
        ("bad_timestamp", ["tx.csv", "'timestamp'", "'yesterday'", "line 7"]),
        ("mixed_time_zones", ["tx.csv", "'timestamp'", "cannot be parsed"]),
        ("duplicated", ["tx.csv", "'timestamp'", "duplicated", "account '0'", "line 3"]),
        ("unordered", ["tx.csv", "'timestamp'", "earlier", "account '0'", "line 3"]),
        ("no_frauds", ["tx.csv", "no fraud-labelled"]),
        ("empty", ["tx.csv", "empty"]),
    ],
)
def test_bad_input_is_a_clear_data_error(tmp_path, simulated, case, expected):
    frame = simulated.drop(columns="fraud_pattern").copy()
    frame["timestamp"] = frame["timestamp"].astype(str)
    frame = frame.astype({"amount": object, "is_fraud": object, "category": object})
    if case == "missing_column":
        frame = frame.drop(columns="is_online")
    elif case == "non_numeric":
        frame.loc[4, "amount"] = "twelve"
    elif case == "missing_value":
        frame.loc[7, "amount"] = np.nan
    elif case == "bad_label":
        frame.loc[2, "is_fraud"] = 2
    elif case == "bad_category":
        frame.loc[3, "category"] = 1.5
    elif case == "bad_timestamp":
        frame.loc[5, "timestamp"] = "yesterday"
    elif case == "mixed_time_zones":
        frame.loc[0, "timestamp"] = "2024-01-01T10:00:00+02:00"
        frame.loc[1, "timestamp"] = "2024-01-01T11:00:00+05:00"
    elif case == "duplicated":
        frame.loc[1, "timestamp"] = frame.loc[0, "timestamp"]
    elif case == "unordered":
        frame.loc[[0, 1], "timestamp"] = frame.loc[[1, 0], "timestamp"].to_numpy()
    elif case == "no_frauds":
        frame["is_fraud"] = 0
    path = _csv(tmp_path, frame)
    if case == "empty":
        path.write_text("")
    with pytest.raises(DataError) as info:
        fraud.FraudRecipe().load(path, window=8)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, message


def test_cli_train_then_evaluate_reports_baseline_and_budget(tmp_path):
    from lstm_zoo import cli

    out = tmp_path / "run"
    options = ["--accounts", "300", "--days", "30", "--fraud-account-rate", "0.4", "--window", "8"]
    code = cli.main(["train", "fraud", *options, "--epochs", "1", "--out", str(out),
                     "--hparam", "units=8", "--batch-size", "64"])  # fmt: skip
    assert code == 0
    test = json.loads((out / "metrics.json").read_text())["test"]
    for name in ("lstm", "logistic_regression_single_transaction"):
        assert 0.0 <= test[name]["pr_auc"] <= 1.0 and 0.0 <= test[name]["roc_auc"] <= 1.0
        assert "precision_at_top_1%" in test[name]
    assert test["test_frauds"] > 0 and isinstance(test["lstm_beats_baseline_pr_auc"], bool)
    assert "pr_auc" in test["validation"]["logistic_regression_single_transaction"]
    assert set(test["recall_at_budget_by_pattern"]) <= set(FRAUD_PATTERNS)
    assert (out / "pr_curve.png").stat().st_size > 1000
    again = evaluate("fraud", load_model(out), None, accounts=300, days=30,
                     fraud_account_rate=0.4, window=8)
    assert again["test"]["pr_auc"] == pytest.approx(test["pr_auc"], rel=1e-5)


def test_simulator_command_writes_a_csv_the_recipe_validates(tmp_path):
    from lstm_zoo.recipes import fraud_simulator

    path = tmp_path / "tx.csv"
    assert fraud_simulator.main([str(path), "--accounts", "20", "--days", "10", "--seed", "1"]) == 0
    checked = fraud.validate_transactions(pd.read_csv(path, dtype={"account_id": str}),
                                          source=str(path))
    assert list(checked.columns[:6]) == list(fraud.COLUMNS)
    assert len(checked) == len(simulate_transactions(20, 10, 0.15, seed=1))


def test_search_space_covers_the_layer_switches_and_builds():
    import keras_tuner

    space = fraud.FraudRecipe().search_space(keras_tuner.HyperParameters())
    assert {"units", "depth", "dropout", "learning_rate", "batch_size", "layer_norm",
            "proj_units", "use_peepholes"} <= set(space)  # fmt: skip
    switches = {"units": 8, "depth": 2, "layer_norm": True, "proj_units": 4, "use_peepholes": True}
    model = fraud.build_fraud_lstm(dropout=space["dropout"], **switches)
    x = np.concatenate([np.zeros((2, 3, 5)), np.ones((2, 4, 5))], axis=1).astype("float32")
    probability = np.asarray(model(x))
    assert probability.shape == (2,) and ((probability > 0) & (probability < 1)).all()


def test_importance_weights_weight_each_example():
    """Keras' own binary_crossentropy on a [batch] output applies sample weights to the batch
    mean (mean loss x mean weight); the recipe's loss must weight every example."""
    from lstm_zoo.recipes.fraud import FraudRecipe, per_example_binary_crossentropy

    y = np.array([0, 1, 0, 0], "float32")
    p = np.array([0.2, 0.7, 0.1, 0.4], "float32")
    w = np.array([1, 1, 10, 10], "float32")
    per_example = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    loss = keras.losses.get(FraudRecipe().loss())
    assert loss is per_example_binary_crossentropy
    assert np.asarray(loss(y, p)).shape == (4,)
    # through compile/evaluate, as fit applies it: a [batch] output like the fraud model's
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Reshape(())(inputs))
    model.compile(loss=FraudRecipe().loss())
    weighted = model.evaluate(p[:, None], y, sample_weight=w, batch_size=4, verbose=0)
    assert weighted == pytest.approx((per_example * w).mean(), 1e-5)
    assert weighted != pytest.approx(per_example.mean() * w.mean(), 1e-3)
