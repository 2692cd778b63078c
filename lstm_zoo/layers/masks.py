"""Mask inspection: what the dispatcher may know at trace time, and the runtime cuDNN check."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def is_right_padded(mask: tf.Tensor) -> tf.Tensor:
    """Scalar bool tensor: every row is ``True...True False...False`` (bool mask (B, T))."""
    mask = tf.cast(mask, tf.bool)
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    return tf.reduce_all(tf.equal(mask, tf.sequence_mask(lengths, maxlen=tf.shape(mask)[1])))


def has_empty_row(mask: tf.Tensor) -> tf.Tensor:
    """Scalar bool tensor: some row is fully masked (cuDNN cannot take a length-0 sequence)."""
    return tf.reduce_any(tf.logical_not(tf.reduce_any(tf.cast(mask, tf.bool), axis=1)))


def cudnn_can_take(mask: tf.Tensor) -> tf.Tensor:
    """Scalar bool tensor: cuDNN computes this mask correctly (right-padded, no empty row)."""
    return tf.logical_and(is_right_padded(mask), tf.logical_not(has_empty_row(mask)))


def describe_mask(mask: tf.Tensor | None) -> str:
    """A ``dispatch.MASK_INFOS`` value; concrete only for eager (value-known) masks."""
    if mask is None:
        return "none"
    if not tf.executing_eagerly() or not hasattr(mask, "numpy"):
        return "unknown"
    m = np.asarray(mask).astype(bool)
    if m.ndim == 3:
        m = m[..., 0]
    if not m.any(axis=1).all():
        return "empty_row"
    lengths = m.sum(axis=1)
    right = np.arange(m.shape[1])[None, :] < lengths[:, None]
    if (m == right).all():
        return "right_padded"
    left = np.arange(m.shape[1])[None, :] >= (m.shape[1] - lengths)[:, None]
    if (m == left).all():
        return "left_padded"
    return "arbitrary"
