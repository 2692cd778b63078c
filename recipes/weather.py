"""Weather recipe: multi-step, multivariate forecasting with an LSTM, next to naive baselines.

Data (detected from the CSV header):

* embedded default — Seattle daily weather 2012-2015, the CSV shipped inside the
  ``vega_datasets`` package (read from the local file, never the network): predict the next
  7 days of ``temp_max`` and ``temp_min`` from 28 days of ``precipitation, temp_max, temp_min,
  wind``; seasonal-naive baseline = same day last week.
* Beijing hourly weather 2010-2013 (UCI "Beijing PM2.5 Data", ``--data PATH``): predict the
  next 24 hourly ``TEMP`` values from 72 hours of ``DEWP, TEMP, PRES, Iws, Is, Ir``;
  seasonal-naive baseline = same hour yesterday.
* any CSV: ``--time-col C --features a,b,c --target t [--lookback L --horizon H]``.

Splits are chronological 70/15/15; scaling statistics come from the training rows only and
live inside the model (``Normalization`` at the input, an inverted one at the output), so the
saved model takes raw history and returns raw forecasts (°C for the weather data).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lstm_zoo.data import timeseries as ts
from lstm_zoo.errors import DataError, excerpt
from lstm_zoo.models.stack import accepts_lstm_options
from lstm_zoo.recipe import Option, Recipe, RecipeData, TrainConfig
from lstm_zoo.registry import register_model, register_recipe

#: Known formats: the columns that identify them and their forecasting task.
FORMATS: dict[str, dict[str, Any]] = {
    "beijing-hourly": {
        "time": ["year", "month", "day", "hour"],
        "features": ["DEWP", "TEMP", "PRES", "Iws", "Is", "Ir"],
        "targets": ["TEMP"],
        "lookback": 72,
        "horizon": 24,
        # chosen on the validation split (val MAE 2.153 vs 2.189 without the skip)
        "model_defaults": {"residual": True},
    },
    "seattle-daily": {
        "time": "date",
        "features": ["precipitation", "temp_max", "temp_min", "wind"],
        "targets": ["temp_max", "temp_min"],
        "lookback": 28,
        "horizon": 7,
        # chosen on the validation split (val MAE 2.637, vs 2.672 with no dropout and 2.795
        # with the last-value skip): noisy daily values, persistence is a weak anchor
        "model_defaults": {"residual": False, "dropout": 0.2},
    },
}
#: Seasonal period (in steps) of the seasonal-naive baseline, by the series' time step.
SEASONS = {"0 days 01:00:00": 24, "1 days 00:00:00": 7}
DEFAULT_LOOKBACK, DEFAULT_HORIZON = 24, 12  # for a user CSV without --lookback/--horizon


def embedded_csv() -> Path:
    """The Seattle weather CSV inside the installed ``vega_datasets`` package (no network)."""
    from vega_datasets import local_data

    path = Path(local_data.seattle_weather.filepath)
    if not path.is_file():
        raise DataError(f"the embedded Seattle weather file {path} is missing from vega_datasets")
    return path


@register_model(
    "weather-lstm",
    task="forecasting",
    description="LSTM forecaster: raw multivariate history -> raw multi-step forecast, with "
    "train-split normalisation inside the model",
    inputs="history float32 [batch, lookback, features], raw units",
    outputs="forecast float32 [batch, horizon] (one target) or [batch, horizon, targets]",
    recipe="weather",
)
@accepts_lstm_options
def weather_lstm(
    lookback: int = 72,
    n_features: int = 6,
    horizon: int = 24,
    n_targets: int = 1,
    input_mean: list[float] | None = None,
    input_variance: list[float] | None = None,
    target_mean: list[float] | None = None,
    target_variance: list[float] | None = None,
    squeeze_targets: bool = True,
    target_index: list[int] | None = None,
    residual: bool = True,
    units: int = 64,
    depth: int = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    head_dropout: float = 0.1,
    **lstm_options: Any,
) -> Any:
    """The weather forecaster (see :func:`lstm_zoo.models.forecaster.build_forecaster`).

    With ``residual`` and ``target_index`` (the targets' positions among the features, which
    the recipe derives from the data) the network forecasts the change from the last observed
    target values; without ``target_index`` there is no skip connection.
    """
    from lstm_zoo.models.forecaster import build_forecaster

    return build_forecaster(
        lookback=lookback, n_features=n_features, horizon=horizon, n_targets=n_targets,
        input_mean=input_mean, input_variance=input_variance, target_mean=target_mean,
        target_variance=target_variance, squeeze_targets=squeeze_targets and n_targets == 1,
        target_index=target_index if residual else None,
        units=units, depth=depth, dropout=dropout, recurrent_dropout=recurrent_dropout,
        head_dropout=head_dropout, name="weather_lstm", **lstm_options,
    )


def _split_names(value: str | list[str] | None) -> list[str] | None:
    if value is None or isinstance(value, list):
        return value
    names = [v.strip() for v in value.split(",") if v.strip()]
    return names or None


def detect_format(columns: list[str]) -> str | None:
    """The known format whose time and feature columns are all present, else None."""
    for name, spec in FORMATS.items():
        time = [spec["time"]] if isinstance(spec["time"], str) else spec["time"]
        if set(time) | set(spec["features"]) <= set(columns):
            return name
    return None


@register_recipe
class WeatherRecipe(Recipe):
    """Seattle daily (embedded) / Beijing hourly / any CSV weather forecasting."""

    name = "weather"
    task = "forecasting"
    description = "multi-step weather forecasting (Seattle daily embedded, Beijing hourly, any CSV)"
    default_model = "weather-lstm"
    data_provenance = (
        "Seattle daily weather 2012-2015 from the vega_datasets package (MIT licence; "
        "public-domain NOAA data); Beijing hourly weather 2010-2013: UCI Beijing PM2.5 Data "
        "(Liang et al., 2015), CC BY 4.0"
    )
    train_config = TrainConfig(
        epochs=40, batch_size=64, learning_rate=2e-3, clipnorm=1.0, patience=6,
        lr_schedule="plateau",
    )
    headline_metric = "mae"

    # ---- command line --------------------------------------------------------------------
    options = (
        Option("--time-col", "timestamp column of a custom CSV"),
        Option("--features", "comma-separated input columns of a custom CSV"),
        Option("--target", "column(s) to forecast, comma-separated"),
        Option("--lookback", "history length in steps (default: 28 daily, 72 hourly, 24 custom)",
               int),
        Option("--horizon", "steps to forecast (default: 7 daily, 24 hourly, 12 custom)", int),
        Option("--max-gap", "longest run of missing values to interpolate (default: 3)", int),
        Option("--season", "seasonal-naive period in steps (default: 24 for hourly, 7 for daily "
               "data)", int),
    )

    # ---- data -----------------------------------------------------------------------------
    def load(
        self,
        data: str | Path | None = None,
        *,
        seed: int = 0,
        time_col: str | None = None,
        features: str | list[str] | None = None,
        target: str | list[str] | None = None,
        lookback: int | None = None,
        horizon: int | None = None,
        max_gap: int | None = None,
        season: int | None = None,
        **unused: Any,
    ) -> RecipeData:
        """Read, validate, gap-fill, split and window the data (see the module docstring)."""
        if unused:
            raise TypeError(f"unknown weather option(s): {', '.join(sorted(unused))}")
        path = embedded_csv() if data is None else Path(data)
        source = f"{path} (embedded vega_datasets Seattle weather)" if data is None else str(path)
        header = list(ts.read_csv(path, nrows=1).columns)
        fmt = detect_format(header)
        spec = FORMATS.get(fmt or "", {})
        time = time_col or spec.get("time")
        inputs = _split_names(features) or spec.get("features")
        targets = _split_names(target) or spec.get("targets")
        if time is None or inputs is None or targets is None:
            raise DataError(
                f"{source}: not a known weather format (Seattle daily or Beijing hourly); for "
                f"another CSV pass --time-col, --features and --target (columns: "
                f"{', '.join(map(excerpt, header))})"
            )
        inputs = inputs + [t for t in targets if t not in inputs]  # baselines read the targets
        lookback = lookback or spec.get("lookback", DEFAULT_LOOKBACK)
        horizon = horizon or spec.get("horizon", DEFAULT_HORIZON)
        if lookback < 1 or horizon < 1:
            raise DataError(f"--lookback and --horizon must be >= 1, got {lookback}, {horizon}")

        series = ts.load_series_csv(path, time=time, columns=inputs, source=source,
                                    max_gap=3 if max_gap is None else max_gap)
        season = season or SEASONS.get(str(series.step))
        if season is not None and season > lookback:
            raise DataError(f"--season {season} is longer than --lookback {lookback}; the "
                            f"seasonal-naive baseline needs one full season of history")
        windows = ts.window_series(series.frame, inputs=inputs, targets=targets,
                                   lookback=lookback, horizon=horizon, source=source)

        def xy(w: ts.Windows) -> tuple[np.ndarray, np.ndarray]:
            return w.x, (w.y[..., 0] if len(targets) == 1 else w.y)

        model_args = {
            "lookback": lookback, "n_features": len(inputs), "horizon": horizon,
            "n_targets": len(targets), "squeeze_targets": len(targets) == 1,
            "input_mean": windows.input_scaler.mean.tolist(),
            "input_variance": windows.input_scaler.variance.tolist(),
            "target_mean": windows.target_scaler.mean.tolist(),
            "target_variance": windows.target_scaler.variance.tolist(),
            "target_index": windows.target_index,
        }
        info = {
            "source": source, "format": fmt or "custom", "rows": len(series.frame),
            "from": str(series.frame.index[0]), "to": str(series.frame.index[-1]),
            "step": str(series.step), "features": inputs, "targets": targets,
            "lookback": lookback, "horizon": horizon, "seasonal_period": season,
            "model_defaults": spec.get("model_defaults", {}),
            "interpolated_values": {k: v for k, v in series.interpolated.items() if v},
            "splits": windows.split_info(),
        }
        extras = {"windows": windows, "season": season, "step": series.step,
                  "model_defaults": spec.get("model_defaults", {})}
        return RecipeData(xy(windows.train), xy(windows.val), xy(windows.test),
                          model_args, info, extras)

    def client_inputs(self, table: Any, card: Mapping[str, Any]) -> tuple[dict[str, Any], dict]:
        """The history window after a table's last row, checked like training data (columns,
        numbers, a regular time grid, gaps up to 3 steps filled), and the forecast timestamps.

        ``table`` is a CSV path or a pandas DataFrame in the format the model was trained on
        (Beijing hourly or Seattle daily: found by its columns); ``card`` is the manifest.
        """
        info = card["data"]["info"]
        features, lookback = list(info["features"]), int(info["lookback"])
        with _table_as_csv(table) as (path, source):
            header = list(ts.read_csv(path, nrows=1).columns)
            spec = FORMATS.get(detect_format(header) or "", {})
            if not spec:
                raise DataError(f"{source}: the columns {', '.join(header)} are not those of a "
                                f"known weather format; this model needs a time column and "
                                f"{', '.join(features)}")
            series = ts.load_series_csv(path, time=spec["time"], columns=features, source=source)
        rows = len(series.frame)
        if rows < lookback:
            raise DataError(f"{source}: {rows} rows after gap filling, but one forecast needs "
                            f"the last {lookback} steps of {', '.join(features)}")
        window = series.frame[features].to_numpy(dtype="float32")[-lookback:]
        last = series.frame.index[-1]
        times = [last + series.step * (i + 1) for i in range(int(info["horizon"]))]
        return {"history": window[None]}, {"timestamps": times, "targets": info["targets"]}

    # ---- model and training ---------------------------------------------------------------
    def build_model(self, data: RecipeData, **hparams: Any) -> Any:
        """``weather-lstm`` with data-derived arguments, the format's validated defaults
        (``FORMATS[...]["model_defaults"]``) and then ``hparams`` (which win)."""
        from lstm_zoo.registry import get_model

        defaults = data.extras.get("model_defaults", {})
        return get_model(self.default_model, **{**data.model_args, **defaults, **hparams})

    def metrics(self) -> list[Any]:
        return ["mae"]

    # ---- evaluation -----------------------------------------------------------------------
    def predict(self, model: Any, data: RecipeData, split: str = "test") -> np.ndarray:
        """Model forecasts for a split as [windows, horizon, targets] in raw units."""
        x, _ = getattr(data, split)
        expected = tuple(model.inputs[0].shape[1:])
        if tuple(x.shape[1:]) != expected:
            raise DataError(
                f"the model expects history windows of shape {expected} but the data gives "
                f"{tuple(x.shape[1:])}; evaluate with the --data/--lookback/--features used "
                f"in training"
            )
        pred = np.asarray(model.predict(x, batch_size=512, verbose=0))
        w: ts.Windows = getattr(data.extras["windows"], split)
        return pred.reshape(w.y.shape)

    def baselines(self, data: RecipeData, split: str = "test") -> dict[str, np.ndarray]:
        """Persistence and (when the period is known) seasonal-naive forecasts for a split."""
        windows: ts.WindowedSeries = data.extras["windows"]
        w: ts.Windows = getattr(windows, split)
        horizon = w.y.shape[1]
        out = {"persistence": ts.persistence_forecast(w.x, windows.target_index, horizon)}
        if data.extras["season"]:
            out["seasonal_naive"] = ts.seasonal_naive_forecast(
                w.x, windows.target_index, horizon, data.extras["season"])
        return out

    def evaluate(self, model: Any, data: RecipeData) -> dict[str, Any]:
        """Test MAE/RMSE (overall and per horizon step) next to the naive baselines."""
        windows: ts.WindowedSeries = data.extras["windows"]
        result = ts.compare_to_baselines(windows.test.y, self.predict(model, data),
                                         self.baselines(data), windows.target_columns)
        val = ts.forecast_errors(windows.val.y, self.predict(model, data, "val"))
        return {
            "mae": result["model"]["mae"],
            "rmse": result["model"]["rmse"],
            **result,
            "val_mae": val["mae"],
            "targets": windows.target_columns,
            "horizon_steps": int(windows.test.y.shape[1]),
            "step": str(data.extras["step"]),
            "seasonal_period": data.extras["season"],
            "test_windows": len(windows.test),
            "units": "raw data units (°C for the weather data)",
        }

    def plot(self, model: Any, data: RecipeData, out_dir: Path) -> list[Path]:
        """``forecast_vs_actual.png`` (test windows) and ``error_by_horizon.png``."""
        from lstm_zoo.plots import figure, save_figure

        windows: ts.WindowedSeries = data.extras["windows"]
        test = windows.test
        pred, base = self.predict(model, data), self.baselines(data)
        names = windows.target_columns
        plt = figure()
        import matplotlib.dates as mdates

        picks = np.linspace(0, len(test) - 1, num=min(4, len(test))).astype(int)
        fig, axes = plt.subplots(len(picks), len(names), figsize=(6 * len(names), 2.6 * len(picks)),
                                 squeeze=False)
        for row, i in enumerate(picks):
            origin = int(test.origin[i])
            past = windows.index[origin - test.x.shape[1]:origin]
            future = windows.index[origin:origin + test.y.shape[1]]
            for col, name in enumerate(names):
                ax = axes[row][col]
                ax.plot(past, test.x[i, :, windows.target_index[col]], color="0.5", label="history")
                ax.plot(future, test.y[i, :, col], color="black", label="actual")
                ax.plot(future, pred[i, :, col], color="tab:blue", label="LSTM forecast")
                for b, (bname, values) in enumerate(base.items()):
                    ax.plot(future, values[i, :, col], linestyle="--", color=f"C{b + 1}",
                            label=bname.replace("_", " "))
                ax.set_title(f"{name}, forecast from {windows.index[origin]}", fontsize=9)
                ax.xaxis.set_major_locator(locator := mdates.AutoDateLocator(maxticks=5))
                ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
                ax.tick_params(labelsize=7)
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        written = [save_figure(fig, Path(out_dir) / "forecast_vs_actual.png")]

        fig, ax = plt.subplots(figsize=(7, 3.5))
        steps = np.arange(1, test.y.shape[1] + 1)
        ax.plot(steps, ts.forecast_errors(test.y, pred)["mae_per_horizon"], marker="o",
                label="LSTM")
        for bname, values in base.items():
            ax.plot(steps, ts.forecast_errors(test.y, values)["mae_per_horizon"], marker=".",
                    linestyle="--", label=bname.replace("_", " "))
        ax.set_xlabel(f"horizon step ({data.extras['step']})")
        ax.set_ylabel("test MAE")
        ax.set_title("Test MAE by forecast horizon")
        ax.legend()
        written.append(save_figure(fig, Path(out_dir) / "error_by_horizon.png"))
        return written

    # ---- sweeps ---------------------------------------------------------------------------
    def search_space(self, hp: Any) -> dict[str, Any]:
        """Units, depth, dropout, learning rate, batch size and the LSTM layer's switches."""
        units = hp.Int("units", 16, 128, step=16)
        return {
            "units": units,
            "depth": hp.Int("depth", 1, 3),
            "dropout": hp.Float("dropout", 0.0, 0.3, step=0.1),
            "head_dropout": hp.Float("head_dropout", 0.0, 0.3, step=0.1),
            "learning_rate": hp.Float("learning_rate", 3e-4, 1e-2, sampling="log"),
            "batch_size": hp.Choice("batch_size", [32, 64, 128]),
            "layer_norm": hp.Boolean("layer_norm"),
            "use_peepholes": hp.Boolean("use_peepholes"),
            # a projection only makes sense below the cell size: 0 = none, else units / 2
            "proj_units": units // 2 if hp.Boolean("projection") else None,
        }

    # ---- serving --------------------------------------------------------------------------
    def serving_contract(self, model: Any) -> dict[str, Any]:
        """``history`` float32 [batch, lookback, features] -> ``forecast`` float32
        [batch, horizon] (one target) or [batch, horizon, targets], both in raw units."""
        return {
            "inputs": {"history": ("float32", tuple(model.inputs[0].shape))},
            "outputs": {"forecast": ("float32", tuple(model.outputs[0].shape))},
        }


@contextlib.contextmanager
def _table_as_csv(table: Any) -> Iterator[tuple[Path, str]]:
    """``(path, source name)`` of a CSV path, or of a DataFrame written to a temporary CSV (so
    both go through the same checks as training data)."""
    if isinstance(table, str | Path):
        yield Path(table), str(table)
        return
    with tempfile.TemporaryDirectory(prefix="lstm_zoo_table_") as folder:
        path = Path(folder) / "table.csv"
        table.to_csv(path, index=False)
        yield path, "the DataFrame"
