"""Weight conversions: ``keras.layers.LSTM`` <-> lstm_zoo ``LSTM``, and PyTorch ``nn.LSTM``.

The plain lstm_zoo LSTM has keras' layout (kernel (I, 4H), recurrent_kernel (H, 4H), bias (4H),
gates i, f, c, o), so the Keras conversions copy arrays.  PyTorch's ``nn.LSTM`` stores
``weight_ih_l{k}`` (4H, I), ``weight_hh_l{k}`` (4H, H or P), ``bias_ih_l{k}`` and
``bias_hh_l{k}`` (4H) with gates i, f, g, o (g = our c), and with ``proj_size=P`` also
``weight_hr_l{k}`` (P, H) applied as h_t = W_hr·(o⊙tanh(c_t)).  So kernel = W_ihᵀ,
recurrent_kernel = W_hhᵀ, bias = b_ih + b_hh, projection_kernel = W_hrᵀ.  No torch import:
state dicts are mappings of names to numpy arrays (``{k: v.numpy() for k, v in sd.items()}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from lstm_zoo.layers.lstm import LSTM

_KERAS_ONLY_KEYS = ("use_cudnn",)


def from_keras_lstm(layer: keras.layers.LSTM, **overrides: Any) -> LSTM:
    """An lstm_zoo ``LSTM`` with ``layer``'s configuration and (if built) weights.

    ``overrides`` change config entries, e.g. ``implementation="fused"``; variants that change
    the weight layout (peepholes, layer_norm, proj_units, cifg) cannot be combined with copied
    weights and raise ``ValueError``.
    """
    if not isinstance(layer, keras.layers.LSTM):
        raise TypeError(f"Expected a keras.layers.LSTM, got {type(layer).__name__}.")
    layout_changing = {"use_peepholes", "layer_norm", "proj_units", "cifg"} & {
        k for k, v in overrides.items() if v not in (False, None)
    }
    if layout_changing and layer.built:
        raise ValueError(
            f"Cannot copy keras.layers.LSTM weights into a layer with {sorted(layout_changing)}: "
            "those variants have different weights."
        )
    config = {k: v for k, v in layer.get_config().items() if k not in _KERAS_ONLY_KEYS}
    config.update(overrides)
    ours = LSTM.from_config(config)
    if layer.built:
        ours.build(_built_input_shape(layer))
        ours.set_weights(layer.get_weights())
    return ours


def to_keras_lstm(layer: LSTM, **overrides: Any) -> keras.layers.LSTM:
    """A ``keras.layers.LSTM`` with ``layer``'s configuration and (if built) weights.

    Raises ``ValueError`` if ``layer`` uses a variant keras cannot compute (peepholes,
    layer_norm, projection, zoneout, cell clipping, CIFG).
    """
    if not isinstance(layer, LSTM):
        raise TypeError(f"Expected an lstm_zoo.layers.LSTM, got {type(layer).__name__}.")
    used = {k: v for k, v in layer.cell.variant_config().items() if v not in (False, None, 0.0)}
    if used:
        raise ValueError(f"keras.layers.LSTM cannot represent these lstm_zoo variants: {used}.")
    config = layer.get_config()
    for key in (*layer.cell.variant_config(), "implementation"):
        config.pop(key, None)
    config.update(overrides)
    theirs = keras.layers.LSTM.from_config(config)
    if layer.built:
        theirs.build(_built_input_shape(layer))
        theirs.set_weights(layer.get_weights())
    return theirs


def _built_input_shape(layer) -> tuple:
    input_dim = layer.cell.kernel.shape[0]
    return (None, None, input_dim)


def torch_lstm_weights(
    state_dict: Mapping[str, Any], layer_index: int = 0, reverse: bool = False
) -> list[np.ndarray]:
    """PyTorch ``nn.LSTM`` arrays -> [kernel, recurrent_kernel, bias(, projection_kernel)].

    ``layer_index`` picks ``..._l{k}``; ``reverse=True`` picks the ``..._reverse`` direction of
    a bidirectional LSTM.  Missing biases (``bias=False`` in torch) become zeros.
    """
    suffix = f"_l{layer_index}" + ("_reverse" if reverse else "")

    def get(name: str) -> np.ndarray | None:
        value = state_dict.get(name + suffix)
        return None if value is None else np.asarray(value)

    w_ih, w_hh = get("weight_ih"), get("weight_hh")
    if w_ih is None or w_hh is None:
        raise KeyError(
            f"state_dict has no 'weight_ih{suffix}'/'weight_hh{suffix}' "
            f"(keys: {sorted(state_dict)})."
        )
    if w_ih.ndim != 2 or w_ih.shape[0] % 4:
        raise ValueError(f"weight_ih{suffix} must be (4·hidden, input), got {w_ih.shape}.")
    hidden = w_ih.shape[0] // 4
    if w_hh.shape[0] != 4 * hidden:
        raise ValueError(f"weight_hh{suffix} must be (4·{hidden}, ·), got {w_hh.shape}.")
    bias = np.zeros(4 * hidden, dtype=w_ih.dtype)
    for name in ("bias_ih", "bias_hh"):
        b = get(name)
        if b is not None:
            bias = bias + b
    weights = [w_ih.T.copy(), w_hh.T.copy(), bias]
    w_hr = get("weight_hr")
    if w_hr is not None:
        if w_hr.shape != (w_hh.shape[1], hidden):
            raise ValueError(
                f"weight_hr{suffix} must be (proj_size={w_hh.shape[1]}, {hidden}), "
                f"got {w_hr.shape}."
            )
        weights.append(w_hr.T.copy())
    return weights


def from_torch_lstm(
    state_dict: Mapping[str, Any],
    layer_index: int = 0,
    reverse: bool = False,
    **layer_kwargs: Any,
) -> LSTM:
    """A built lstm_zoo ``LSTM`` holding one layer/direction of a PyTorch ``nn.LSTM``.

    PyTorch's ``nn.LSTM`` has ``unit_forget_bias``-free zero-initialised semantics and
    ``batch_first`` is irrelevant here (Keras layers are batch-major).  ``go_backwards`` is set
    for ``reverse=True``; other ``layer_kwargs`` go to ``LSTM`` (e.g. ``return_sequences``).
    """
    weights = torch_lstm_weights(state_dict, layer_index, reverse)
    units = weights[0].shape[1] // 4
    proj = weights[1].shape[0] if len(weights) == 4 else None
    layer_kwargs.setdefault("go_backwards", reverse)
    layer = LSTM(units, proj_units=proj, **layer_kwargs)
    layer.build((None, None, weights[0].shape[0]))
    layer.set_weights(weights)
    return layer
