"""The cuDNN path: ``tf.raw_ops.CudnnRNNV3`` with Keras 3.15's own weight packing.

Correct by construction: the packing and the call mirror ``keras/src/backend/tensorflow/rnn.py``
(``_cudnn_lstm`` + ``_standardize_cudnn_weights``):

* params = [W_i, W_f, W_c, W_o, R_i, R_f, R_c, R_o] each *transposed* to (out, in) and
  flattened row-major, then 8 bias blocks: cuDNN has separate input and recurrent biases
  (b_W, b_R); we set b_W = 0 and b_R = the Keras bias, so b_W + b_R is the Keras bias.
  (ROCm/MIOpen orders the gates i, f, o, c; handled as Keras does.)
* batch-major input with ``sequence_lengths`` (all T without a mask), ``time_major=False``;
  ``go_backwards`` by ``tf.reverse_sequence`` before and after, then a full reverse - exactly
  Keras' three reversals.

Differences from Keras, all to match the generic path bit-for-bit in meaning:

* masks cuDNN cannot take (not strictly right-padded, or a fully masked row) do not fail a
  ``tf.Assert``: a ``tf.cond`` runs the generic path for that batch instead;
* at padded steps cuDNN writes zeros where ``keras.layers.RNN`` repeats the last output; the
  outputs are fixed up to the RNN semantics (``zero_output_for_mask`` respected).

What only a GPU run can confirm (see ``tests/layers/test_cudnn.py`` for what CPU tests do
confirm, using a stand-in op with cuDNN's documented semantics): that the real kernel reads
``params`` in this order (CPU tests check our packing equals Keras' own function), and the
numerical agreement of the real kernel with the other paths (expected ~1e-6 in float32).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from lstm_zoo.layers.masks import cudnn_can_take

#: The op called; tests swap in a CPU stand-in with cuDNN's semantics.
CUDNN_OP: Callable = tf.raw_ops.CudnnRNNV3

_ROCM_ORDER = (0, 1, 3, 2, 4, 5, 7, 6)  # MIOpen: i, f, o, c


def _is_rocm() -> bool:
    return bool(tf.sysconfig.get_build_info().get("is_rocm_build", False))


def pack_cudnn_params(kernel, recurrent_kernel, bias, rocm: bool | None = None) -> tf.Tensor:
    """Keras-layout (kernel, recurrent_kernel, bias) -> the flat cuDNN ``params`` vector."""
    rocm = _is_rocm() if rocm is None else rocm
    weights = tf.split(kernel, 4, axis=1) + tf.split(recurrent_kernel, 4, axis=1)
    biases = tf.split(tf.concat([tf.zeros_like(bias), bias], axis=0), 8)
    if rocm:
        weights = [weights[k] for k in _ROCM_ORDER]
        biases = [biases[k] for k in _ROCM_ORDER]
    flat = [tf.reshape(tf.transpose(w), [-1]) for w in weights]
    flat += [tf.reshape(b, [-1]) for b in biases]
    return tf.concat(flat, axis=0)


def unpack_cudnn_params(params, input_dim: int, units: int, rocm: bool = False):
    """Inverse of ``pack_cudnn_params``: (kernel, recurrent_kernel, input_bias, recurrent_bias).

    ``input_bias + recurrent_bias`` is the Keras bias.  Used by tests and the CPU stand-in.
    """
    sizes = [units * input_dim] * 4 + [units * units] * 4 + [units] * 8
    parts = tf.split(params, sizes)
    if rocm:  # undo the permutation (it is its own inverse)
        parts = [parts[k] for k in _ROCM_ORDER] + [parts[8 + k] for k in _ROCM_ORDER]
    w = [tf.transpose(tf.reshape(p, (units, input_dim))) for p in parts[:4]]
    r = [tf.transpose(tf.reshape(p, (units, units))) for p in parts[4:8]]
    return (
        tf.concat(w, axis=1),
        tf.concat(r, axis=1),
        tf.concat(parts[8:12], axis=0),
        tf.concat(parts[12:16], axis=0),
    )


def cudnn_lstm(
    inputs,
    h0,
    c0,
    kernel,
    recurrent_kernel,
    bias,
    mask=None,
    go_backwards: bool = False,
    return_sequences: bool = False,
    zero_output_for_mask: bool = False,
):
    """(last_output, outputs, [h, c]) like ``keras.layers.RNN.inner_loop``, via cuDNN.

    ``inputs`` is batch-major (B, T, I); ``mask`` (B, T) must be strictly right-padded with no
    empty row (the caller checks; see ``cudnn_inner_loop``).
    """
    batch, steps = tf.shape(inputs)[0], tf.shape(inputs)[1]
    if mask is None:
        lengths = tf.fill([batch], steps)
    else:
        lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    seq_axis, batch_axis = 1, 0
    params = pack_cudnn_params(kernel, recurrent_kernel, bias)
    if go_backwards:
        inputs = tf.reverse_sequence(inputs, lengths, seq_axis=seq_axis, batch_axis=batch_axis)
    outputs, h, c, _, _ = CUDNN_OP(
        input=inputs,
        input_h=tf.expand_dims(h0, axis=seq_axis),
        input_c=tf.expand_dims(c0, axis=seq_axis),
        params=params,
        is_training=True,
        rnn_mode="lstm",
        sequence_lengths=lengths,
        time_major=False,
    )
    if go_backwards:
        outputs = tf.reverse_sequence(outputs, lengths, seq_axis=seq_axis, batch_axis=batch_axis)
        outputs = tf.reverse(outputs, axis=[seq_axis])
    h = tf.squeeze(h, axis=seq_axis)
    c = tf.squeeze(c, axis=seq_axis)
    last_output = h
    if mask is not None and not go_backwards:
        # cuDNN: zeros after the end; keras.layers.RNN: the last output repeated (or zeros).
        valid = tf.cast(mask, tf.bool)[:, :, None]
        if not zero_output_for_mask:
            outputs = tf.where(valid, outputs, h[:, None, :])
        else:
            last_output = tf.where(valid[:, -1], h, tf.zeros_like(h))
    # With go_backwards the padding comes first in the reversed sequence: the RNN emits zeros
    # there (its "previous output" starts at zero), which is what cuDNN's reversal gives.
    if not return_sequences:
        outputs = last_output[:, None, :]
    return last_output, outputs, [h, c]


def cudnn_inner_loop(layer, sequences, initial_state, mask, training, fallback: Callable):
    """``inner_loop`` for an lstm_zoo ``LSTM`` on the cuDNN path; ``fallback()`` = generic path.

    With a mask, a ``tf.cond`` checks at runtime that cuDNN can take it (strictly right-padded,
    no fully masked row) and otherwise runs ``fallback`` - never an assertion failure.
    """
    cell = layer.cell
    x = sequences
    if training and 0.0 < cell.dropout < 1.0:  # input dropout commutes with cuDNN
        x = x * tf.expand_dims(cell.get_dropout_mask(x[:, 0, :]), 1)
    dtype = x.dtype
    weights = [
        tf.cast(tf.convert_to_tensor(w), dtype)
        for w in (cell.kernel, cell.recurrent_kernel, cell.bias)
    ]
    h0, c0 = (tf.cast(s, dtype) for s in initial_state)

    def run_cudnn():
        return cudnn_lstm(
            x, h0, c0, *weights, mask=mask, go_backwards=layer.go_backwards,
            return_sequences=layer.return_sequences,
            zero_output_for_mask=bool(layer.zero_output_for_mask),
        )  # fmt: skip

    if mask is None:
        return run_cudnn()

    def run_fallback():
        last, outputs, states = fallback()
        return last, outputs, list(states)

    return tf.cond(cudnn_can_take(mask), run_cudnn, run_fallback)
