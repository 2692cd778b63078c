"""All CPU paths agree with each other and with keras.layers.LSTM: forward and gradients
(w.r.t. inputs, every weight and the initial state), over a sweep of configurations."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_zoo.layers import LSTM
from lstm_zoo.layers.fused import fused_recurrence

MASKS = {
    "none": None,
    "right": [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]],
    "left": [[0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1]],
    "holes_empty": [[1, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 1]],
}
SEQ, STATE, BACK, ZERO = (
    {"return_sequences": True},
    {"return_state": True},
    {"go_backwards": True},
    {"zero_output_for_mask": True},
)
#: (layer config, mask name): each option meets each kind of mask at least once.
CASES = [
    ({**SEQ}, "none"),
    ({**SEQ}, "right"),
    ({**SEQ, **BACK}, "left"),
    ({**SEQ, **ZERO}, "holes_empty"),
    ({**SEQ, **BACK, **ZERO}, "right"),
    ({**STATE}, "holes_empty"),
    ({**STATE}, "left"),
    ({**STATE, **BACK, "use_bias": False}, "right"),
    ({**SEQ, **STATE, **BACK}, "none"),
]


def _run(layer, x, mask, h0, c0, cotangent_seed=0):
    xt, h0t, c0t = (tf.constant(a) for a in (x, h0, c0))
    with tf.GradientTape() as tape:
        tape.watch([xt, h0t, c0t])
        out = layer(xt, mask=mask, initial_state=[h0t, c0t])
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        r = np.random.RandomState(cotangent_seed)
        loss = sum(tf.reduce_sum(o * r.randn(*o.shape).astype("float32")) for o in outs)
    grads = tape.gradient(loss, [xt, h0t, c0t, *layer.trainable_weights])
    return [np.asarray(o) for o in outs], [np.asarray(g) for g in grads]


@pytest.mark.parametrize(
    ("config", "mask_name"), CASES, ids=["+".join(c) + "-" + m for c, m in CASES]
)
def test_paths_agree_forward_and_backward(config, mask_name, rng):
    mask = None if MASKS[mask_name] is None else np.array(MASKS[mask_name], bool)
    x = rng.randn(3, 4, 3).astype("float32")
    h0, c0 = (rng.randn(3, 5).astype("float32") for _ in range(2))
    results = {}
    layers = {
        "keras": keras.layers.LSTM(5, use_cudnn=False, **config),
        "generic": LSTM(5, implementation="generic", **config),
        "fused": LSTM(5, implementation="fused", **config),
        "fused_nojit": LSTM(5, implementation="fused", **config),
    }
    layers["fused"].fused_jit = True  # XLA forward + backward (default: training calls only)
    layers["fused_nojit"].fused_jit = False
    weights = None
    for name, layer in layers.items():
        layer.build((None, 4, 3))
        if weights is None:
            weights = [rng.randn(*w.shape).astype("float32") * 0.6 for w in layer.get_weights()]
        layer.set_weights(weights)
        results[name] = _run(layer, x, mask, h0, c0)
        if name != "keras":
            assert layer.last_implementation == name.split("_")[0]
    ref_out, ref_grads = results["keras"]
    for name in ("generic", "fused", "fused_nojit"):
        outs, grads = results[name]
        for a, b in zip(outs, ref_out):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=0, err_msg=name)
        assert len(grads) == len(ref_grads)
        for a, b in zip(grads, ref_grads):
            np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5, err_msg=name)


def test_fused_recurrence_gradients_match_autodiff(rng):
    """The hand-written backward of the fused core equals TF autodiff of the same loop, with
    stored activations (training) and recomputed ones (inference-mode forward)."""
    steps, batch, units = 5, 2, 3
    xw = tf.constant(rng.randn(steps, batch, 4 * units).astype("float64"))
    R = tf.constant(rng.randn(units, 4 * units).astype("float64") * 0.5)
    h0, c0 = (tf.constant(rng.randn(batch, units)) for _ in range(2))
    mask = tf.constant(rng.rand(steps, batch, 1) > 0.3)
    from lstm_zoo.layers import fused

    for zero_output, training in ((False, True), (True, False)):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([xw, R, h0, c0])
            ours = fused_recurrence(xw, R, h0, c0, mask, zero_output, jit=False, training=training)
            ref = fused._forward(xw, R, h0, c0, mask, zero_output)[:4]
            w = [tf.constant(rng.randn(*o.shape)) for o in ours]
            loss_ours = sum(tf.reduce_sum(o * v) for o, v in zip(ours, w))
            loss_ref = sum(tf.reduce_sum(o * v) for o, v in zip(ref, w))
        g_ours = tape.gradient(loss_ours, [xw, R, h0, c0])
        g_ref = tape.gradient(loss_ref, [xw, R, h0, c0])
        for a, b in zip(g_ours, g_ref):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-10)


def test_fused_xla_only_for_training_by_default():
    from lstm_zoo.layers.fused import layer_uses_xla

    layer = LSTM(3)
    assert layer_uses_xla(layer, training=True) and not layer_uses_xla(layer, training=False)
    layer.fused_jit = False
    assert not layer_uses_xla(layer, training=True)
    layer.fused_jit = True
    assert layer_uses_xla(layer, training=False)


def test_fused_inside_tf_function_and_mixed_precision(rng):
    x = rng.randn(2, 4, 3).astype("float32")
    ours = LSTM(5, implementation="fused", return_sequences=True)
    ours.fused_jit = True
    ours(x)
    eager = np.asarray(ours(x))
    np.testing.assert_allclose(np.asarray(tf.function(ours)(x)), eager, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(tf.function(ours, jit_compile=True)(x)), eager, atol=1e-6
    )
    half = LSTM(5, implementation="fused", return_sequences=True, dtype="mixed_bfloat16")
    half(x)
    half.set_weights(ours.get_weights())
    y = half(x)
    assert y.dtype == "bfloat16"
    np.testing.assert_allclose(np.asarray(tf.cast(y, "float32")), eager, atol=5e-2)
