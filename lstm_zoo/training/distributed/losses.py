"""A compiled model's loss split into sums and counts, so several workers can add them up.

Keras's compiled loss on one batch (``model.compile(loss=..., loss_weights=...)``) is

    total = sum_k  w_k * L_k,        L_k = sum_i (l_ki * s_i) / n_k

over the model's outputs ``k``: ``w_k`` the loss weight (1 when none is given), ``l_ki`` the
unreduced values of output ``k``'s loss (one per example, or one per element when the loss
returns ``[B, T]``), ``s_i`` the sample weight (1 without), and ``n_k`` the normaliser of the
loss's reduction: the number of values for ``"sum_over_batch_size"`` (Keras's default — the
batch size, *not* the sum of the sample weights), the sum of the sample weights for
``"mean_with_sample_weight"``, none for ``"sum"``.  A Keras mask on the predictions zeroes
masked values and counts only the unmasked ones.

:func:`loss_sums` returns, per output, the numerator ``sum_i l_ki * s_i`` and ``n_k`` of one
replica's batch.  The multi-worker loop (:mod:`lstm_zoo.training.distributed.loop`) all-reduces (sums) the
``n_k`` over replicas and divides each replica's numerators by the *global* ``n_k``; the
optimizer sums the replicas' gradients, so N workers compute exactly the gradient of the
compiled loss on the global batch (all replicas' examples together), even when replicas hold
different numbers of examples or tokens.

Outputs of shape ``[B]`` (finance's, fraud's): Keras's function losses (``"mse"``,
``"binary_crossentropy"`` ...) average the last axis, which is then the batch axis, so they
return one value per batch, and Keras applies sample weights to that value as ``mean(loss) *
mean(weights)``.  Such terms are computed on ``[B, 1]`` instead (checked on the first batch to
give the same unweighted mean): one value per example, each with its own sample weight — what
Keras computes for ``[B, 1]`` outputs, and what the weights mean.

A loss that averages inside ``call`` (returns a scalar) cannot be split that way unless it
offers ``sum_and_count(y_true, y_pred) -> (sum, count)`` with ``call == sum / max(count, 1)``
(:class:`lstm_zoo.models.seq2seq.MaskedSequenceLoss` does: the token-mean cross-entropy becomes
the exact mean over every worker's non-padding tokens).  Without it the scalar counts as one
value, so the global loss is the plain mean of the replicas' batch means (an approximation,
warned about once).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

from lstm_zoo.training.distributed.config import DistributedConfigError

MEAN_REDUCTIONS = ("sum_over_batch_size", "mean")


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One output's loss as Keras compiled it: where its targets and predictions sit in the
    (possibly nested) ``y`` structures, the ``keras.losses.Loss`` object and its loss weight."""

    path: tuple[Any, ...]
    loss: Any
    weight: float | None
    expand_rank1: bool = False  # call the loss on [B, 1] (see compiled_loss_terms)


def compiled_loss_terms(model: Any, y_true: Any, y_pred: Any,
                        sample_weight: Any = None) -> list[LossTerm]:
    """The per-output losses and loss weights of a compiled Keras 3 ``model``.

    They come from the model's own compiled loss (Keras 3.15 ``CompileLoss``: string and
    function losses already wrapped as ``Loss`` objects, dict losses and ``loss_weights``
    matched to the outputs), built on one batch (``y_true``/``y_pred``) if not built yet, so
    the terms are exactly those ``model.fit`` would use.  Call it eagerly, inside the strategy
    scope, before tracing the training step.
    """
    compile_loss = getattr(model, "_compile_loss", None)
    if compile_loss is None:
        raise DistributedConfigError(
            "--distributed needs the recipe's compile() to give the model a loss "
            "(model.compile(loss=...)); this model has none")
    if not compile_loss.built:
        compile_loss(y_true, y_pred, sample_weight)
    flat = getattr(compile_loss, "_flat_losses", None)
    if flat is None:
        raise DistributedConfigError(
            "cannot read the compiled losses of this Keras version (CompileLoss._flat_losses "
            "is missing; written for Keras 3.15); train without --distributed")
    terms = []
    for path, loss, weight, *_ in flat:
        reduction = getattr(loss, "reduction", "sum_over_batch_size")
        if reduction in (None, "none"):
            raise DistributedConfigError(
                f"loss {loss.name!r} has reduction={reduction!r}; a training loss must "
                "reduce to a scalar")
        term = LossTerm(tuple(path), loss, weight)
        y_t, y_p = _resolve(term.path, y_true, "targets"), _resolve(term.path, y_pred, "predictions")
        terms.append(dataclasses.replace(term, expand_rank1=_averages_batch_axis(loss, y_t, y_p)))
    return terms


def _averages_batch_axis(loss: Any, y_true: Any, y_pred: Any) -> bool:
    """True when a loss on rank-1 predictions (one value per example, ``[B]``) returns one
    value per batch because it averages the last axis, which is the batch axis (``"mse"``,
    ``"binary_crossentropy"`` ...), and its values on ``[B, 1]`` are per example with that
    mean — checked on this batch.  Such a term is computed on ``[B, 1]`` so examples (and
    their sample weights) add up across workers.  Keras itself keeps the batch mean, which
    makes sample weights act as ``mean(loss) * mean(weights)`` on ``[B]`` outputs; the
    multi-worker loop weights each example, as Keras does for ``[B, 1]`` outputs.
    """
    import numpy as np
    from keras import ops

    y_true = ops.convert_to_tensor(y_true, dtype=loss.dtype)
    y_pred = ops.convert_to_tensor(y_pred, dtype=loss.dtype)
    if len(y_pred.shape) != 1 or len(y_true.shape) != 1 or hasattr(loss, "sum_and_count"):
        return False
    whole = np.asarray(loss.call(y_true, y_pred))
    if whole.ndim != 0:
        return False
    per_example = np.asarray(loss.call(y_true[:, None], y_pred[:, None]))
    return (per_example.shape == tuple(y_pred.shape)
            and bool(np.allclose(per_example.mean(), whole, rtol=1e-5, atol=1e-7)))


def loss_sums(terms: list[LossTerm], y_true: Any, y_pred: Any,
              sample_weight: Any = None) -> list[tuple[Any, Any]]:
    """Per term, ``(numerator, normaliser)`` of one batch (see the module docstring).

    The normaliser is ``None`` for ``reduction="sum"`` (nothing to divide by).  ``sum_k w_k *
    numerator_k / normaliser_k`` over one batch equals the Keras compiled loss on it.
    """
    return [_term_sums(term, _resolve(term.path, y_true, "targets"),
                       _resolve(term.path, y_pred, "predictions"),
                       _resolve_weight(term.path, sample_weight)) for term in terms]


def combine(terms: list[LossTerm], sums: list[tuple[Any, Any]], normalisers: list[Any]) -> Any:
    """``sum_k w_k * numerator_k / normaliser_k`` with the given (e.g. all-reduced)
    normalisers, one per term (``None`` for terms without one)."""
    import tensorflow as tf

    total = tf.constant(0.0)
    for term, (numerator, _), normaliser in zip(terms, sums, normalisers):
        value = numerator if normaliser is None else tf.math.divide_no_nan(numerator, normaliser)
        if term.weight is not None:
            value = value * tf.cast(term.weight, value.dtype)
        total = total + tf.cast(value, tf.float32)
    return total


def _resolve(path: tuple[Any, ...], value: Any, what: str) -> Any:
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError) as exc:
            raise DistributedConfigError(
                f"the compiled loss reads {what}{''.join(f'[{k!r}]' for k in path)}, which the "
                f"batch does not hold ({exc!r}); give targets the structure of the model's "
                "outputs (e.g. a dict keyed by output name)") from None
    return value


def _resolve_weight(path: tuple[Any, ...], sample_weight: Any) -> Any:
    if sample_weight is None or not isinstance(sample_weight, dict | list | tuple):
        return sample_weight  # one weight per example, shared by every output (as Keras)
    return _resolve(path, sample_weight, "sample_weight")


_warned: set[str] = set()


def _term_sums(term: LossTerm, y_true: Any, y_pred: Any, sample_weight: Any) -> tuple[Any, Any]:
    """What ``keras.losses.Loss.__call__`` computes, with the final division left out."""
    import tensorflow as tf
    from keras import ops

    from lstm_zoo.adapters.keras_private import squeeze_or_expand_to_same_rank

    loss = term.loss
    dtype = loss.dtype
    in_mask = getattr(y_pred, "_keras_mask", None)
    y_pred = ops.convert_to_tensor(y_pred, dtype=dtype)
    y_true = ops.convert_to_tensor(y_true, dtype=dtype)
    if hasattr(loss, "sum_and_count"):
        if sample_weight is not None:
            raise DistributedConfigError(
                f"loss {loss.name!r} averages over its own count (sum_and_count) and takes no "
                "sample weights in the multi-worker loop")
        total, count = loss.sum_and_count(y_true, y_pred)
        return tf.cast(total, tf.float32), tf.cast(count, tf.float32)

    if term.expand_rank1:
        y_true, y_pred = y_true[:, None], y_pred[:, None]
    values = ops.convert_to_tensor(loss.call(y_true, y_pred), dtype=dtype)
    if values.shape.rank == 0 and loss.name not in _warned:
        _warned.add(loss.name)
        warnings.warn(
            f"loss {loss.name!r} returns one value per batch (it averages inside call) and has "
            "no sum_and_count(); the multi-worker loss is the mean of the replicas' batch "
            "values, not the exact mean over the global batch", stacklevel=2)
    out_mask = getattr(values, "_keras_mask", None)
    mask = in_mask if out_mask is None else (out_mask if in_mask is None else
                                             tf.logical_and(in_mask, out_mask))
    reduction = loss.reduction
    weight = None if sample_weight is None else ops.convert_to_tensor(sample_weight, dtype=dtype)
    valid_share = None
    if mask is not None:
        float_mask = tf.cast(mask, dtype)
        if reduction in MEAN_REDUCTIONS:  # Keras divides by the unmasked count only
            valid_share = tf.math.divide_no_nan(tf.reduce_sum(float_mask),
                                                tf.cast(tf.size(float_mask), dtype))
        if weight is not None:
            float_mask, weight = squeeze_or_expand_to_same_rank(float_mask, weight)
            weight = weight * float_mask
        else:
            weight = float_mask
    if weight is not None:
        values, weight = squeeze_or_expand_to_same_rank(values, tf.cast(weight, values.dtype))
        values = values * weight
    numerator = tf.cast(tf.reduce_sum(values), tf.float32)
    if reduction == "sum":
        return numerator, None
    if reduction == "mean_with_sample_weight" and weight is not None:
        return numerator, tf.cast(tf.reduce_sum(weight), tf.float32)
    count = tf.cast(tf.size(values), tf.float32)
    if valid_share is not None:
        count = count * tf.cast(valid_share, tf.float32)
    return numerator, count
