"""Shared fixtures for the LSTM layer tests: tiny shapes, fixed seeds, a NumPy reference LSTM."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.RandomState(1234)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _ln(x, gamma, beta=0.0, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def reference_lstm(weights, x, config=None, mask=None, h0=None, c0=None, go_backwards=False):
    """Independent NumPy LSTM (inference mode) written from the papers' equations.

    ``weights``: dict name -> array (kernel, recurrent_kernel, bias, input_peephole, ...).
    Returns (outputs (B,T,P), h, c) with keras.layers.RNN masking semantics.
    """
    cfg = {"use_peepholes": False, "layer_norm": False, "proj_units": None, "zoneout_cell": 0.0,
           "zoneout_hidden": 0.0, "cell_clip": None, "cifg": False, **(config or {})}
    W, U = weights["kernel"], weights["recurrent_kernel"]
    b = weights.get("bias", 0.0)
    units = weights["kernel"].shape[1] // (3 if cfg["cifg"] else 4)
    batch, steps, _ = x.shape
    hidden = cfg["proj_units"] or units
    h = np.zeros((batch, hidden)) if h0 is None else h0
    c = np.zeros((batch, units)) if c0 is None else c0
    y = np.zeros((batch, hidden))
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    outs = []
    for t in order:
        zx, zh = x[:, t] @ W, h @ U
        if cfg["layer_norm"]:
            g = 3 if cfg["cifg"] else 4
            zx = np.concatenate([_ln(p, q) for p, q in zip(np.split(zx, g, 1), np.split(weights["input_norm_gamma"], g))], 1)
            zh = np.concatenate([_ln(p, q) for p, q in zip(np.split(zh, g, 1), np.split(weights["recurrent_norm_gamma"], g))], 1)
        z = zx + zh + b
        if cfg["cifg"]:
            zf, zc, zo = np.split(z, 3, 1)
        else:
            zi, zf, zc, zo = np.split(z, 4, 1)
        if cfg["use_peepholes"]:
            zf = zf + weights["forget_peephole"] * c
            if not cfg["cifg"]:
                zi = zi + weights["input_peephole"] * c
        f = _sigmoid(zf)
        i = 1 - f if cfg["cifg"] else _sigmoid(zi)
        c_new = f * c + i * np.tanh(zc)
        if cfg["cell_clip"]:
            c_new = np.clip(c_new, -cfg["cell_clip"], cfg["cell_clip"])
        if cfg["use_peepholes"]:
            zo = zo + weights["output_peephole"] * c_new
        o = _sigmoid(zo)
        c_show = _ln(c_new, weights["cell_norm_gamma"], weights["cell_norm_beta"]) if cfg["layer_norm"] else c_new
        h_new = o * np.tanh(c_show)
        if cfg["proj_units"]:
            h_new = h_new @ weights["projection_kernel"]
        zc_, zh_ = cfg["zoneout_cell"], cfg["zoneout_hidden"]
        c_new = zc_ * c + (1 - zc_) * c_new
        h_new = zh_ * h + (1 - zh_) * h_new
        m = np.ones((batch, 1), bool) if mask is None else mask[:, t : t + 1]
        c = np.where(m, c_new, c)
        y = np.where(m, h_new, y)
        h = np.where(m, h_new, h)
        outs.append(y)
    return np.stack(outs, 1), h, c


@pytest.fixture
def np_lstm():
    return reference_lstm


def named_weights(layer):
    """{short name: numpy array} of a layer's weights."""
    return {w.path.split("/")[-1]: np.asarray(w) for w in layer.weights if w.trainable}


@pytest.fixture
def weights_of():
    return named_weights


@pytest.fixture
def randomize():
    """Set every weight of a built layer to N(0, 0.5²) (peepholes, LN gammas included)."""

    def apply(layer, seed=0):
        r = np.random.RandomState(seed)
        layer.set_weights([(r.randn(*w.shape) * 0.5).astype(w.dtype) for w in layer.get_weights()])
        return layer

    return apply
