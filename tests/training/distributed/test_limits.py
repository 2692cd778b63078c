"""What ``lstm-zoo train --distributed`` cannot train is refused with a clear error, never
silently trained wrong: splits of unknown kinds, datasets it cannot re-batch, losses that do
not reduce, sample weights on a loss that counts its own tokens."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from lstm_zoo.training.distributed.config import DistributedConfigError
from lstm_zoo.training.distributed.input import _arrays, unpack
from lstm_zoo.training.distributed.losses import (
    LossTerm,
    compiled_loss_terms,
    loss_sums,
)


def test_in_memory_splits_with_and_without_sample_weights_are_accepted():
    x, y, w = np.zeros((4, 3)), np.zeros(4), np.ones(4)
    assert _arrays((x, y), "train")[0] is x
    assert _arrays((x, y, w), "train")[2] is w
    assert unpack((x, y))[2] is None and unpack((x, y, w))[2] is w


def test_unknown_split_kinds_are_refused():
    import tensorflow as tf

    with pytest.raises(DistributedConfigError, match="Recipe.batches"):
        _arrays(tf.data.Dataset.range(3), "train")
    with pytest.raises(DistributedConfigError, match="4-tuple"):
        _arrays((1, 2, 3, 4), "train")
    with pytest.raises(DistributedConfigError, match="split is a list"):
        _arrays([np.zeros(3)], "validation")
    with pytest.raises(DistributedConfigError, match="got dict"):
        unpack({"x": 1})


def test_losses_that_cannot_be_split_are_refused():
    from lstm_zoo.models.seq2seq import MaskedSequenceLoss

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(DistributedConfigError, match="has none"):
        compiled_loss_terms(model, np.zeros(2), np.zeros((2, 1)))
    model.compile(loss=keras.losses.MeanSquaredError(reduction="none"))
    y, pred = np.zeros((2, 1), "float32"), np.zeros((2, 1), "float32")
    with pytest.raises(DistributedConfigError, match="reduction='none'"):
        compiled_loss_terms(model, y, pred)
    term = [LossTerm((), MaskedSequenceLoss(), None)]
    with pytest.raises(DistributedConfigError, match="no sample weights"):
        loss_sums(term, np.ones((2, 3)), np.zeros((2, 3, 5), "float32"), np.ones(2))


def test_targets_must_match_the_outputs_the_loss_reads():
    inputs = keras.Input((2,))
    model = keras.Model(inputs, {"a": keras.layers.Dense(1, name="a")(inputs),
                                 "b": keras.layers.Dense(1, name="b")(inputs)})
    model.compile(loss={"a": "mse", "b": "mae"})
    x = np.zeros((2, 2), "float32")
    y = {"a": np.zeros((2, 1), "float32"), "b": np.zeros((2, 1), "float32")}
    terms = compiled_loss_terms(model, y, model(x))
    with pytest.raises(DistributedConfigError, match=r"targets\['b'\]"):
        loss_sums(terms, {"a": y["a"]}, model(x))


def test_a_loss_averaging_inside_call_is_warned_about_and_kept_as_one_value():
    import tensorflow as tf

    class BatchMeanLoss(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return tf.reduce_mean(tf.abs(y_true - y_pred))

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    model.compile(loss=BatchMeanLoss(name="batch_mean"))
    x = np.arange(8, dtype="float32").reshape(4, 2)
    y = np.ones((4, 3), "float32")
    terms = compiled_loss_terms(model, y, model(x))
    with pytest.warns(UserWarning, match="batch_mean.*one value per batch"):
        (numerator, count), = loss_sums(terms, y, model(x))
    assert float(count) == 1.0  # one value: the replicas' batch means are averaged
    assert float(numerator) == pytest.approx(float(model.compute_loss(x, y, model(x))))
