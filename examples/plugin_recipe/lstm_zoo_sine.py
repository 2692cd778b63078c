"""An lstm_zoo recipe in one file: forecast the next steps of a noisy sine wave.

Install it beside lstm_zoo (``pip install examples/plugin_recipe``) and every command knows it:
``lstm-zoo list``, ``lstm-zoo train sine --epochs 3``, ``lstm-zoo tune sine``,
``lstm-zoo export sine --model runs/sine``.  The data is generated (seeded), so nothing is
downloaded; the model is the shared forecaster built from ``lstm_zoo.layers.LSTM``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lstm_zoo.errors import DataError
from lstm_zoo.models.forecaster import build_forecaster
from lstm_zoo.models.stack import accepts_lstm_options
from lstm_zoo.recipe import Option, Recipe, RecipeData, TrainConfig
from lstm_zoo.registry import register_model, register_recipe


@register_model("sine-lstm", task="forecasting", recipe="sine",
                description="next steps of a noisy sine wave from its recent history",
                inputs="history float32 [batch, lookback, 1]",
                outputs="forecast float32 [batch, horizon]")
@accepts_lstm_options
def build_sine_lstm(lookback: int = 32, horizon: int = 8, units: int = 16, depth: int = 1,
                    **lstm_options: Any) -> Any:
    """The shared forecaster on one feature; every LSTM variant option passes through."""
    return build_forecaster(lookback=lookback, n_features=1, horizon=horizon, units=units,
                            depth=depth, squeeze_targets=True, name="sine_lstm", **lstm_options)


@register_recipe
class SineRecipe(Recipe):
    """A noisy sine wave, split in time 70/15/15, scored against persistence."""

    name = "sine"
    task = "forecasting"
    description = "next steps of a generated noisy sine wave, next to persistence"
    default_model = "sine-lstm"
    train_config = TrainConfig(epochs=10, batch_size=32, patience=3)
    options = (
        Option("--points", "length of the generated series"),
        Option("--noise", "standard deviation of the added noise"),
    )

    def load(self, data: str | Path | None = None, *, seed: int = 0, points: int = 2000,
             noise: float = 0.1, lookback: int = 32, horizon: int = 8) -> RecipeData:
        """Windows of the generated series (``data`` must be None: the series is generated)."""
        if data is not None:
            raise DataError(f"the sine recipe generates its data; got --data {data}")
        if points < 3 * (lookback + horizon):
            raise DataError(f"--points must be at least {3 * (lookback + horizon)}, got {points}")
        rng = np.random.default_rng(seed)
        t = np.arange(points, dtype="float32")
        series = np.sin(2 * np.pi * t / 50) + noise * rng.normal(size=points).astype("float32")
        starts = np.arange(points - lookback - horizon + 1)
        x = np.stack([series[s:s + lookback] for s in starts])[..., None]
        y = np.stack([series[s + lookback:s + lookback + horizon] for s in starts])
        cut1, cut2 = int(len(starts) * 0.7), int(len(starts) * 0.85)
        return RecipeData(train=(x[:cut1], y[:cut1]), val=(x[cut1:cut2], y[cut1:cut2]),
                          test=(x[cut2:], y[cut2:]),
                          model_args={"lookback": lookback, "horizon": horizon},
                          info={"source": f"generated sine, {points} points, noise {noise}"})

    def evaluate(self, model: Any, data: RecipeData) -> dict[str, Any]:
        """Test MAE of the model and of persistence (the last observed value)."""
        x, y = data.test
        predicted = np.asarray(model.predict(x, verbose=0))
        persistence = np.repeat(x[:, -1, :], y.shape[1], axis=1)
        return {"mae": float(np.abs(predicted - y).mean()),
                "persistence_mae": float(np.abs(persistence - y).mean())}

    def serving_contract(self, model: Any) -> dict[str, Any]:
        lookback = int(model.inputs[0].shape[1])
        horizon = int(model.outputs[0].shape[1])
        return {"inputs": {"history": ("float32", (None, lookback, 1))},
                "outputs": {"forecast": ("float32", (None, horizon))}}
