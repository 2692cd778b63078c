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
    bias = tf.constant(rng.randn(4 * units))
    from lstm_zoo.layers import fused

    cases = ((False, True, False), (True, False, False), (False, True, True))
    for zero_output, training, jit in cases:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([xw, R, h0, c0, bias])
            ours = fused_recurrence(
                xw, R, h0, c0, mask, zero_output, jit=jit, training=training, bias=bias
            )
            ref = fused._forward(xw + bias, R, h0, c0, mask, zero_output)[:4]
            w = [tf.constant(rng.randn(*o.shape)) for o in ours]
            loss_ours = sum(tf.reduce_sum(o * v) for o, v in zip(ours, w))
            loss_ref = sum(tf.reduce_sum(o * v) for o, v in zip(ref, w))
        for a, b in zip(ours, ref):  # bias inside the loop, one-tanh gates under XLA: same values
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-12)
        g_ours = tape.gradient(loss_ours, [xw, R, h0, c0, bias])
        g_ref = tape.gradient(loss_ref, [xw, R, h0, c0, bias])
        for a, b in zip(g_ours, g_ref):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-10)


def test_fused_uses_xla_by_default_but_not_when_traced_for_export(tmp_path):
    from lstm_zoo.layers.fused import layer_uses_xla

    layer = LSTM(3)
    assert layer_uses_xla(layer, training=True) and layer_uses_xla(layer, training=False)
    # sequences of varying length: no XLA compile per length for inference
    assert not layer_uses_xla(layer, training=False, steps_known=False)
    assert layer_uses_xla(layer, training=True, steps_known=False)
    seen = []

    class Probe(tf.Module):
        @tf.function(input_signature=[])
        def probe(self):
            seen.append(layer_uses_xla(layer, training=False))
            return tf.constant(0)

    tf.saved_model.save(Probe(), str(tmp_path / "probe"))
    assert seen and not any(seen)  # traced inside tf.saved_model.save: portable
    layer.fused_jit = False
    assert not layer_uses_xla(layer, training=True)
    layer.fused_jit = True
    assert layer_uses_xla(layer, training=False)


def _library_functions(saved_model_dir) -> list:
    """The function definitions in a SavedModel's graph library."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    return list(proto.meta_graphs[0].graph_def.library.function)


def _xla_compiled_functions(saved_model_dir) -> int:
    """How many functions in a SavedModel must be XLA-compiled (need XLA:CPU JIT to run)."""
    flags = [f.attr.get("_XlaMustCompile") for f in _library_functions(saved_model_dir)]
    return sum(bool(flag is not None and flag.b) for flag in flags)


def test_keras_model_export_holds_no_xla_loop_but_eager_inference_uses_it(rng, tmp_path):
    x = rng.randn(2, 4, 3).astype("float32")
    model = keras.Sequential([keras.Input((4, 3)), LSTM(5, implementation="fused")])
    fused_layer = model.layers[0]
    expected = np.asarray(model(x))
    assert "XLA inference runs one loop" in fused_layer.last_implementation_reason
    for name, export in {
        "keras": lambda path: model.export(str(path), verbose=False),
        "tf": lambda path: tf.saved_model.save(model, str(path)),
    }.items():
        export(tmp_path / name)
        assert _xla_compiled_functions(tmp_path / name) == 0, name
    reloaded = tf.saved_model.load(str(tmp_path / "keras"))
    np.testing.assert_allclose(np.asarray(reloaded.serve(x)), expected, atol=1e-6)
    fused_layer.fused_jit = True  # forced: the probe above does see XLA functions
    model.export(str(tmp_path / "forced"), verbose=False)
    assert _xla_compiled_functions(tmp_path / "forced") > 0


def test_export_has_no_hand_written_backward_but_stays_differentiable(rng, tmp_path):
    """Serving graphs hold the forward loop only; a gradient through the reloaded export
    (TF's autodiff of the loop) equals the one through the hand-written backward."""
    x = rng.randn(3, 6, 4).astype("float32")
    x[0, 4:] = 0.0  # masked tail
    model = keras.Sequential([
        keras.Input((6, 4)), keras.layers.Masking(0.0),
        LSTM(5, implementation="fused", return_sequences=True),
    ])
    model.export(str(tmp_path / "export"), verbose=False)
    names = [f.signature.name for f in _library_functions(tmp_path / "export")]
    assert not [n for n in names if "grad_fn" in n], names
    reloaded = tf.saved_model.load(str(tmp_path / "export"))
    weights = tf.constant(rng.randn(3, 6, 5).astype("float32"))
    grads = []
    for fn in (lambda t: model(t, training=False), reloaded.serve):
        t = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            loss = tf.reduce_sum(fn(t) * weights)
        grads.append(np.asarray(tape.gradient(loss, t)))
    assert np.abs(grads[0]).max() > 1e-3
    np.testing.assert_allclose(grads[1], grads[0], atol=1e-5)


def test_one_tanh_gates_equal_sigmoid_and_tanh():
    from lstm_zoo.layers.fused import _one_tanh_gate_activations

    z = np.random.RandomState(0).uniform(-30, 30, size=(3, 4 * 7)).astype("float32")
    z[0, :8] = [0, 1e-7, -1e-7, 88, -88, 1e4, -1e4, 0.5]
    from scipy.special import expit as sig

    zi, zf, zg, zo = np.split(z.astype("float64"), 4, axis=1)
    expected = np.concatenate([sig(zi), sig(zf), np.tanh(zg), sig(zo)], axis=1)
    got = np.asarray(_one_tanh_gate_activations(tf.constant(z), tf.constant(7)))
    np.testing.assert_allclose(got, expected, atol=3e-7, rtol=0)
    assert np.all((got[:, : 2 * 7] >= 0) & (got[:, : 2 * 7] <= 1))  # gates stay in [0, 1]


def test_fused_inside_a_jit_compiled_model_function_matches_keras(rng):
    """fused_jit=False inside an XLA-compiled function: the enclosing XLA compiles the loop
    (with the one-tanh gates) and the result is still Keras'."""
    x = rng.randn(3, 6, 2).astype("float32")
    ref = keras.layers.LSTM(4, return_sequences=True, use_cudnn=False)
    ours = LSTM(4, return_sequences=True, implementation="fused")
    ref(x), ours(x)
    ours.set_weights([w * 3 for w in ref.get_weights()])
    ref.set_weights(ours.get_weights())
    ours.fused_jit = False
    got = tf.function(lambda v: ours(v), jit_compile=True)(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref(x)), atol=1e-6)


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
