"""``lstm_zoo.training.distributed.input``: how a recipe's own tf.data pipeline reaches the workers."""

from __future__ import annotations

import types

import numpy as np


class _CountingRecipe:
    """A recipe whose ``batches`` builds a (cheap) pipeline and counts the builds."""

    name = "counting"

    def __init__(self):
        self.built: list[tuple[str, int]] = []

    def batches(self, data, split, batch_size):
        import tensorflow as tf

        self.built.append((split, batch_size))
        x = np.arange(12, dtype="float32").reshape(12, 1)
        return tf.data.Dataset.from_tensor_slices((x, x)).batch(batch_size)


def test_recipe_pipeline_is_built_once_and_is_what_the_workers_read():
    import tensorflow as tf

    from lstm_zoo.training.distributed.input import training_input

    recipe = _CountingRecipe()
    loaded = types.SimpleNamespace(train=None, val=None, info={})
    config = types.SimpleNamespace(batch_size=4, steps_per_epoch=2)
    strategy = tf.distribute.get_strategy()
    kind, iterator, steps, _ = training_input(recipe, loaded, strategy, config, 4, seed=0)
    first = next(iterator)
    assert kind == "recipe tf.data pipeline" and steps == 2
    np.testing.assert_array_equal(np.asarray(first[0]).ravel(), [0, 1, 2, 3])
    # the probe that tells a tf.data recipe apart is the pipeline itself: a speech
    # pipeline holds every training waveform, which must not be materialised twice
    assert recipe.built == [("train", 4)]
