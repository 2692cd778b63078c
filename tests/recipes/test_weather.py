"""The weather recipe: data formats, bad input, in-model scaling, training, CLI, serving contract."""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest

from lstm_zoo import get_model, get_recipe, list_models, list_recipes
from lstm_zoo.errors import DataError

BEIJING_CSV = "beijing-weather/beijing_2010_2013.csv"
TINY_MODEL = {"units": 8}


@pytest.fixture(scope="module")
def recipe():
    return get_recipe("weather")


def daily_csv(tmp_path, n=120, name="daily.csv", **edits):
    """A small custom daily CSV: t (dates), a (sine), b (noise), y (target)."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2020-01-01", periods=n, freq="D")
    frame = pd.DataFrame({
        "t": days.strftime("%Y-%m-%d"),
        "a": np.sin(np.arange(n) * 2 * np.pi / 7),
        "b": rng.normal(size=n),
        "y": 10 + 5 * np.sin(np.arange(n) * 2 * np.pi / 7) + rng.normal(scale=0.1, size=n),
    }).astype(object)
    for (row, column), value in edits.get("cells", {}).items():
        frame.loc[row, column] = value
    frame = edits.get("transform", lambda f: f)(frame)
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


CUSTOM = {"time_col": "t", "features": "a,b", "target": "y", "lookback": 14, "horizon": 3}


# ---- registration and the model -------------------------------------------------------------


def test_registered_through_entry_point():
    assert "weather" in list_recipes()
    assert "weather-lstm" in list_models(task="forecasting")


def test_builder_passes_lstm_switches():
    model = get_model("weather-lstm", lookback=10, n_features=3, horizon=4, units=16, depth=2,
                      layer_norm=True, proj_units=8, use_peepholes=True, dropout=0.1)
    lstms = [layer for layer in model.layers if type(layer).__name__ == "LSTM"]
    assert len(lstms) == 2
    config = lstms[0].get_config()
    assert config["layer_norm"] and config["use_peepholes"] and config["proj_units"] == 8
    assert config["dropout"] == pytest.approx(0.1) and config["return_sequences"]
    assert model.output_shape == (None, 4)


def _zero_head(model):
    head = model.get_layer("head")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    return model


def test_model_takes_raw_history_and_returns_raw_units(recipe, tmp_path):
    """With the head zeroed the forecast is the targets' training mean in raw units (plain), or
    the last observed raw target value (residual: the change from "now" is zero)."""
    data = recipe.load(daily_csv(tmp_path), **CUSTOM)
    x = data.test[0][:2]
    plain = _zero_head(recipe.build_model(data, residual=False, **TINY_MODEL))
    train_rows = data.info["splits"]["train"]["rows"]
    frame = pd.read_csv(daily_csv(tmp_path))
    expected = frame["y"].iloc[train_rows[0]:train_rows[1]].mean()
    forecast = plain.predict(x, verbose=0)
    assert forecast.shape == (2, 3)
    np.testing.assert_allclose(forecast, expected, rtol=1e-5)
    residual = _zero_head(recipe.build_model(data, residual=True, **TINY_MODEL))
    last_y = x[:, -1, data.info["features"].index("y")]
    np.testing.assert_allclose(residual.predict(x, verbose=0), np.repeat(last_y[:, None], 3, 1),
                               rtol=1e-5, atol=1e-5)


# ---- embedded default ------------------------------------------------------------------------


def test_embedded_default_is_local_seattle(recipe, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the embedded default must not use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    data = recipe.load(None)
    x, y = data.train
    assert x.shape[1:] == (28, 4) and y.shape[1:] == (7, 2)
    assert data.info["format"] == "seattle-daily"
    assert data.info["targets"] == ["temp_max", "temp_min"]
    splits = data.info["splits"]
    assert splits["train"]["to"] < splits["val"]["from"] < splits["test"]["from"]
    # scaling statistics come from the training rows only
    frame = pd.read_csv(data.info["source"].split(" (")[0])
    train_rows = frame.iloc[: splits["train"]["rows"][1]]
    np.testing.assert_allclose(data.model_args["target_mean"],
                               train_rows[["temp_max", "temp_min"]].mean().to_numpy())
    assert data.model_args["target_mean"] != frame[["temp_max", "temp_min"]].mean().tolist()


def test_format_defaults_apply_and_hparams_override(recipe):
    data = recipe.load(None)
    assert data.info["model_defaults"] == {"residual": False, "dropout": 0.2}
    model = recipe.build_model(data, **TINY_MODEL)
    assert "last_targets" not in [layer.name for layer in model.layers]
    assert model.get_layer("lstm_1").get_config()["dropout"] == pytest.approx(0.2)
    overridden = recipe.build_model(data, residual=True, dropout=0.0, **TINY_MODEL)
    assert "last_targets" in [layer.name for layer in overridden.layers]
    assert overridden.get_layer("lstm_1").get_config()["dropout"] == 0.0


# ---- bad input: each a DataError naming file, column and line ---------------------------------


def test_empty_file(recipe, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        recipe.load(path, **CUSTOM)


def test_missing_columns(recipe, tmp_path):
    path = daily_csv(tmp_path)
    with pytest.raises(DataError, match=r"daily\.csv: missing column\(s\) 'c'"):
        recipe.load(path, **{**CUSTOM, "features": "a,c"})


def test_unknown_format_asks_for_columns(recipe, tmp_path):
    with pytest.raises(DataError, match=r"not a known weather format.*--time-col"):
        recipe.load(daily_csv(tmp_path))


def test_non_numeric_value(recipe, tmp_path):
    path = daily_csv(tmp_path, cells={(5, "b"): "n/a?"})
    with pytest.raises(DataError, match=r"daily\.csv: column 'b' has non-numeric value 'n/a\?' at line 7"):
        recipe.load(path, **CUSTOM)


def test_short_gap_is_interpolated_long_gap_refused(recipe, tmp_path):
    short = daily_csv(tmp_path, name="short.csv", cells={(10, "a"): None, (11, "a"): None})
    data = recipe.load(short, **CUSTOM)
    assert data.info["interpolated_values"] == {"a": 2}
    assert np.isfinite(data.train[0]).all()
    long = daily_csv(tmp_path, name="long.csv", cells={(r, "y"): None for r in range(20, 25)})
    with pytest.raises(DataError, match=r"long\.csv: column 'y' has a gap of 5 missing.*lines 22, 23"):
        recipe.load(long, **CUSTOM)
    # missing timestamps are gaps too: 5 absent days exceed the default limit of 3
    holes = daily_csv(tmp_path, name="holes.csv", transform=lambda f: f.drop(index=range(30, 35)))
    with pytest.raises(DataError, match=r"holes\.csv: column 'a' has a gap of 5.*absent from the file"):
        recipe.load(holes, **CUSTOM)
    assert recipe.load(holes, **CUSTOM, max_gap=5).info["interpolated_values"]["a"] == 5


def test_duplicated_and_unordered_timestamps(recipe, tmp_path):
    dup = daily_csv(tmp_path, name="dup.csv", cells={(8, "t"): "2020-01-08"})
    with pytest.raises(DataError, match=r"dup\.csv: time column 't' has duplicated timestamp 2020-01-08.*line 10"):
        recipe.load(dup, **CUSTOM)
    swapped = daily_csv(tmp_path, name="swap.csv",
                        cells={(8, "t"): "2020-01-10", (9, "t"): "2020-01-09"})
    with pytest.raises(DataError, match=r"swap\.csv: time column 't' is not in increasing order.*line 11"):
        recipe.load(swapped, **CUSTOM)


def test_series_too_short(recipe, tmp_path):
    with pytest.raises(DataError, match=r"tiny\.csv: the series is too short: 20 rows.*need at least"):
        recipe.load(daily_csv(tmp_path, n=20, name="tiny.csv"), **CUSTOM)


# ---- custom CSV, training end to end, evaluation, CLI -----------------------------------------


def test_custom_csv_options(recipe, tmp_path):
    data = recipe.load(daily_csv(tmp_path), **CUSTOM)
    assert data.info["features"] == ["a", "b", "y"]  # the target joins the inputs
    assert data.train[0].shape[1:] == (14, 3) and data.train[1].shape[1:] == (3,)
    assert data.info["seasonal_period"] == 7
    contract = recipe.serving_contract(recipe.build_model(data, **TINY_MODEL))
    assert contract == {"inputs": {"history": ("float32", (None, 14, 3))},
                        "outputs": {"forecast": ("float32", (None, 3))}}


def test_cli_train_then_evaluate_and_reload(recipe, tmp_path, capsys):
    """``lstm-zoo train weather`` with the custom-CSV options writes model, metrics and plots;
    the model reloads in safe mode; ``evaluate`` reproduces the test metrics."""
    from lstm_zoo import cli
    from lstm_zoo.training.driver import evaluate, load_model

    path = daily_csv(tmp_path, n=150)
    code = cli.main(["train", "weather", "--data", str(path), "--time-col", "t",
                     "--features", "a,b", "--target", "y", "--lookback", "14", "--horizon", "3",
                     "--epochs", "2", "--out", str(tmp_path / "run"), "--hparam", "units=8"])
    assert code in (0, None)
    assert "improvement_over_best_baseline_mae" in capsys.readouterr().out
    for name in ("model.keras", "metrics.json", "history.csv", "forecast_vs_actual.png",
                 "error_by_horizon.png", "training_curves.png"):
        assert (tmp_path / "run" / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    test = metrics["test"]
    assert metrics["data_info"]["lookback"] == 14 and test["horizon_steps"] == 3
    assert metrics["hparams"] == {"units": 8}
    assert set(test["baselines"]) == {"persistence", "seasonal_naive"}
    assert len(test["model"]["mae_per_horizon"]) == 3
    assert test["improvement_over_best_baseline_mae"] == pytest.approx(
        test["best_baseline_mae"] - test["mae"])
    # the saved model loads in safe mode, takes raw windows and gives the recorded metrics
    model = load_model(tmp_path / "run")
    data = recipe.load(path, **CUSTOM)
    assert recipe.sample_inputs(model, data, n=3)["history"].shape == (3, 14, 3)
    record = evaluate(recipe, tmp_path / "run", path, **CUSTOM)
    assert record["test"]["mae"] == pytest.approx(test["mae"], rel=1e-5)
    # a model trained on other windows is refused with a clear message
    with pytest.raises(DataError, match=r"expects history windows of shape \(14, 3\)"):
        evaluate(recipe, model, path, **{**CUSTOM, "lookback": 10})


def test_search_space_builds(recipe, tmp_path):
    import keras_tuner

    from lstm_zoo.training.driver import split_hparams

    hp = keras_tuner.HyperParameters()
    values = recipe.search_space(hp)
    assert {"units", "depth", "dropout", "learning_rate", "batch_size", "layer_norm",
            "use_peepholes", "proj_units"} <= set(values)
    config, model_args = split_hparams(recipe, values)
    assert {"learning_rate", "batch_size"} <= set(config)
    data = recipe.load(daily_csv(tmp_path), **CUSTOM)
    model = recipe.build_model(data, **{**model_args, "proj_units": 8, "layer_norm": True})
    assert model.output_shape == (None, 3)


# ---- real data -------------------------------------------------------------------------------


@pytest.mark.slow
def test_beijing_slice(recipe, shared_data, tmp_path):
    """The Beijing format is detected by its columns; contract [b, 72, 6] -> [b, 24] in °C."""
    source = shared_data / BEIJING_CSV
    sliced = tmp_path / "beijing_slice.csv"
    pd.read_csv(source, nrows=1500).to_csv(sliced, index=False)  # pm2.5 NA gaps are ignored
    data = recipe.load(sliced)
    assert data.info["format"] == "beijing-hourly"
    assert data.info["features"] == ["DEWP", "TEMP", "PRES", "Iws", "Is", "Ir"]
    assert data.info["seasonal_period"] == 24
    model = recipe.build_model(data, **TINY_MODEL)
    assert recipe.serving_contract(model) == {
        "inputs": {"history": ("float32", (None, 72, 6))},
        "outputs": {"forecast": ("float32", (None, 24))},
    }
    metrics = recipe.evaluate(model, data)
    assert metrics["test_windows"] == data.test[0].shape[0] > 0
    assert set(metrics["baselines"]) == {"persistence", "seasonal_naive"}
