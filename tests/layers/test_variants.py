"""Each variant: equations (vs an independent NumPy LSTM), shapes, masks, .keras round trip,
finite-difference gradients in float64, and the training-time randomness (zoneout, dropout)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_zoo.layers import LSTM, LSTMCell

VARIANTS = {
    "plain": {},
    "peepholes": {"use_peepholes": True},
    "layer_norm": {"layer_norm": True},
    "proj": {"proj_units": 3},
    "zoneout": {"zoneout_cell": 0.3, "zoneout_hidden": 0.2},
    "clip": {"cell_clip": 0.4},
    "cifg": {"cifg": True},
    "cifg_peepholes": {"cifg": True, "use_peepholes": True},
    "dropouts": {"dropout": 0.3, "recurrent_dropout": 0.3},
    "everything": {
        "use_peepholes": True, "layer_norm": True, "proj_units": 3, "zoneout_cell": 0.1,
        "zoneout_hidden": 0.1, "cell_clip": 1.0, "cifg": True, "recurrent_dropout": 0.2,
    },
}  # fmt: skip
MASKS = {
    "none": None,
    "right": np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool),
    "left": np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]], bool),
    "holes_and_empty": np.array([[1, 0, 1, 0, 1], [0, 0, 0, 0, 0], [1, 1, 0, 1, 1]], bool),
}
UNITS, IN = 4, 3


def _build(config, rng_seed=0, dtype="float32", **kw):
    layer = LSTM(UNITS, return_sequences=True, return_state=True, dtype=dtype, **config, **kw)
    layer.build((None, 5, IN))
    r = np.random.RandomState(rng_seed)
    layer.set_weights([(r.randn(*w.shape) * 0.5).astype(dtype) for w in layer.get_weights()])
    return layer


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_matches_numpy_reference(variant, np_lstm, weights_of, rng):
    """Inference outputs and final states vs the NumPy reference, for every kind of mask
    (right/left padding, holes, a fully masked row), forwards and backwards."""
    config = VARIANTS[variant]
    x = rng.randn(3, 5, IN).astype("float32")
    for go_backwards in (False, True):
        layer = _build(config, go_backwards=go_backwards)
        for mask in MASKS.values():
            got = [np.asarray(t) for t in layer(x, mask=mask)]
            want = np_lstm(weights_of(layer), x.astype("float64"), config, mask, go_backwards=go_backwards)
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, atol=2e-5, rtol=0)
        assert layer.last_implementation == ("fused" if variant == "plain" else "generic")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_shapes(variant):
    config = VARIANTS[variant]
    layer = _build(config)
    out, h, c = layer(np.zeros((2, 5, IN), "float32"))
    hidden = config.get("proj_units") or UNITS
    assert out.shape == (2, 5, hidden) and h.shape == (2, hidden) and c.shape == (2, UNITS)
    gates = 3 if config.get("cifg") else 4
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in layer.weights}
    assert shapes["kernel"] == (IN, gates * UNITS)
    assert shapes["recurrent_kernel"] == (hidden, gates * UNITS)
    assert shapes["bias"] == (gates * UNITS,)
    assert ("projection_kernel" in shapes) == bool(config.get("proj_units"))
    assert ("forget_peephole" in shapes) == bool(config.get("use_peepholes"))
    assert ("input_peephole" in shapes) == bool(config.get("use_peepholes") and not config.get("cifg"))
    assert ("cell_norm_gamma" in shapes) == bool(config.get("layer_norm"))
    assert keras.layers.LSTM(UNITS).compute_output_shape((2, 5, IN)) == (2, UNITS)
    assert LSTM(UNITS, **config).compute_output_shape((2, 5, IN)) == (2, hidden)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_keras_file_round_trip(variant, tmp_path, rng):
    config = VARIANTS[variant]
    inp = keras.Input((5, IN))
    y = LSTM(UNITS, return_sequences=True, seed=7, **config)(keras.layers.Masking(0.0)(inp))
    model = keras.Model(inp, y)
    x = rng.randn(2, 5, IN).astype("float32")
    x[0, 3:] = 0.0
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    layer = loaded.layers[-1]
    assert isinstance(layer, LSTM)
    for key, value in config.items():
        assert getattr(layer, key) == value
    assert layer.get_config() == model.layers[-1].get_config()
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "dropouts"])
def test_gradients_finite_differences(variant, rng):
    """Analytic gradient (w.r.t. inputs and every weight) vs central differences in float64,
    along random directions: <∇f, v> == (f(θ+εv) − f(θ−εv)) / 2ε."""
    config = dict(VARIANTS[variant])
    config.pop("recurrent_dropout", None)
    layer = _build(config, dtype="float64")
    x = tf.constant(rng.randn(2, 3, IN))
    mask = tf.constant([[True, True, True], [False, True, True]])
    non_trainable = [v.value for v in layer.non_trainable_variables]
    params = [x] + [v.value for v in layer.trainable_variables]

    @tf.function
    def f(*params):
        (y, h, c), _ = layer.stateless_call(list(params[1:]), non_trainable, params[0], mask=mask)
        return tf.reduce_sum(y * tf.cos(y)) + tf.reduce_sum(tf.sin(c))

    @tf.function
    def grad(*params):
        with tf.GradientTape() as tape:
            tape.watch(params)
            value = f(*params)
        return tape.gradient(value, params)

    grads = grad(*params)
    assert all(g is not None for g in grads)
    eps = 1e-6
    for k in range(4):
        direction = [tf.constant(np.random.RandomState(k).randn(*p.shape)) for p in params]
        plus = f(*[p + eps * d for p, d in zip(params, direction)])
        minus = f(*[p - eps * d for p, d in zip(params, direction)])
        numeric = float((plus - minus) / (2 * eps))
        analytic = float(sum(tf.reduce_sum(g * d) for g, d in zip(grads, direction)))
        assert abs(analytic) > 1e-5  # not trivially zero
        assert abs(numeric - analytic) <= 1e-6 + 1e-6 * abs(analytic), (k, numeric, analytic)


def test_zoneout_training_keeps_previous_units():
    """Training: each unit is either its previous value or the un-zoned new value, ~z of them
    previous; inference: exactly the expectation z·prev + (1−z)·new."""
    z = 0.3
    cell = LSTMCell(400, zoneout_cell=z, zoneout_hidden=z, seed=3)
    plain = LSTMCell(400)
    x = np.random.RandomState(0).randn(8, 5).astype("float32")
    cell.build((None, 5))
    plain.build((None, 5))
    plain.set_weights(cell.get_weights())
    h0 = np.random.RandomState(1).randn(8, 400).astype("float32")
    c0 = np.random.RandomState(2).randn(8, 400).astype("float32")
    new_h, (_, new_c) = plain(x, [h0, c0])
    for prev, new, got in [(h0, new_h, cell(x, [h0, c0], training=True)[0]),
                           (c0, new_c, cell(x, [h0, c0], training=True)[1][1])]:  # fmt: skip
        got, new = np.asarray(got), np.asarray(new)
        kept = np.isclose(got, prev, atol=1e-6)
        assert (kept | np.isclose(got, new, atol=1e-6)).all()
        assert abs(kept.mean() - z) < 0.03
    h_inf, (_, c_inf) = cell(x, [h0, c0], training=False)
    np.testing.assert_allclose(np.asarray(h_inf), z * h0 + (1 - z) * np.asarray(new_h), atol=1e-6)
    np.testing.assert_allclose(np.asarray(c_inf), z * c0 + (1 - z) * np.asarray(new_c), atol=1e-6)


@pytest.mark.parametrize("implementation", ["generic", "fused"])
def test_variational_dropout_one_mask_per_sequence(implementation, monkeypatch):
    """Dropout masks are drawn once per call (same mask at every step), only in training."""
    layer = LSTM(4, dropout=0.5, recurrent_dropout=0.5 if implementation == "generic" else 0.0,
                 implementation=implementation, seed=1)  # fmt: skip
    x = np.random.RandomState(0).randn(2, 6, 3).astype("float32")
    layer(x)
    calls = []
    original = layer.cell._create_dropout_mask
    monkeypatch.setattr(layer.cell, "_create_dropout_mask",
                        lambda *a: calls.append(a[1]) or original(*a))  # fmt: skip
    train1, train2 = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True))
    assert set(calls) == {0.5}
    assert len(calls) == (4 if implementation == "generic" else 2)  # one per tensor per call
    inference = np.asarray(layer(x, training=False))
    np.testing.assert_array_equal(inference, np.asarray(layer(x, training=False)))
    assert not np.allclose(train1, inference) and not np.allclose(train1, train2)


def test_fused_dropout_equals_generic_dropout():
    """Same seed, same draws: input dropout on the fused path = on the generic path."""
    x = np.random.RandomState(0).randn(2, 6, 3).astype("float32")
    outs = []
    for implementation in ("generic", "fused"):
        layer = LSTM(4, dropout=0.4, seed=11, implementation=implementation)
        layer.build((None, 6, 3))
        layer.set_weights([np.full(w.shape, 0.1, "float32") for w in layer.get_weights()])
        outs.append(np.asarray(layer(x, training=True)))
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-6)


def test_cell_clip_bounds_cell_state(rng):
    layer = _build({"cell_clip": 0.25})
    layer.cell.bias.assign(np.full(4 * UNITS, 3.0, "float32"))  # saturate gates -> large c
    _, _, c = layer(rng.randn(2, 5, IN).astype("float32") * 5)
    assert np.abs(np.asarray(c)).max() <= 0.25 + 1e-7
    assert np.isclose(np.abs(np.asarray(c)).max(), 0.25)


def test_bad_arguments_have_clear_errors():
    with pytest.raises(ValueError, match="proj_units.*positive integer.*0"):
        LSTM(4, proj_units=0)
    with pytest.raises(ValueError, match=r"zoneout_cell.*\[0, 1\).*1\.0"):
        LSTM(4, zoneout_cell=1.0)
    with pytest.raises(ValueError, match="cell_clip.*positive number"):
        LSTM(4, cell_clip=-1.0)
    with pytest.raises(ValueError, match="use_peepholes.*True or False"):
        LSTM(4, use_peepholes="yes")
    with pytest.raises(ValueError, match="implementation.*'auto'.*'generic'.*2"):
        LSTM(4, implementation=2)
    with pytest.raises(ValueError, match="units.*positive integer"):
        LSTM(0)
    with pytest.raises(ValueError, match="dropout.*\\[0, 1\\]"):
        LSTM(4, dropout=1.5)
