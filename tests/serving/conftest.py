"""A tiny recipe defined here (not registered by default) and one shared verified export of it.

The tiny model is a real ``lstm_zoo.layers.LSTM`` forecaster with in-graph pre-processing
(normalisation constants) and two named outputs, so the export machinery is tested end to end
without waiting for any real recipe's data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lstm_zoo.recipe import Recipe, RecipeData

FEATURES = 3
HORIZON = 2


def build_tiny_model(units: int = 4, time: int | None = None) -> Any:
    import keras

    from lstm_zoo.layers import LSTM

    keras.utils.set_random_seed(1)
    inputs = keras.Input((time, FEATURES), name="history")
    scaled = keras.layers.Rescaling(0.5, offset=-0.25)(inputs)  # normalisation as a constant
    hidden = LSTM(units, name="lstm")(scaled)
    outputs = keras.layers.Dense(HORIZON, name="forecast")(hidden)
    return keras.Model(inputs, outputs, name="tiny_forecaster")


class TinyRecipe(Recipe):
    """Forecast the last step's first two features; any sequence length."""

    name = "export-test-tiny"
    task = "forecasting"
    description = "tiny recipe for export tests"
    default_model = "unused"

    def load(self, data: Any = None, *, seed: int = 0, **options: Any) -> RecipeData:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(16, 5, FEATURES)).astype("float32")
        y = x[:, -1, :HORIZON]
        return RecipeData((x[:8], y[:8]), (x[8:12], y[8:12]), (x[12:], y[12:]))

    def build_model(self, data: RecipeData, **hparams: Any) -> Any:
        return build_tiny_model(**hparams)

    def evaluate(self, model: Any, data: RecipeData) -> dict[str, Any]:
        x, y = data.test
        return {"mse": float(np.mean((model.predict(x, verbose=0) - y) ** 2))}

    def serving_contract(self, model: Any) -> dict[str, Any]:
        return {
            "inputs": {"history": ("float32", (None, None, FEATURES))},
            "outputs": {"forecast": ("float32", (None, HORIZON)), "spread": ("float32", (None,))},
        }

    def serving_function(self, model: Any) -> Any:
        import tensorflow as tf

        def serve(inputs: dict[str, Any]) -> dict[str, Any]:
            forecast = model(inputs["history"], training=False)
            return {"forecast": forecast, "spread": tf.reduce_max(forecast, -1)
                    - tf.reduce_min(forecast, -1)}

        return serve


class NoContractRecipe(TinyRecipe):
    name = "export-test-no-contract"

    def serving_contract(self, model: Any) -> None:
        return None


@pytest.fixture(scope="session")
def tiny_recipe() -> TinyRecipe:
    return TinyRecipe()


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    return build_tiny_model()


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_recipe, tiny_model):
    """One verified export of the tiny model: (ExportResult, base_dir)."""
    from lstm_zoo.serving.savedmodel import export

    base = tmp_path_factory.mktemp("serving")
    result = export(tiny_model, base, recipe=tiny_recipe, data=tiny_recipe.load(), verify=True)
    return result, base


@pytest.fixture
def registered_tiny():
    """Register the tiny recipe under its name for CLI tests; removed afterwards."""
    from lstm_zoo import registry

    registry.load_plugins()
    registry.register_recipe(TinyRecipe)
    yield TinyRecipe.name
    with registry._lock:
        registry._recipes.pop(TinyRecipe.name, None)


@pytest.fixture(scope="session")
def no_contract_recipe() -> NoContractRecipe:
    return NoContractRecipe()
