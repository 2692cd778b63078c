"""Our LSTM with keras.layers.LSTM's weights computes keras.layers.LSTM's outputs (and back)."""

import keras
import numpy as np
import pytest

from lstm_zoo.layers import LSTM

TOL = 1e-5

CONFIGS = [
    {},
    {"return_sequences": True},
    {"return_sequences": True, "go_backwards": True},
    {"use_bias": False},
    {"unroll": True, "return_sequences": True},
    {"return_state": True},
    {"activation": "relu", "recurrent_activation": "hard_sigmoid"},
    {"unit_forget_bias": False, "bias_initializer": "random_normal"},
]


def _outputs(layer, x, **kw):
    out = layer(x, **kw)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("implementation", ["generic", "auto"])
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(c) or "default")
def test_same_weights_same_outputs(config, implementation, rng):
    x = rng.randn(3, 5, 4).astype("float32")
    theirs = keras.layers.LSTM(6, **config)
    theirs(x)
    ours = LSTM(6, implementation=implementation, **config)
    ours(x)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    ours.set_weights(theirs.get_weights())
    for a, b in zip(_outputs(ours, x), _outputs(theirs, x)):
        np.testing.assert_allclose(a, b, atol=TOL, rtol=0)


def test_reverse_direction_weights(rng):
    """keras_lstm.set_weights(ours.get_weights()) gives our outputs too."""
    x = rng.randn(2, 4, 3).astype("float32")
    ours = LSTM(5, return_sequences=True, bias_initializer="random_normal", unit_forget_bias=False)
    ours(x)
    theirs = keras.layers.LSTM(5, return_sequences=True)
    theirs(x)
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=TOL, rtol=0)


def test_weight_names_and_layout():
    layer = LSTM(7)
    layer.build((None, 3, 2))
    shapes = {w.path.split("/")[-1]: tuple(w.shape) for w in layer.weights}
    assert shapes == {"kernel": (2, 28), "recurrent_kernel": (7, 28), "bias": (28,)}
    bias = np.asarray(layer.cell.bias)
    np.testing.assert_array_equal(bias[7:14], 1.0)  # unit_forget_bias: forget block is 2nd
    np.testing.assert_array_equal(np.delete(bias, np.s_[7:14]), 0.0)


@pytest.mark.parametrize(
    "mask_rows",
    [
        [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]],  # right padded
        [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]],  # left padded
        [[1, 0, 1, 0, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]],  # arbitrary + an empty row
    ],
    ids=["right", "left", "arbitrary_empty"],
)
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masking_matches_keras(mask_rows, go_backwards, rng):
    x = rng.randn(3, 5, 4).astype("float32")
    mask = np.array(mask_rows, dtype=bool)
    kw = {"return_sequences": True, "return_state": True, "go_backwards": go_backwards}
    theirs = keras.layers.LSTM(6, use_cudnn=False, **kw)
    theirs(x)
    ours = LSTM(6, **kw)
    ours(x)
    ours.set_weights(theirs.get_weights())
    for a, b in zip(_outputs(ours, x, mask=mask), _outputs(theirs, x, mask=mask)):
        np.testing.assert_allclose(a, b, atol=TOL, rtol=0)
    assert np.isfinite(_outputs(ours, x, mask=mask)[0]).all()


def test_masking_layer_in_model(rng):
    """Mask produced by keras.layers.Masking flows into our layer like into keras'."""
    x = rng.randn(2, 6, 3).astype("float32")
    x[0, 4:] = 0.0
    x[1, :2] = 0.0
    outs = []
    weights = None
    for cls in (keras.layers.LSTM, LSTM):
        inp = keras.Input((6, 3))
        y = cls(4, return_sequences=True)(keras.layers.Masking(0.0)(inp))
        model = keras.Model(inp, y)
        if weights is None:
            weights = model.get_weights()
        else:
            model.set_weights(weights)
        outs.append(np.asarray(model(x)))
    np.testing.assert_allclose(outs[0], outs[1], atol=TOL, rtol=0)


def test_config_has_every_keras_argument():
    theirs = set(keras.layers.LSTM(3).get_config())
    ours = LSTM(3).get_config()
    assert theirs <= set(ours), theirs - set(ours)
    extra = set(ours) - theirs
    assert extra == {"use_peepholes", "layer_norm", "proj_units", "zoneout_cell",
                     "zoneout_hidden", "cell_clip", "cifg", "implementation"}  # fmt: skip


def test_regularizers_and_constraints_like_keras(rng):
    kw = {
        "kernel_regularizer": "l2",
        "recurrent_regularizer": keras.regularizers.L1(0.01),
        "bias_regularizer": "l1",
        "activity_regularizer": "l2",
        "kernel_constraint": keras.constraints.MaxNorm(0.5),
    }
    x = rng.randn(2, 3, 4).astype("float32")
    theirs, ours = keras.layers.LSTM(5, **kw), LSTM(5, **kw)
    theirs(x)
    ours(x)
    ours.set_weights(theirs.get_weights())
    theirs(x), ours(x)
    assert len(ours.losses) == len(theirs.losses) == 4
    np.testing.assert_allclose(
        sorted(float(v) for v in ours.losses), sorted(float(v) for v in theirs.losses), rtol=1e-5
    )
    assert isinstance(ours.cell.kernel.constraint, keras.constraints.MaxNorm)


def test_cell_in_keras_rnn_matches_keras_cell(rng, tmp_path):
    from lstm_zoo.layers import LSTMCell

    x = rng.randn(2, 4, 3).astype("float32")
    theirs = keras.layers.RNN(keras.layers.LSTMCell(5), return_sequences=True)
    ours = keras.layers.RNN(LSTMCell(5), return_sequences=True)
    theirs(x), ours(x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=TOL)
    model = keras.Sequential([keras.Input((4, 3)), keras.layers.RNN(LSTMCell(5, cifg=True))])
    model.save(tmp_path / "cell.keras")
    loaded = keras.models.load_model(tmp_path / "cell.keras")
    assert isinstance(loaded.layers[0].cell, LSTMCell) and loaded.layers[0].cell.cifg
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
