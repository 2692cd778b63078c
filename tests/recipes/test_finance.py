"""The finance recipe on tiny synthetic price series: targets, causality, baselines, model,
bad input, and one end-to-end training run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from lstm_zoo.recipes import finance

from lstm_zoo.errors import DataError
from lstm_zoo.training.driver import evaluate, load_model

LOOKBACK = 20  # small windows keep the tests fast; the recipe default is 60


def _prices(n: int = 320, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vol = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))  # slowly wandering volatility
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0003, vol)))


def _csv(tmp_path: Path, prices, name: str = "prices.csv", dates=None) -> Path:
    dates = pd.bdate_range("2020-01-01", periods=len(prices)) if dates is None else dates
    path = tmp_path / name
    pd.DataFrame({"day": [str(d.date()) for d in dates], "close": prices}).to_csv(path, index=False)
    return path


def test_targets_are_next_return_and_next_five_day_std():
    prices = _prices(200)
    splits = finance.series_windows(prices, lookback=LOOKBACK)
    log_p = np.log(prices)
    for split in splits.values():
        for i in (0, len(split["x"]) - 1):
            o = split["origin"][i]
            np.testing.assert_allclose(split["x"][i], prices[o - LOOKBACK:o], rtol=1e-6)
            future = np.diff(log_p[o - 1:o + 5])
            assert split["log_return"][i] == pytest.approx(future[0])
            assert split["volatility"][i] == pytest.approx(future.std(ddof=1))
            past = np.diff(log_p[max(o - 21, o - LOOKBACK):o])  # 20 returns, or all the window has
            assert split["rolling_20d_std"][i] == pytest.approx(past.std(ddof=1))
    # chronological and disjoint targets: a split's targets end before the next one's start
    assert splits["train"]["origin"].max() + 5 <= splits["val"]["origin"].min()
    assert splits["val"]["origin"].max() + 5 <= splits["test"]["origin"].min()


def test_no_feature_or_baseline_uses_future_prices():
    prices = _prices(320)
    before = finance.series_windows(prices, lookback=LOOKBACK)
    t = int(before["val"]["origin"][10])  # perturb every price after row t (inside val)
    perturbed = prices.copy()
    perturbed[t + 1:] *= np.random.default_rng(1).uniform(0.8, 1.25, len(prices) - t - 1)
    after = finance.series_windows(perturbed, lookback=LOOKBACK)
    assert after["train"]["garch_params"] == before["train"]["garch_params"]  # fitted on train
    for split in ("train", "val", "test"):
        known = before[split]["origin"] <= t + 1  # inputs use rows < origin <= t + 1
        for key in ("x", "rolling_20d_std", "garch_1_1", "historical_mean", "random_walk"):
            np.testing.assert_array_equal(after[split][key][known], before[split][key][known])
    # ... while targets at and after t + 1 did change, so the check has teeth
    changed = before["val"]["origin"] == t + 1
    assert not np.allclose(after["val"]["log_return"][changed], before["val"]["log_return"][changed])
    later = ~(before["test"]["origin"] <= t + 1)
    assert not np.allclose(after["test"]["x"][later], before["test"]["x"][later])


def test_baselines_use_the_latest_price_they_may_see():
    prices = _prices(320)
    before = finance.series_windows(prices, lookback=LOOKBACK)
    o = int(before["test"]["origin"][5])
    moved = prices.copy()
    moved[o - 1] *= 1.05  # the last input price of the window with first target row o
    after = finance.series_windows(moved, lookback=LOOKBACK)
    i = 5  # same window: its forecasts must react, so they are not a day stale
    for key in ("garch_1_1", "rolling_20d_std"):
        assert after["test"][key][i] != pytest.approx(before["test"][key][i], rel=1e-9), key
    np.testing.assert_array_equal(after["test"]["garch_1_1"][:i], before["test"]["garch_1_1"][:i])


def test_model_computes_returns_in_graph_and_reloads_in_safe_mode(tmp_path):
    prices = _prices(100)[None, :LOOKBACK].astype("float32")
    features = finance.PriceReturnFeatures()(prices)
    expected = np.diff(np.log(prices.astype("float64")), axis=1)
    np.testing.assert_allclose(np.asarray(features)[0, :, 0], expected[0], atol=1e-6)
    model = finance.build_finance_lstm(
        lookback=LOOKBACK, feature_mean=[0.0, 0.01], feature_variance=[1e-4, 1e-4],
        target_mean=[0.0, -4.6], target_variance=[1e-4, 0.25], units=4,
    )  # fmt: skip
    out = model(prices)
    assert set(out) == {"log_return", "volatility"}
    assert out["log_return"].shape == (1,) and float(out["volatility"][0]) > 0
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(prices)["volatility"], out["volatility"], rtol=1e-6)
    recipe = finance.FinanceRecipe()
    contract = recipe.serving_contract(model)
    assert contract["inputs"] == {"prices": ("float32", (None, LOOKBACK))}
    served = recipe.serving_function(model)({"prices": prices})
    np.testing.assert_allclose(served["log_return"], out["log_return"], rtol=1e-6)


def test_qlike_is_zero_for_perfect_forecasts_and_penalises_underprediction():
    v = np.array([0.01, 0.02])
    assert finance.qlike(v, v) == pytest.approx(0.0, abs=1e-9)
    assert finance.qlike(v, v / 2) > finance.qlike(v, v * 2) > 0


def test_short_nan_gap_is_interpolated_and_reported(tmp_path):
    prices = _prices(320).astype(object)
    prices[50:52] = np.nan
    data = finance.FinanceRecipe().load(_csv(tmp_path, prices), date_col="day",
                                        price_col="close", lookback=LOOKBACK)
    assert data.info["series"]["prices"]["interpolated_prices"] == 2
    assert np.isfinite(data.train[0]).all()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_column", ["prices.csv", "'close'"]),
        ("non_numeric", ["prices.csv", "'close'", "'abc'", "line 12"]),
        ("long_gap", ["prices.csv", "'close'", "gap of 6", "line"]),
        ("duplicated", ["prices.csv", "'day'", "duplicated", "line 32"]),
        ("unordered", ["prices.csv", "'day'", "not in increasing order", "line 32"]),
        ("too_short", ["prices.csv", "24 rows", "lookback + horizon"]),
        ("too_short_for_splits", ["prices.csv", "too few", "split"]),
        ("non_positive", ["prices.csv", "'close'", "non-positive", "line 42"]),
        ("empty", ["prices.csv", "empty"]),
    ],
)
def test_bad_input_is_a_clear_data_error(tmp_path, case, expected):
    prices = _prices(320).astype(object)
    dates = list(pd.bdate_range("2020-01-01", periods=len(prices)))
    path = None
    if case == "missing_column":
        path = tmp_path / "prices.csv"
        pd.DataFrame({"day": [str(d.date()) for d in dates], "price": prices}).to_csv(path)
    elif case == "non_numeric":
        prices[10] = "abc"
    elif case == "long_gap":
        prices[100:106] = np.nan
    elif case == "duplicated":
        dates[30] = dates[29]
    elif case == "unordered":
        dates[29], dates[30] = dates[30], dates[29]
    elif case == "too_short":
        prices, dates = prices[:24], dates[:24]
    elif case == "too_short_for_splits":
        prices, dates = prices[:30], dates[:30]
    elif case == "non_positive":
        prices[40] = -1.0
    elif case == "empty":
        path = tmp_path / "prices.csv"
        path.write_text("")
    path = path or _csv(tmp_path, prices, dates=dates)
    with pytest.raises(DataError) as info:
        finance.FinanceRecipe().load(path, date_col="day", price_col="close", lookback=LOOKBACK)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, message


def test_cli_train_then_evaluate_writes_metrics_and_plots(tmp_path):
    from lstm_zoo import cli

    data = _csv(tmp_path, _prices(320))
    out = tmp_path / "run"
    common = ["--data", str(data), "--date-col", "day", "--price-col", "close",
              "--lookback", str(LOOKBACK)]  # fmt: skip
    code = cli.main(["train", "finance", *common, "--epochs", "1", "--out", str(out),
                     "--hparam", "units=4", "--batch-size", "32"])  # fmt: skip
    assert code == 0
    record = json.loads((out / "metrics.json").read_text())
    test = record["test"]
    for baseline in ("random_walk", "historical_mean"):
        assert test["returns"][baseline]["rmse"] > 0
    assert set(test["volatility"]) >= {"lstm", "rolling_20d_std", "garch_1_1"}
    assert isinstance(test["returns"]["lstm_beats_random_walk"], bool)
    assert "random walk" in test["summary"] and "validation" in test
    assert (out / "forecast_vs_actual.png").stat().st_size > 1000
    assert (out / "training_curves.png").exists()
    model = load_model(out)
    again = evaluate("finance", model, data, date_col="day", price_col="close", lookback=LOOKBACK)
    assert again["test"]["volatility"]["lstm"]["qlike"] == pytest.approx(
        test["volatility"]["lstm"]["qlike"], rel=1e-5)


def test_search_space_covers_the_layer_switches_and_builds():
    import keras_tuner

    space = finance.FinanceRecipe().search_space(keras_tuner.HyperParameters())
    assert {"units", "depth", "dropout", "learning_rate", "batch_size", "layer_norm",
            "proj_units", "use_peepholes"} <= set(space)  # fmt: skip
    switches = {"units": 8, "depth": 2, "layer_norm": True, "proj_units": 4, "use_peepholes": True}
    model = finance.build_finance_lstm(lookback=LOOKBACK, dropout=space["dropout"], **switches)
    out = model(_prices(100)[None, :LOOKBACK].astype("float32"))
    assert np.isfinite(np.asarray(out["volatility"])).all()
