"""The cuDNN path on a CPU: weight packing (against Keras' own packing function), and the
pre/post-processing + runtime mask fallback, run through the layer with a stand-in op that
implements CudnnRNNV3's documented LSTM semantics from the packed ``params``.

What this cannot confirm (needs a GPU): that the real kernel reads ``params`` in this order and
agrees numerically with the stand-in."""

import importlib

import numpy as np
import pytest
import tensorflow as tf

from lstm_zoo.layers import LSTM, cudnn, lstm
from lstm_zoo.layers.cudnn import pack_cudnn_params, unpack_cudnn_params

I, H = 3, 4
keras_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")


def _weights(rng):
    return (
        tf.constant(rng.randn(I, 4 * H).astype("float32")),
        tf.constant(rng.randn(H, 4 * H).astype("float32")),
        tf.constant(rng.randn(4 * H).astype("float32")),
    )


@pytest.mark.parametrize("rocm", [False, True])
def test_packing_equals_keras_own_packing(rocm, rng):
    kernel, recurrent, bias = _weights(rng)
    # Exactly the construction in keras/src/backend/tensorflow/rnn.py::_cudnn_lstm.
    weights = tf.split(kernel, 4, axis=1) + tf.split(recurrent, 4, axis=1)
    full_bias = tf.concat((tf.zeros_like(bias), bias), 0)
    if rocm:
        weights = [weights[x] for x in (0, 1, 3, 2, 4, 5, 7, 6)]
        full_bias = tf.split(full_bias, 8, axis=0)
        full_bias = [full_bias[x] for x in (0, 1, 3, 2, 4, 5, 7, 6)]
    theirs = keras_tf_rnn._standardize_cudnn_weights(
        weights=weights,
        biases=tf.split(full_bias, 8) if not rocm else full_bias,
        shape=tf.constant([-1]),
        transpose_weights=True,
    )
    ours = pack_cudnn_params(kernel, recurrent, bias, rocm=rocm)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    k, r, b_in, b_rec = unpack_cudnn_params(ours, I, H, rocm=rocm)
    np.testing.assert_array_equal(np.asarray(k), np.asarray(kernel))
    np.testing.assert_array_equal(np.asarray(r), np.asarray(recurrent))
    np.testing.assert_array_equal(np.asarray(b_in), 0.0)
    np.testing.assert_array_equal(np.asarray(b_rec), np.asarray(bias))


def test_packed_layout_is_cudnn_canonical(rng):
    """cuDNN canonical: W_i (H×I row-major) first, i.e. row u = kernel[:, u]; biases last."""
    kernel, recurrent, bias = _weights(rng)
    p = np.asarray(pack_cudnn_params(kernel, recurrent, bias, rocm=False))
    assert p.size == 4 * H * I + 4 * H * H + 8 * H
    np.testing.assert_array_equal(p[:I], np.asarray(kernel)[:, 0])  # W_i, unit 0
    f0 = H * I  # W_f starts after W_i
    np.testing.assert_array_equal(p[f0 : f0 + I], np.asarray(kernel)[:, H])
    r0 = 4 * H * I  # R_i
    np.testing.assert_array_equal(p[r0 : r0 + H], np.asarray(recurrent)[:, 0])
    np.testing.assert_array_equal(p[-4 * H :], np.asarray(bias))


def fake_cudnn_rnn_v3(calls):
    """CudnnRNNV3 (rnn_mode='lstm', batch-major) semantics in plain TF ops: each sequence runs
    for sequence_lengths[b] steps from the start, outputs are zero after its end, h/c are the
    states at its end; gates from W·x + b_W + R·h + b_R with params unpacked in cuDNN order."""

    def op(input, input_h, input_c, params, is_training, rnn_mode, sequence_lengths, time_major):
        assert rnn_mode == "lstm" and not time_major and is_training
        calls.assign_add(1)
        k, r, b_in, b_rec = unpack_cudnn_params(params, input.shape[-1], input_h.shape[-1])
        h, c = input_h[:, 0], input_c[:, 0]
        outs = []
        for t in range(input.shape[1]):
            z = input[:, t] @ k + b_in + h @ r + b_rec
            zi, zf, zc, zo = tf.split(z, 4, axis=1)
            c_new = tf.sigmoid(zf) * c + tf.sigmoid(zi) * tf.tanh(zc)
            h_new = tf.sigmoid(zo) * tf.tanh(c_new)
            valid = (t < sequence_lengths)[:, None]
            h, c = tf.where(valid, h_new, h), tf.where(valid, c_new, c)
            outs.append(tf.where(valid, h_new, tf.zeros_like(h_new)))
        return tf.stack(outs, 1), h[:, None], c[:, None], tf.zeros([0]), tf.zeros([0])

    return op


@pytest.fixture
def fake_gpu(monkeypatch):
    calls = tf.Variable(0)
    monkeypatch.setattr(lstm, "_gpu_available", lambda: True)
    monkeypatch.setattr(cudnn, "CUDNN_OP", fake_cudnn_rnn_v3(calls))
    return calls


MASKS = {
    "none": None,
    "right": [[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]],
    "left": [[0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 1, 1]],
    "empty_row": [[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]],
}
CONFIGS = [
    {"return_sequences": True, "go_backwards": True},
    {"return_sequences": True, "zero_output_for_mask": True},
    {"return_state": True},
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "+".join(c))
def test_cudnn_path_matches_generic(config, fake_gpu, rng):
    """Eager (mask known) and traced (mask checked at runtime by tf.cond) calls."""
    x = rng.randn(3, 4, I).astype("float32")
    generic = LSTM(H, implementation="generic", **config)
    generic(x)
    generic.set_weights([rng.randn(*w.shape).astype("float32") for w in generic.get_weights()])
    ours = LSTM(H, **config)
    ours(x)
    ours.set_weights(generic.get_weights())

    def outs(layer, fn, mask):
        out = fn(x, mask=mask)
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    traced = tf.function(lambda x, mask: ours(x, mask=mask))
    for name, rows in MASKS.items():
        mask = None if rows is None else tf.constant(np.array(rows, bool))
        want = outs(generic, generic, mask)
        before = int(fake_gpu.numpy())
        for got in (outs(ours, ours, mask), outs(ours, traced, mask)):
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, atol=1e-5, err_msg=name)
        ran_cudnn = int(fake_gpu.numpy()) - before
        # none/right: both calls ran the (stand-in) cuDNN op; left/empty_row: neither did
        # (eager: dispatch saw the mask; traced: the runtime check took the fallback branch).
        assert ran_cudnn == (2 if name in ("none", "right") else 0), name
        if name == "right":
            assert ours.last_implementation == "cudnn"
            assert "runtime check" in ours.last_implementation_reason  # last call was traced


def test_explicit_cudnn_with_left_padding_does_not_crash(fake_gpu, rng):
    x = rng.randn(2, 4, I).astype("float32")
    layer = LSTM(H, implementation="cudnn")
    out = layer(x, mask=np.array([[0, 1, 1, 1], [0, 0, 0, 0]], bool))
    assert np.isfinite(np.asarray(out)).all()
    assert layer.last_implementation == "generic"
    assert "left padded" in layer.last_implementation_reason or "empty row" in layer.last_implementation_reason
    assert layer.supports_jit is False


def test_cudnn_input_dropout_applied_before_op(fake_gpu, rng):
    """Training with input dropout on cuDNN = generic path with the same (seeded) mask."""
    x = rng.randn(2, 4, I).astype("float32")
    results = []
    for implementation in ("generic", "cudnn"):
        layer = LSTM(H, dropout=0.5, seed=3, implementation=implementation)
        layer.build((None, 4, I))
        layer.set_weights([np.full(w.shape, 0.2, "float32") for w in layer.get_weights()])
        results.append(np.asarray(layer(x, training=True)))
    np.testing.assert_allclose(results[0], results[1], atol=1e-5)
    assert int(fake_gpu.numpy()) == 1
