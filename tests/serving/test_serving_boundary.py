"""What a client sending bad requests gets from the exported signature (TensorFlow's errors),
and the documented behaviour for long sequences."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def signature(tiny_export):
    import tensorflow as tf

    return tf.saved_model.load(str(tiny_export[0].path)).signatures["serving_default"]


def test_wrong_dtype_is_rejected(signature):
    import tensorflow as tf

    errors = (TypeError, ValueError, tf.errors.InvalidArgumentError)
    with pytest.raises(errors, match="int32|dtype"):
        signature(history=tf.zeros([2, 5, 3], tf.int32))


def test_wrong_rank_or_feature_count_is_rejected(signature):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[2,5\] is not compatible"):
        signature(history=tf.zeros([2, 5], tf.float32))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"\[2,5,4\] is not compatible with expected shape \[\?,\?,3\]"):
        signature(history=tf.zeros([2, 5, 4], tf.float32))


def test_wrong_key_is_rejected(signature):
    import tensorflow as tf

    with pytest.raises(TypeError, match="history|argument"):
        signature(prices=tf.zeros([2, 5, 3]))


def test_long_sequences_run_in_full(signature, tiny_model):
    """A variable time dimension has no cap: a 400-step sequence runs (time linear in length)
    and matches the Keras model; recipes with a fixed window reject other lengths."""
    import tensorflow as tf

    x = np.random.default_rng(3).normal(size=(1, 400, 3)).astype("float32")
    got = signature(history=tf.constant(x))["forecast"].numpy()
    np.testing.assert_allclose(got, tiny_model(x).numpy(), atol=1e-4)


def test_fixed_window_rejects_other_lengths(tmp_path, tiny_recipe, monkeypatch):
    import tensorflow as tf

    from lstm_zoo.serving.savedmodel import export

    fixed = tiny_recipe.build_model(tiny_recipe.load(), time=5)
    monkeypatch.setattr(type(tiny_recipe), "serving_contract", lambda self, model: {
        "inputs": {"history": ("float32", (None, 5, 3))},
        "outputs": {"forecast": ("float32", (None, 2)), "spread": ("float32", (None,))}})
    result = export(fixed, tmp_path, recipe=tiny_recipe, warmup=False)
    fn = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    assert fn(history=tf.zeros([2, 5, 3]))["forecast"].shape == (2, 2)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"\[2,6,3\] is not compatible with expected shape \[\?,5,3\]"):
        fn(history=tf.zeros([2, 6, 3]))
