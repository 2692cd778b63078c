"""The multi-worker loss (``lstm_zoo.training.distributed.losses``) equals the Keras compiled loss on a
batch — per-output losses with the recipes' loss weights (finance), sample weights (fraud),
token-averaged (translation) and per-utterance CTC (speech) losses — and a batch split between
two "workers", each normalised by the all-reduced counts, gives the global batch's loss and
gradient."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_zoo.recipe import TrainConfig
from lstm_zoo.training.distributed.losses import (
    LossTerm,
    combine,
    compiled_loss_terms,
    loss_sums,
)


def _distributed_loss(terms, y, pred, w=None):
    sums = loss_sums(terms, y, pred, w)
    return combine(terms, sums, [count for _, count in sums])


def _two_worker_loss(terms, model, x, y, w, cut):
    """Each half normalised by the summed (all-reduced) counts, as in the training step."""
    halves = [slice(0, cut), slice(cut, None)]
    part = lambda v, s: None if v is None else tf.nest.map_structure(lambda a: a[s], v)  # noqa: E731
    with tf.GradientTape(persistent=True) as tape:
        sums = [loss_sums(terms, part(y, s), model(part(x, s)), part(w, s)) for s in halves]
        totals = [None if sums[0][k][1] is None else sums[0][k][1] + sums[1][k][1]
                  for k in range(len(terms))]
        losses = [combine(terms, s, totals) for s in sums]
    grads = [tape.gradient(loss, model.trainable_variables) for loss in losses]
    return sum(float(v) for v in losses), [a + b for a, b in zip(*grads)]


def _keras_loss_and_grads(model, x, y, w=None):
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x, y, model(x), w)
    return float(loss), tape.gradient(loss, model.trainable_variables)


def test_finance_two_outputs_with_the_recipes_loss_weights():
    from lstm_zoo.recipes.finance import RETURN_LOSS_WEIGHT, FinanceRecipe

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(4, activation="tanh")(inputs)
    model = keras.Model(inputs, {  # [batch] outputs, as finance-lstm's
        "log_return": keras.layers.Reshape(())(keras.layers.Dense(1, name="r")(hidden)),
        "volatility": keras.layers.Reshape(())(keras.layers.Dense(1, activation="softplus",
                                                                  name="v")(hidden))})
    FinanceRecipe().compile(model, TrainConfig())
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 6)).astype("float32")
    y = {"log_return": rng.normal(scale=0.01, size=10).astype("float32"),
         "volatility": rng.uniform(0.005, 0.03, size=10).astype("float32")}

    terms = compiled_loss_terms(model, y, model(x))
    assert {t.path: t.weight for t in terms} == {("log_return",): RETURN_LOSS_WEIGHT,
                                                 ("volatility",): 1.0}
    expected, expected_grads = _keras_loss_and_grads(model, x, y)
    assert float(_distributed_loss(terms, y, model(x))) == pytest.approx(expected, rel=1e-5)
    loss, grads = _two_worker_loss(terms, model, x, y, None, cut=3)  # 3 + 7 examples
    assert loss == pytest.approx(expected, rel=1e-5)
    for a, b in zip(grads, expected_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)


def _fraud_model(rank1: bool):
    from lstm_zoo.recipes.fraud import FraudRecipe

    keras.utils.set_random_seed(0)
    layers = [keras.Input((3, 2)), keras.layers.Flatten(),
              keras.layers.Dense(1, activation="sigmoid")]
    model = keras.Sequential(layers + ([keras.layers.Reshape(())] if rank1 else []))
    FraudRecipe().compile(model, TrainConfig())
    return model


def test_fraud_sample_weights_weight_each_example_and_divide_by_the_batch_size():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, 3, 2)).astype("float32")
    y = (rng.random(12) < 0.3).astype("float32")
    w = np.where(y == 1, 1.0, 20.0).astype("float32")  # legit sequences weighted back
    model = _fraud_model(rank1=False)  # [batch, 1] output: Keras weights every example
    terms = compiled_loss_terms(model, y, model(x), w)
    assert len(terms) == 1 and terms[0].weight is None
    expected, expected_grads = _keras_loss_and_grads(model, x, y, w)
    assert float(_distributed_loss(terms, y, model(x), w)) == pytest.approx(expected, rel=1e-5)
    numerator, count = loss_sums(terms, y, model(x), w)[0]
    assert float(count) == 12.0  # Keras divides by the batch size, not by w.sum()
    loss, grads = _two_worker_loss(terms, model, x, y, w, cut=5)
    assert loss == pytest.approx(expected, rel=1e-5)
    for a, b in zip(grads, expected_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6)

    # fraud-lstm outputs [batch]; the recipe's per-example loss weights every example, in
    # Keras' own compiled loss and in the distributed one alike
    rank1 = _fraud_model(rank1=True)
    rank1_terms = compiled_loss_terms(rank1, y, rank1(x), w)
    assert not rank1_terms[0].expand_rank1
    assert float(_distributed_loss(rank1_terms, y, rank1(x), w)) == pytest.approx(expected,
                                                                                   rel=1e-5)
    assert _keras_loss_and_grads(rank1, x, y, w)[0] == pytest.approx(expected, rel=1e-5)

    # a plain "binary_crossentropy" on a [batch] output averages the batch axis inside the
    # loss (Keras then gives mean(bce) * mean(w)); the distributed loss computes it on [B, 1]
    plain = _fraud_model(rank1=True)
    plain.compile(optimizer="adam", loss="binary_crossentropy")
    plain_terms = compiled_loss_terms(plain, y, plain(x), w)
    assert plain_terms[0].expand_rank1
    assert float(_distributed_loss(plain_terms, y, plain(x), w)) == pytest.approx(expected,
                                                                                   rel=1e-5)
    assert float(plain.compute_loss(x, y, plain(x))) == pytest.approx(
        float(_distributed_loss(plain_terms, y, plain(x))), rel=1e-5)  # unweighted: equal


def test_token_averaged_translation_loss_is_exact_over_workers():
    from lstm_zoo.models.seq2seq import PAD_ID, MaskedSequenceLoss

    loss = MaskedSequenceLoss(label_smoothing=0.1)
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(4, 6, 9)).astype("float32")
    y = rng.integers(4, 9, size=(4, 6))
    y[0, 2:] = PAD_ID  # very different token counts per example
    y[1, 3:] = PAD_ID
    np.put_along_axis(logits[:2], y[:2, :, None], 6.0, axis=-1)  # worker 0 predicts well
    term = [LossTerm((), loss, None)]
    whole = float(loss(y, logits))
    assert float(_distributed_loss(term, y, logits)) == pytest.approx(whole, rel=1e-6)
    # two workers with 2 + 3 and 6 + 6 tokens: the global token mean, not the mean of means
    (n0, c0), = loss_sums(term, y[:2], logits[:2])
    (n1, c1), = loss_sums(term, y[2:], logits[2:])
    assert float(c0 + c1) == float((y != PAD_ID).sum())
    assert float(n0 / (c0 + c1) + n1 / (c0 + c1)) == pytest.approx(whole, rel=1e-6)
    mean_of_means = (float(loss(y[:2], logits[:2])) + float(loss(y[2:], logits[2:]))) / 2
    assert abs(mean_of_means - whole) > 1e-3  # what a naive split would train on


def test_ctc_loss_per_utterance():
    from lstm_zoo.models.ctc import CTCLoss

    rng = np.random.default_rng(4)
    logits = rng.normal(size=(3, 12, 11)).astype("float32")
    labels = np.array([[1, 2, 3], [4, -1, -1], [5, 6, -1]])
    term = [LossTerm((), CTCLoss(), None)]
    expected = float(CTCLoss()(labels, logits))
    assert float(_distributed_loss(term, labels, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(loss_sums(term, labels, logits)[0][1]) == 3.0  # one value per utterance
