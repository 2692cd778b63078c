"""Conversions: keras.layers.LSTM <-> LSTM (both ways) and PyTorch nn.LSTM arrays -> LSTM,
checked against the PyTorch equations computed by hand in NumPy."""

import keras
import numpy as np
import pytest

from lstm_zoo.layers import (
    LSTM,
    from_keras_lstm,
    from_torch_lstm,
    to_keras_lstm,
    torch_lstm_weights,
)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def torch_lstm_by_hand(sd, x, suffix="_l0", reverse=False):
    """PyTorch nn.LSTM docs: i,f,g,o = chunks of W_ih x + b_ih + W_hh h + b_hh;
    c = f*c + i*g; h = o*tanh(c); with proj_size: h = W_hr h."""
    w_ih, w_hh = sd["weight_ih" + suffix], sd["weight_hh" + suffix]
    b = sd["bias_ih" + suffix] + sd["bias_hh" + suffix]
    hidden = w_ih.shape[0] // 4
    w_hr = sd.get("weight_hr" + suffix)
    h = np.zeros((x.shape[0], w_hh.shape[1]))
    c = np.zeros((x.shape[0], hidden))
    outs = []
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    for t in steps:
        gates = x[:, t] @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = np.split(gates, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        if w_hr is not None:
            h = h @ w_hr.T
        outs.append(h)
    return np.stack(outs, 1), h, c


def _state_dict(rng, inp, hidden, proj=None, reverse=False):
    s = "_l0" + ("_reverse" if reverse else "")
    rec = proj or hidden
    sd = {
        "weight_ih" + s: rng.randn(4 * hidden, inp) * 0.4,
        "weight_hh" + s: rng.randn(4 * hidden, rec) * 0.4,
        "bias_ih" + s: rng.randn(4 * hidden) * 0.4,
        "bias_hh" + s: rng.randn(4 * hidden) * 0.4,
    }
    if proj:
        sd["weight_hr" + s] = rng.randn(proj, hidden) * 0.4
    return {k: v.astype("float32") for k, v in sd.items()}


@pytest.mark.parametrize("proj", [None, 3])
@pytest.mark.parametrize("reverse", [False, True])
def test_torch_state_dict_import_matches_torch_equations(proj, reverse, rng):
    sd = _state_dict(rng, inp=4, hidden=5, proj=proj, reverse=reverse)
    x = rng.randn(2, 6, 4).astype("float32")
    layer = from_torch_lstm(sd, reverse=reverse, return_sequences=True, return_state=True)
    assert layer.units == 5 and layer.proj_units == proj and layer.go_backwards == reverse
    y, h, c = (np.asarray(t) for t in layer(x))
    ry, rh, rc = torch_lstm_by_hand(sd, x.astype("float64"), "_l0" + ("_reverse" if reverse else ""), reverse)
    np.testing.assert_allclose(y, ry, atol=1e-5)
    np.testing.assert_allclose(h, rh, atol=1e-5)
    np.testing.assert_allclose(c, rc, atol=1e-5)


def test_torch_weight_mapping_is_transpose_and_summed_bias(rng):
    sd = _state_dict(rng, inp=2, hidden=3, proj=2)
    kernel, recurrent, bias, projection = torch_lstm_weights(sd)
    np.testing.assert_array_equal(kernel, sd["weight_ih_l0"].T)
    np.testing.assert_array_equal(recurrent, sd["weight_hh_l0"].T)
    np.testing.assert_allclose(bias, sd["bias_ih_l0"] + sd["bias_hh_l0"])
    np.testing.assert_array_equal(projection, sd["weight_hr_l0"].T)
    assert recurrent.shape == (2, 12)  # (proj_units, 4·units), as PyTorch's proj_size


def test_torch_import_errors(rng):
    sd = _state_dict(rng, inp=2, hidden=3)
    with pytest.raises(KeyError, match="weight_ih_l1"):
        torch_lstm_weights(sd, layer_index=1)
    bad = dict(sd, weight_ih_l0=np.zeros((7, 2), "float32"))
    with pytest.raises(ValueError, match=r"weight_ih_l0 must be \(4·hidden, input\)"):
        torch_lstm_weights(bad)
    no_bias = {k: v for k, v in sd.items() if "bias" not in k}
    np.testing.assert_array_equal(torch_lstm_weights(no_bias)[2], 0.0)


def test_keras_to_ours_and_back(rng):
    x = rng.randn(2, 5, 3).astype("float32")
    theirs = keras.layers.LSTM(4, return_sequences=True, go_backwards=True, dropout=0.1)
    theirs(x)
    ours = from_keras_lstm(theirs)
    assert isinstance(ours, LSTM) and ours.go_backwards and ours.dropout == 0.1
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=1e-5)
    back = to_keras_lstm(ours)
    assert type(back) is keras.layers.LSTM
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(theirs(x)), atol=1e-5)
    fused = from_keras_lstm(theirs, implementation="fused")
    np.testing.assert_allclose(np.asarray(fused(x)), np.asarray(theirs(x)), atol=1e-5)
    assert fused.last_implementation == "fused"


def test_conversion_refusals():
    with pytest.raises(ValueError, match="cannot represent.*use_peepholes"):
        to_keras_lstm(LSTM(3, use_peepholes=True))
    with pytest.raises(TypeError, match="keras.layers.LSTM"):
        from_keras_lstm(LSTM(3))
    built = keras.layers.LSTM(3)
    built.build((None, 2, 2))
    with pytest.raises(ValueError, match="different weights"):
        from_keras_lstm(built, layer_norm=True)
