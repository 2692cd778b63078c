"""Ensembles of trained models: the combined outputs, safe-mode round trips, bad members."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_zoo.layers import LSTM
from lstm_zoo.models.ensemble import build_ensemble, find_layer, members


def _member(seed: int, units: int = 3, steps: int = 4) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((steps, 2), name="x")
    hidden = LSTM(units, return_sequences=True, name="lstm")(inputs)
    return keras.Model(inputs, keras.layers.Dense(5, name="logits")(hidden), name="member")


def test_log_probs_and_mean_combine_as_documented(tmp_path):
    models = [_member(seed) for seed in range(3)]
    x = np.random.default_rng(0).normal(size=(2, 4, 2)).astype("float32")
    outs = [np.asarray(m(x)) for m in models]
    log_probs = build_ensemble(models, "log_probs")
    expected = np.mean([np.asarray(tf.nn.log_softmax(o)) for o in outs], axis=0)
    np.testing.assert_allclose(np.asarray(log_probs(x)), expected, atol=1e-6)
    mean = build_ensemble(models, "mean")
    np.testing.assert_allclose(np.asarray(mean(x)), np.mean(outs, axis=0), atol=1e-6)
    stacked = build_ensemble(models, "stack")
    np.testing.assert_allclose(np.asarray(stacked(x)), np.stack(outs, axis=1), atol=1e-6)
    assert [m.name for m in members(log_probs)] == ["member_0", "member_1", "member_2"]
    assert find_layer(log_probs, "lstm").name == "lstm"  # reaches into the first member
    path = tmp_path / "ensemble.keras"
    log_probs.save(path)
    again = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(again(x)), expected, atol=1e-6)


def test_members_are_copied_not_shared():
    models = [_member(0), _member(1)]
    ensemble = build_ensemble(models, "mean")
    before = np.asarray(ensemble(np.ones((1, 4, 2), "float32")))
    models[0].get_layer("logits").kernel.assign(np.zeros((3, 5), "float32"))
    np.testing.assert_allclose(np.asarray(ensemble(np.ones((1, 4, 2), "float32"))), before)


def test_bad_members_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="at least 2"):
        build_ensemble([_member(0)], "mean")
    with pytest.raises(ValueError, match="unknown combine"):
        build_ensemble([_member(0), _member(1)], "vote")
    with pytest.raises(ValueError, match="different inputs"):
        build_ensemble([_member(0), _member(1, steps=5)], "mean")

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="not a functional Keras model"):
        build_ensemble([_member(0), Subclassed()], "mean")
