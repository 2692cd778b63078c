"""The serving part of the recipe protocol: default serving_function and sample_inputs."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_zoo.recipe import Recipe, RecipeData


class _Recipe(Recipe):
    name = "serving-protocol-test"
    task = "forecasting"
    description = ""
    default_model = ""

    def load(self, data=None, *, seed=0, **options):
        raise NotImplementedError

    def evaluate(self, model, data):
        return {}

    def serving_contract(self, model):
        return {"inputs": {"history": ("float32", (None, 5, 3))},
                "outputs": {"forecast": ("float32", (None, 2))}}


X = np.arange(10 * 5 * 3, dtype="float32").reshape(10, 5, 3)
Y = np.zeros((10, 2), "float32")


def _splits():
    import tensorflow as tf

    return {
        "arrays": (X, Y),
        "dict": ({"history": X}, Y),
        "dataset": tf.data.Dataset.from_tensor_slices((X, Y)).batch(3),
        "dict dataset": tf.data.Dataset.from_tensor_slices(({"history": X}, Y)).batch(3),
    }


@pytest.mark.parametrize("kind", ["arrays", "dict", "dataset", "dict dataset"])
def test_default_sample_inputs(kind):
    data = RecipeData(train=None, val=None, test=_splits()[kind])
    samples = _Recipe().sample_inputs(None, data, n=4)
    assert list(samples) == ["history"]
    np.testing.assert_array_equal(np.asarray(samples["history"]), X[:4])


def test_default_serving_function_names_the_single_output():
    serve = _Recipe().serving_function(lambda x, training: x[:, -1, :2] * 2)
    out = serve({"history": X[:3]})
    assert list(out) == ["forecast"]
    np.testing.assert_array_equal(out["forecast"], X[:3, -1, :2] * 2)


def test_no_contract_means_not_exportable():
    class NoContract(_Recipe):
        def serving_contract(self, model):
            return None

    with pytest.raises(NotImplementedError, match="has no serving contract"):
        NoContract().serving_function(None)
