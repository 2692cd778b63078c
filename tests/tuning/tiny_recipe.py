"""A tiny recipe for sweep tests (sum of a short random sequence), and a CLI entry for
subprocess tests: ``python tiny_recipe.py tune tiny-sweep ...`` registers it, then runs
``lstm_zoo.cli.main`` on the arguments, exactly as ``lstm-zoo`` would.

``TINY_EPOCH_SLEEP`` (seconds) slows every epoch so a test can kill a process mid-trial;
``TINY_MODEL=dense`` swaps the LSTM for a Dense layer (multi-process tests: a third of the
graph-tracing time per trial on a busy CPU; the sweep machinery does not care which model).
"""

from __future__ import annotations

import os
import sys
import time

import keras
import numpy as np

from lstm_zoo import registry
from lstm_zoo.recipe import Recipe, RecipeData, TrainConfig

NAME = "tiny-sweep"


class _SleepPerEpoch(keras.callbacks.Callback):
    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(self.seconds)


class Interrupted(KeyboardInterrupt):
    """Raised by TinyRecipe.fit to simulate Ctrl-C in the middle of a sweep."""


class TinyRecipe(Recipe):
    name = NAME
    task = "testing"
    description = "tiny sweep test recipe"
    default_model = "tiny-sweep-model"
    train_config = TrainConfig(epochs=2, batch_size=16, patience=5, lr_schedule="constant")

    def __init__(self):
        self.fit_calls = 0
        self.interrupt_on_fit_call: int | None = None
        self.space = "default"

    def load(self, data=None, *, seed=0, **options):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(48, 5, 1)).astype("float32")
        y = x.sum(axis=(1, 2))[:, None].astype("float32")
        return RecipeData(train=(x[:32], y[:32]), val=(x[32:40], y[32:40]),
                          test=(x[40:], y[40:]), info={"rows": 48})

    def build_model(self, data, units: int = 4):
        from lstm_zoo.layers import LSTM

        inputs = keras.Input((5, 1))
        if os.environ.get("TINY_MODEL") == "dense":
            hidden = keras.layers.Dense(units)(keras.layers.Flatten()(inputs))
        else:
            hidden = LSTM(units)(inputs)
        outputs = keras.layers.Dense(1)(hidden)
        return keras.Model(inputs, outputs)

    def search_space(self, hp):
        if self.space == "empty":
            return {}
        return {
            "units": hp.Int("units", 2, 8, step=2),
            "learning_rate": hp.Choice("learning_rate", [1e-3, 3e-3, 1e-2, 3e-2]),
            "batch_size": hp.Choice("batch_size", [8, 16]),
        }

    def fit(self, model, data, config, callbacks, verbose="auto"):
        self.fit_calls += 1
        if self.interrupt_on_fit_call == self.fit_calls:
            raise Interrupted("simulated Ctrl-C")
        sleep = float(os.environ.get("TINY_EPOCH_SLEEP", "0"))
        if sleep:
            callbacks = [*callbacks, _SleepPerEpoch(sleep)]
        return super().fit(model, data, config, callbacks, verbose=0)

    def evaluate(self, model, data):
        x, y = data.test
        mae = float(np.abs(model.predict(x, verbose=0) - y).mean())
        return {"mae": mae, "baseline_mae": float(np.abs(y - y.mean()).mean())}


def register() -> None:
    registry.load_plugins()
    if NAME not in registry._recipes:
        registry.register_recipe(TinyRecipe)


if __name__ == "__main__":
    register()
    from lstm_zoo import cli

    sys.exit(cli.main(sys.argv[1:]))
