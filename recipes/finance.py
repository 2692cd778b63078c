"""Finance recipe: next-day log return (and direction) and 5-day volatility from 60 daily prices.

Embedded default data: S&P 500 and NASDAQ Composite daily closes 1999-2018 shipped inside the
``arch`` package (``arch.data.sp500`` / ``arch.data.nasdaq``; local files, no network).  A user
CSV needs a date column and a closing-price column (``--date-col``, ``--price-col``).

For each trading day ``t`` the model sees the previous ``lookback`` (60) closing prices, raw,
and predicts

* ``log_return``: ``log(p[t] / p[t-1])``, the next day's log return;
* ``volatility``: the sample standard deviation (ddof=1) of the daily log returns of days
  ``t .. t+4`` (the next 5 trading days).

The saved model takes the raw prices: log returns and their scaling (fitted on the training
split) happen inside the graph.  Splits are chronological per series (70/15/15 of the rows by
default); a window's targets never cross its split's end.  Baselines on the same test windows:
random walk (next return 0) and the historical mean for returns; the rolling 20-day standard
deviation and GARCH(1,1) (fitted with ``arch`` on the training returns only, then filtered
forward with fixed parameters) for volatility.  Volatility is scored with RMSE, MAE and QLIKE
(on variances, Patton 2011: robust to the noise of a 5-day realised variance).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from keras import ops

from lstm_zoo.data import timeseries as ts
from lstm_zoo.errors import DataError
from lstm_zoo.models.forecaster import build_forecaster
from lstm_zoo.models.stack import accepts_lstm_options, lstm_switch_space
from lstm_zoo.recipe import Option, Recipe, RecipeData, TrainConfig
from lstm_zoo.registry import register_model, register_recipe

LOOKBACK = 60
VOL_DAYS = 5
ROLLING_DAYS = 20
EMBEDDED_SERIES = ("sp500", "nasdaq")
RETURN_LOSS_WEIGHT = 1e4  # returns enter the loss in percent: MSE in %^2, comparable to QLIKE
_QLIKE_EPS = 1e-12


# ---- in-graph preprocessing and heads (registered: safe-mode .keras loading) ---------------


@keras.saving.register_keras_serializable(package="lstm_zoo.finance")
class PriceReturnFeatures(keras.layers.Layer):
    """Raw prices [batch, days] -> [batch, days - 1, 2]: (log return, |log return|) per day."""

    def call(self, prices):
        log_prices = ops.log(ops.maximum(ops.cast(prices, "float32"), 1e-12))
        returns = log_prices[:, 1:] - log_prices[:, :-1]
        return ops.stack([returns, ops.abs(returns)], axis=-1)

    def compute_output_shape(self, input_shape):
        days = input_shape[1]
        return (input_shape[0], None if days is None else days - 1, 2)


@keras.saving.register_keras_serializable(package="lstm_zoo.finance")
class ReturnVolatilityHeads(keras.layers.Layer):
    """Forecaster output [batch, 1, 2] (log return, log volatility) -> two [batch] tensors."""

    def call(self, forecast):
        return forecast[:, 0, 0], ops.exp(forecast[:, 0, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0],), (input_shape[0],)


@keras.saving.register_keras_serializable(package="lstm_zoo.finance")
def qlike_loss(y_true, y_pred):
    """QLIKE on variances, ``s/h - log(s/h) - 1`` with ``s = y_true**2``, ``h = y_pred**2``."""
    ratio = (ops.square(y_true) + _QLIKE_EPS) / (ops.square(y_pred) + _QLIKE_EPS)
    return ratio - ops.log(ratio) - 1.0


@register_model(
    "finance-lstm",
    task="forecasting",
    description="next-day log return and 5-day volatility of a price series from 60 raw "
    "daily closes (log returns and scaling inside the graph)",
    inputs="prices float32 [batch, 60]: the previous 60 daily closing prices, raw",
    outputs="log_return float32 [batch] (next day); volatility float32 [batch] (std of the "
    "next 5 daily log returns)",
    recipe="finance",
)
@accepts_lstm_options
def build_finance_lstm(
    lookback: int = LOOKBACK,
    feature_mean: list[float] | None = None,
    feature_variance: list[float] | None = None,
    target_mean: list[float] | None = None,
    target_variance: list[float] | None = None,
    units: int = 32,
    depth: int = 1,
    dropout: float = 0.1,
    **lstm_options: Any,
) -> keras.Model:
    """Prices [batch, lookback] -> {"log_return": [batch], "volatility": [batch]}.

    ``feature_*`` are the training statistics of (log return, |log return|); ``target_*``
    those of (next log return, log volatility).  Without them the model runs unscaled.
    """
    prices = keras.Input(shape=(int(lookback),), name="prices", dtype="float32")
    features = PriceReturnFeatures(name="log_returns")(prices)
    core = build_forecaster(
        lookback=int(lookback) - 1, n_features=2, horizon=1, n_targets=2,
        input_mean=feature_mean, input_variance=feature_variance,
        target_mean=target_mean, target_variance=target_variance,
        units=units, depth=depth, dropout=dropout, head_dropout=dropout,
        name="return_volatility_forecaster", **lstm_options,
    )  # fmt: skip
    log_return, volatility = ReturnVolatilityHeads(name="heads")(core(features))
    outputs = {
        "log_return": keras.layers.Identity(name="log_return")(log_return),
        "volatility": keras.layers.Identity(name="volatility")(volatility),
    }
    return keras.Model(prices, outputs, name="finance_lstm")


# ---- data: validated price series, windows, baselines (numpy only) ------------------------


def validate_prices(
    frame: pd.DataFrame, *, date_col: str, price_col: str, source: str, max_gap: int = 3
) -> tuple[pd.Series, int]:
    """Checked closing prices indexed by date, and how many were interpolated.

    Missing columns, non-numeric cells, duplicated or unordered dates, NaN gaps longer than
    ``max_gap`` rows and non-positive prices raise a :class:`DataError` naming the file,
    column and line.  Rows are trading days: weekends and holidays are not gaps.
    """
    ts.require_columns(frame, [date_col, price_col], source=source)
    index = ts.time_index(frame, date_col, source=source)
    values = ts.numeric_columns(frame, [price_col], source=source)
    values.index = index
    filled, counts = ts.fill_gaps(values, max_gap=max_gap, source=source)
    prices = filled[price_col]
    bad = np.flatnonzero(prices.to_numpy() <= 0)
    if len(bad):
        raise DataError(
            f"{source}: column {price_col!r} has non-positive price {prices.iloc[bad[0]]!r} at "
            f"line {ts.file_line(values, bad[0])} (log returns need prices > 0)"
        )
    return prices, counts[price_col]


def log_return_rows(prices: np.ndarray) -> np.ndarray:
    """``r[i] = log(p[i] / p[i-1])`` per row (``r[0]`` is NaN): row-aligned with the prices."""
    log_prices = np.log(np.asarray(prices, dtype="float64"))
    return np.concatenate([[np.nan], np.diff(log_prices)])


def rolling_std_forecast(x_prices: np.ndarray, days: int = ROLLING_DAYS) -> np.ndarray:
    """Baseline volatility: std (ddof=1) of the last ``days`` log returns in each input window."""
    returns = np.diff(np.log(np.asarray(x_prices, dtype="float64")[:, -(days + 1):]), axis=1)
    return returns.std(axis=1, ddof=1)


def fit_garch(train_returns: np.ndarray) -> pd.Series:
    """GARCH(1,1) with constant mean fitted (in percent units) on training returns only."""
    from arch import arch_model

    result = arch_model(100.0 * train_returns, mean="Constant", vol="GARCH", p=1, q=1)
    return result.fit(disp="off").params


def garch_forecast(returns: np.ndarray, params: pd.Series, origins: np.ndarray,
                   horizon: int = VOL_DAYS) -> np.ndarray:
    """Volatility forecasts of GARCH(1,1) with fixed ``params``, filtered forward.

    ``returns`` are row-aligned (``log_return_rows``); the forecast for the window with first
    target row ``o`` conditions on returns of rows ``< o`` only, and is the square root of the
    mean forecast variance over the ``horizon`` days.
    """
    from arch import arch_model

    model = arch_model(100.0 * returns[1:], mean="Constant", vol="GARCH", p=1, q=1)
    variance = model.fix(params).forecast(horizon=horizon, start=0, reindex=False).variance
    rows = np.asarray(origins) - 2  # forecast row j conditions on returns rows 1..j+1
    return np.sqrt(variance.to_numpy()[rows].mean(axis=1)) / 100.0


def series_windows(prices: np.ndarray, *, lookback: int = LOOKBACK, horizon: int = VOL_DAYS,
                   fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                   source: str = "series") -> dict[str, dict[str, np.ndarray]]:
    """Chronological train/val/test windows of one price series, with their baselines.

    Each split holds ``x`` (raw prices [n, lookback]), ``log_return``, ``volatility``,
    ``origin`` (row of the first target day) and the baselines; GARCH is fitted on the
    training returns only.  Raises :class:`DataError` when a split would be empty.
    """
    prices = np.asarray(prices, dtype="float64")
    if len(prices) < lookback + horizon:
        raise DataError(
            f"{source}: the series has {len(prices)} rows; it needs at least lookback + "
            f"horizon = {lookback} + {horizon} = {lookback + horizon} (and more for splits)"
        )
    returns = log_return_rows(prices)
    bounds = ts.chronological_split(len(prices), fractions)
    train_returns = returns[1:bounds.train_end]
    params = fit_garch(train_returns) if len(train_returns) > 10 else None
    out = {}
    for split, (start, stop) in bounds.ranges().items():
        w = ts.make_windows(prices[:, None], returns[:, None], lookback=lookback,
                            horizon=horizon, start=start, stop=stop, dtype="float64")
        if len(w) == 0:
            raise DataError(
                f"{source}: {len(prices)} rows are too few for chronological splits: the "
                f"{split} split gets no {lookback}+{horizon}-day window (use a longer series)"
            )
        x, future = w.x[:, :, 0], w.y[:, :, 0]
        out[split] = {
            "x": x.astype("float32"), "origin": w.origin,
            "log_return": future[:, 0], "volatility": future.std(axis=1, ddof=1),
            "random_walk": np.zeros(len(x)),
            "historical_mean": np.full(len(x), np.mean(train_returns)),
            "rolling_20d_std": rolling_std_forecast(x),
            "garch_1_1": (garch_forecast(returns, params, w.origin, horizon)
                          if params is not None else np.full(len(x), np.nan)),
        }  # fmt: skip
    out["train"]["garch_params"] = None if params is None else params.to_dict()
    return out


# ---- metrics ---------------------------------------------------------------------------------


def qlike(realized_std: np.ndarray, predicted_std: np.ndarray) -> float:
    """Mean QLIKE loss on variances (0 is perfect; lower is better)."""
    ratio = (np.square(realized_std) + _QLIKE_EPS) / (np.square(predicted_std) + _QLIKE_EPS)
    return float(np.mean(ratio - np.log(ratio) - 1.0))


def _errors(true: np.ndarray, pred: np.ndarray, with_qlike: bool = False) -> dict[str, float]:
    error = np.asarray(pred, dtype="float64") - true
    out = {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error)))}
    if with_qlike:
        out["qlike"] = qlike(true, pred)
    return out


def compare(split: dict[str, np.ndarray], ret_pred: np.ndarray, vol_pred: np.ndarray,
            up_share_train: float) -> dict[str, Any]:
    """LSTM vs baselines on one split: return errors, direction accuracy, volatility errors."""
    r, v = split["log_return"], split["volatility"]
    returns = {"lstm": _errors(r, ret_pred)}
    for name in ("random_walk", "historical_mean"):
        returns[name] = _errors(r, split[name])
    rw_mse = returns["random_walk"]["rmse"] ** 2
    returns["oos_r2_vs_random_walk"] = 1.0 - returns["lstm"]["rmse"] ** 2 / rw_mse
    returns["lstm_beats_random_walk"] = bool(returns["lstm"]["rmse"] < returns["random_walk"]["rmse"])
    up = r > 0
    majority_up = up_share_train >= 0.5
    direction = {
        "lstm_accuracy": float(np.mean((ret_pred > 0) == up)),
        "majority_class_accuracy": float(np.mean(up == majority_up)),
        "majority_class": "up" if majority_up else "down",
    }
    direction["lstm_beats_majority_class"] = bool(
        direction["lstm_accuracy"] > direction["majority_class_accuracy"])
    vol = {"lstm": _errors(v, vol_pred, True)}
    for name in ("rolling_20d_std", "garch_1_1"):
        vol[name] = _errors(v, split[name], True)
    garch = vol["garch_1_1"]
    vol["lstm_matches_garch_qlike"] = bool(vol["lstm"]["qlike"] <= garch["qlike"])
    vol["lstm_matches_garch_rmse"] = bool(vol["lstm"]["rmse"] <= garch["rmse"])
    return {"returns": returns, "direction": direction, "volatility": vol, "windows": len(r)}


# ---- the recipe ------------------------------------------------------------------------------

_SPLITS = ("train", "val", "test")
_BASELINES = ("random_walk", "historical_mean", "rolling_20d_std", "garch_1_1")


def _embedded_frame(name: str) -> pd.DataFrame:
    import importlib

    if name not in EMBEDDED_SERIES:
        raise DataError(f"unknown embedded series {name!r}; choose from {', '.join(EMBEDDED_SERIES)}")
    frame = importlib.import_module(f"arch.data.{name}").load()
    return frame.reset_index()[["Date", "Close"]]


@register_recipe
class FinanceRecipe(Recipe):
    """Return and volatility forecasting from raw closing prices (see the module docstring)."""

    name = "finance"
    task = "forecasting"
    description = ("next-day log return and 5-day volatility from 60 daily closes (S&P 500 / "
                   "NASDAQ or a prices CSV), next to random walk, rolling std and GARCH(1,1)")
    default_model = "finance-lstm"
    data_provenance = (
        "S&P 500 and NASDAQ Composite daily OHLCV 1999-2018 from the arch package "
        "(arch.data.sp500 / arch.data.nasdaq; arch is NCSA-licensed)"
    )
    train_config = TrainConfig(epochs=30, batch_size=64, learning_rate=1e-3, patience=6)
    headline_metric = "volatility_qlike"

    options = (
        Option("--date-col", "date column of --data"),
        Option("--price-col", "closing-price column of --data"),
        Option("--series", "embedded series to use without --data"),
        Option("--max-gap", "longest run of missing prices to interpolate, in rows"),
        Option("--lookback", "days of prices the model sees"),
    )

    def load(self, data: str | Path | None = None, *, seed: int = 0, date_col: str = "Date",
             price_col: str = "Close", series: str = ",".join(EMBEDDED_SERIES), max_gap: int = 3,
             lookback: int = LOOKBACK, **options: Any) -> RecipeData:
        """Windows from the embedded indices (``data`` None) or a user CSV, split by time."""
        if options:
            raise TypeError(f"unknown finance option(s): {', '.join(sorted(options))}")
        if data is None:
            names = [s.strip() for s in str(series).split(",") if s.strip()]
            frames = {n: (_embedded_frame(n), f"arch.data.{n}", "Date", "Close") for n in names}
        else:
            frames = {Path(data).stem: (ts.read_csv(data), str(data), date_col, price_col)}
        per_series, info = {}, {"series": {}, "lookback": lookback, "vol_days": VOL_DAYS}
        for key, (frame, source, dcol, pcol) in frames.items():
            prices, filled = validate_prices(frame, date_col=dcol, price_col=pcol,
                                             source=source, max_gap=max_gap)
            windows = series_windows(prices.to_numpy(), lookback=lookback, source=source)
            dates = prices.index
            for split in _SPLITS:
                windows[split]["date"] = dates[windows[split]["origin"]]
            per_series[key] = windows
            info["series"][key] = {
                "source": source, "rows": len(prices), "interpolated_prices": filled,
                "first": str(dates[0].date()), "last": str(dates[-1].date()),
                "garch_params": windows["train"]["garch_params"],
                **{f"{s}_windows": len(windows[s]["x"]) for s in _SPLITS},
                **{f"{s}_from": str(windows[s]["date"][0].date()) for s in _SPLITS},
            }  # fmt: skip
        splits = {s: _concat([per_series[k][s] for k in per_series], k_names=list(per_series))
                  for s in _SPLITS}
        train = splits["train"]
        train_returns = np.diff(np.log(train["x"].astype("float64")), axis=1).ravel()
        features = np.stack([train_returns, np.abs(train_returns)], axis=1)
        targets = np.stack([train["log_return"], np.log(np.maximum(train["volatility"], 1e-8))], 1)
        inputs, outputs = ts.fit_scaler(features, 1e-12), ts.fit_scaler(targets, 1e-12)
        model_args = {
            "lookback": lookback,
            "feature_mean": inputs.mean.tolist(), "feature_variance": inputs.variance.tolist(),
            "target_mean": outputs.mean.tolist(), "target_variance": outputs.variance.tolist(),
        }  # fmt: skip
        info["up_share_train"] = float(np.mean(train["log_return"] > 0))

        def xy(split: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            return split["x"], {k: split[k].astype("float32") for k in ("log_return", "volatility")}

        return RecipeData(xy(train), xy(splits["val"]), xy(splits["test"]), model_args, info,
                          extras={"splits": splits})

    def loss(self) -> dict[str, Any]:
        """MSE on the next return and QLIKE on volatility (weighted in :meth:`compile`)."""
        return {"log_return": "mse", "volatility": qlike_loss}

    def compile(self, model: Any, config: TrainConfig) -> None:
        """Adam with clipping; the return MSE is weighted as if in percent (see
        ``RETURN_LOSS_WEIGHT``) so both heads contribute on a similar scale."""
        super().compile(model, config)
        model.compile(optimizer=model.optimizer, loss=self.loss(), metrics=self.metrics(),
                      loss_weights={"log_return": RETURN_LOSS_WEIGHT, "volatility": 1.0})

    def predict(self, model: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log_return, volatility) predictions as float64 arrays."""
        out = model.predict(x, batch_size=1024, verbose=0)
        return (np.asarray(out["log_return"], "float64").reshape(-1),
                np.asarray(out["volatility"], "float64").reshape(-1))

    def evaluate(self, model: Any, data: RecipeData) -> dict[str, Any]:
        """Test metrics next to the baselines (validation metrics under ``validation``)."""
        up = data.info["up_share_train"]
        result = {}
        for split in ("test", "val"):
            s = data.extras["splits"][split]
            result[split] = compare(s, *self.predict(model, s["x"]), up)
        test = result["test"]
        test["volatility_qlike"] = test["volatility"]["lstm"]["qlike"]
        test["return_rmse"] = test["returns"]["lstm"]["rmse"]
        test["summary"] = _summary(test)
        test["validation"] = result["val"]
        return test

    def plot(self, model: Any, data: RecipeData, out_dir: Path) -> list[Path]:
        """``forecast_vs_actual.png``: last 250 test days of the first series."""
        from lstm_zoo.plots import figure, save_figure

        s = data.extras["splits"]["test"]
        first = s["series"] == s["series"][0]
        idx = np.flatnonzero(first)[-250:]
        ret_pred, vol_pred = self.predict(model, s["x"][idx])
        dates = pd.DatetimeIndex(s["date"][idx])
        plt = figure()
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
        ax1.plot(dates, s["log_return"][idx], lw=0.8, color="grey", label="actual")
        ax1.plot(dates, ret_pred, lw=1.2, label="LSTM")
        ax1.axhline(0.0, color="black", lw=0.6, ls=":", label="random walk (0)")
        ax1.set_title(f"{s['series'][0]}: next-day log return (test windows)")
        ax1.legend(loc="upper left", fontsize=8)
        ax2.plot(dates, s["volatility"][idx], lw=0.8, color="grey", label="realised (5-day std)")
        ax2.plot(dates, vol_pred, lw=1.2, label="LSTM")
        ax2.plot(dates, s["garch_1_1"][idx], lw=1.0, ls="--", label="GARCH(1,1)")
        ax2.plot(dates, s["rolling_20d_std"][idx], lw=1.0, ls=":", label="rolling 20-day std")
        ax2.set_title("volatility of the next 5 daily log returns")
        ax2.legend(loc="upper left", fontsize=8)
        return [save_figure(fig, out_dir / "forecast_vs_actual.png")]

    def search_space(self, hp: Any) -> dict[str, Any]:
        return {
            "units": hp.Choice("units", [16, 32, 64]),
            "depth": hp.Int("depth", 1, 2),
            "dropout": hp.Float("dropout", 0.0, 0.3, step=0.1),
            **lstm_switch_space(hp),
            "learning_rate": hp.Float("learning_rate", 1e-4, 3e-3, sampling="log"),
            "batch_size": hp.Choice("batch_size", [32, 64, 128]),
        }

    def serving_contract(self, model: Any) -> dict[str, Any]:
        lookback = int(model.inputs[0].shape[1])
        return {
            "inputs": {"prices": ("float32", (None, lookback))},
            "outputs": {"log_return": ("float32", (None,)), "volatility": ("float32", (None,))},
        }

    def serving_function(self, model: Any) -> Any:
        def serve(inputs: dict[str, Any]) -> dict[str, Any]:
            out = model(inputs["prices"], training=False)
            return {"log_return": out["log_return"], "volatility": out["volatility"]}

        return serve


def _concat(parts: list[dict[str, Any]], k_names: list[str]) -> dict[str, np.ndarray]:
    keys = ["x", "origin", "log_return", "volatility", "date", *_BASELINES]
    out = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in keys}
    out["series"] = np.concatenate([np.full(len(p["x"]), n) for p, n in zip(parts, k_names)])
    return out


def _summary(test: dict[str, Any]) -> str:
    """One honest sentence per task for metrics.json and the README."""
    r, v = test["returns"], test["volatility"]
    ret = ("beats" if r["lstm_beats_random_walk"] else "does NOT beat") + (
        f" the random walk on next-day returns (RMSE {r['lstm']['rmse']:.5f} vs "
        f"{r['random_walk']['rmse']:.5f}, out-of-sample R2 {r['oos_r2_vs_random_walk']:+.4f})")
    vol = ("matches or beats" if v["lstm_matches_garch_qlike"] else "is worse than") + (
        f" GARCH(1,1) on volatility QLIKE ({v['lstm']['qlike']:.4f} vs "
        f"{v['garch_1_1']['qlike']:.4f}; RMSE {v['lstm']['rmse']:.5f} vs "
        f"{v['garch_1_1']['rmse']:.5f})")
    return f"The LSTM {ret}; it {vol}."
