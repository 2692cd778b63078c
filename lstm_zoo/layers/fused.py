"""The fused CPU path: hoisted input projection, XLA recurrence, hand-written backward pass.

Only for the plain LSTM (tanh/sigmoid, no recurrent dropout, no variant; bias optional, any
mask, input dropout applied before the projection).  What makes it faster than stepping the
cell through ``keras.layers.RNN``:

* ``x·W + b`` for all timesteps is one large matmul before the loop (autodiff handles it, so
  its weight gradient is one large matmul too);
* the recurrence (``h·U`` + gates, time-major, ``TensorArray.read(t)``) runs in a
  ``tf.while_loop`` - XLA-compiled for training calls - that also stores the gate activations
  and states when training (inference calls store nothing; see ``layer_uses_xla``);
* the backward pass is a second XLA loop written by hand (``tf.custom_gradient``): per step only
  ``dz_t·Uᵀ`` is in the loop, and ``dU = Σ_t h_{t-1}ᵀ·dz_t`` is a single matmul afterwards.
  Gradients are therefore never taken *across* the XLA boundary (which fails in TF for
  ``TensorList``-carrying loops), so the path works inside ``model.fit`` whether or not the
  model itself is jit-compiled, and exports to SavedModel.

Masking follows ``keras.layers.RNN`` exactly: at a masked step the states keep their previous
values and the output repeats the previous output (zeros if ``zero_output_for_mask``).
"""

from __future__ import annotations

import tensorflow as tf


def _forward(xw, R, h0, c0, mask, zero_output_for_mask, store=True, sequence=True):
    """Time-major recurrence.  ``xw`` (T,B,4H) already holds x·W + b; ``mask`` (T,B,1) bool or None;
    ``zero_output_for_mask`` a scalar bool tensor.  ``mask`` None (static) compiles a program
    without any masking op.  ``store``: also return what the backward
    pass needs (gate activations, states); ``sequence``: also return all outputs.  Returns
    (Y or None, last, h, c, gates, Hs, Cs) (the last three None unless ``store``)."""
    steps = tf.shape(xw)[0]
    xw_ta = tf.TensorArray(xw.dtype, size=steps).unstack(xw)
    mask_ta = None if mask is None else tf.TensorArray(tf.bool, size=steps).unstack(mask)
    dtype = xw.dtype

    def body(t, h, c, y, tas):
        z = xw_ta.read(t) + tf.matmul(h, R)
        zi, zf, zg, zo = tf.split(z, 4, axis=1)
        i, f, g, o = tf.sigmoid(zi), tf.sigmoid(zf), tf.tanh(zg), tf.sigmoid(zo)
        c_new = f * c + i * g
        h_new = o * tf.tanh(c_new)
        if mask_ta is None:  # static: no masking ops at all in the unmasked program
            y_new = h_new
        else:
            m = mask_ta.read(t)
            c_new = tf.where(m, c_new, c)
            y_new = tf.where(m, h_new, tf.where(zero_output_for_mask, tf.zeros_like(y), y))
            h_new = tf.where(m, h_new, h)
        written = []
        if sequence:
            written.append(y_new)
        if store:
            written += [tf.concat([i, f, g, o], axis=1), h_new, c_new]
        tas = tuple(ta.write(t, v) for ta, v in zip(tas, written))
        return t + 1, h_new, c_new, y_new, tas

    tas = tuple(tf.TensorArray(dtype, size=steps) for _ in range(int(sequence) + 3 * int(store)))
    _, h, c, y, tas = tf.while_loop(
        lambda t, *_: t < steps,
        body,
        (tf.constant(0), h0, c0, tf.zeros_like(h0), tas),
        maximum_iterations=steps,
    )
    stacked = [ta.stack() for ta in tas]
    Y = stacked.pop(0) if sequence else None
    gates, Hs, Cs = stacked if store else (None, None, None)
    return Y, y, h, c, gates, Hs, Cs


def _backward(dY, dlast, dh, dc, gates, Hs, Cs, h0, c0, R, mask, zero_output_for_mask):
    """Gradients of (Y, last, h_T, c_T) w.r.t. (xw, R, h0, c0), by hand, time-major."""
    steps = tf.shape(gates)[0]
    h_prev_all = tf.concat([h0[None], Hs[:-1]], axis=0)
    c_prev_all = tf.concat([c0[None], Cs[:-1]], axis=0)
    gates_ta = tf.TensorArray(gates.dtype, size=steps).unstack(gates)
    cp_ta = tf.TensorArray(gates.dtype, size=steps).unstack(c_prev_all)
    dY_ta = tf.TensorArray(gates.dtype, size=steps).unstack(dY)
    mask_ta = None if mask is None else tf.TensorArray(tf.bool, size=steps).unstack(mask)
    R_t = tf.transpose(R)

    def body(k, dh, dc, dy_carry, dz_ta):
        t = steps - 1 - k
        i, f, g, o = tf.split(gates_ta.read(t), 4, axis=1)
        c_prev = cp_ta.read(t)
        gy = dY_ta.read(t) + dy_carry  # total gradient reaching the output y_t
        if mask_ta is None:
            dh_new, dc_new, dh_prev, dc_prev = gy + dh, dc, 0.0, 0.0
            dy_carry = tf.zeros_like(gy)
        else:
            m = tf.cast(mask_ta.read(t), dh.dtype)
            dh_new = m * (gy + dh)
            dy_carry = tf.where(zero_output_for_mask, tf.zeros_like(gy), (1.0 - m) * gy)
            dh_prev = (1.0 - m) * dh
            dc_new = m * dc
            dc_prev = (1.0 - m) * dc
        c_new = f * c_prev + i * g
        tanh_c = tf.tanh(c_new)
        d_o = dh_new * tanh_c
        dc_new = dc_new + dh_new * o * (1.0 - tanh_c * tanh_c)
        dz = tf.concat(
            [
                dc_new * g * i * (1.0 - i),
                dc_new * c_prev * f * (1.0 - f),
                dc_new * i * (1.0 - g * g),
                d_o * o * (1.0 - o),
            ],
            axis=1,
        )
        dh_prev = dh_prev + tf.matmul(dz, R_t)
        dc_prev = dc_prev + dc_new * f
        return k + 1, dh_prev, dc_prev, dy_carry, dz_ta.write(t, dz)

    _, dh0, dc0, _, dz_ta = tf.while_loop(
        lambda k, *_: k < steps,
        body,
        (tf.constant(0), dh, dc, dlast, tf.TensorArray(gates.dtype, size=steps)),
        maximum_iterations=steps,
    )
    dZ = dz_ta.stack()
    dR = tf.tensordot(h_prev_all, dZ, axes=[[0, 1], [0, 1]])
    return dZ, dR, dh0, dc0


_forward_xla = tf.function(_forward, jit_compile=True, autograph=False, reduce_retracing=True)
_backward_xla = tf.function(_backward, jit_compile=True, autograph=False, reduce_retracing=True)


def fused_recurrence(
    xw, R, h0, c0, mask=None, zero_output_for_mask=False, jit=True, training=True, sequence=True
):
    """(Y, last, h_T, c_T) of the plain LSTM over time-major ``xw`` = x·W + b (Y is None
    unless ``sequence``).

    Differentiable w.r.t. ``xw``, ``R``, ``h0``, ``c0`` through the hand-written backward.
    ``training=False`` runs a lighter forward that stores nothing for the backward pass; a
    gradient is still correct (the backward then recomputes the forward first).
    ``jit=False`` runs the same loops without XLA (used to check XLA changes nothing).
    """
    fwd = _forward_xla if jit else _forward
    bwd = _backward_xla if jit else _backward
    zero_output_for_mask = tf.constant(bool(zero_output_for_mask))
    store = bool(training)

    @tf.custom_gradient
    def core(xw, R, h0, c0):
        # stop_gradient: an active tape must not make TF build the jitted function's own
        # gradient (its TensorLists cannot cross the XLA boundary); ``grad`` below is used.
        xw, R, h0, c0 = (tf.stop_gradient(t) for t in (xw, R, h0, c0))
        Y, last, hT, cT, gates, Hs, Cs = fwd(
            xw, R, h0, c0, mask, zero_output_for_mask, store=store, sequence=sequence
        )

        def grad(*upstream):
            refs = ((Y,) if sequence else ()) + (last, hT, cT)
            upstream = [tf.zeros_like(r) if d is None else d for d, r in zip(upstream, refs)]
            if not sequence:
                upstream.insert(0, tf.zeros(tf.concat([tf.shape(xw)[:2], tf.shape(h0)[1:]], 0), xw.dtype))
            dY, dlast, dhT, dcT = upstream
            saved = (gates, Hs, Cs)
            if not store:
                saved = fwd(xw, R, h0, c0, mask, zero_output_for_mask, store=True, sequence=False)[4:]
            return bwd(dY, dlast, dhT, dcT, *saved, h0, c0, R, mask, zero_output_for_mask)

        outputs = ((Y,) if sequence else ()) + (last, hT, cT)
        return outputs, grad

    outputs = core(xw, R, h0, c0)
    return outputs if sequence else (None, *outputs)


def fused_inner_loop(layer, sequences, initial_state, mask, training=False):
    """``keras.layers.RNN.inner_loop`` contract for an lstm_zoo ``LSTM``: (last, outputs, states)."""
    cell = layer.cell
    dtype = sequences.dtype
    x = sequences
    if training and 0.0 < cell.dropout < 1.0:  # variational: one mask for all steps
        x = x * tf.expand_dims(cell.get_dropout_mask(x[:, 0, :]), 1)
    kernel = tf.cast(tf.convert_to_tensor(cell.kernel), dtype)
    recurrent = tf.cast(tf.convert_to_tensor(cell.recurrent_kernel), dtype)
    x = tf.transpose(x, (1, 0, 2))  # time-major
    if mask is not None:
        mask = tf.expand_dims(tf.transpose(tf.cast(mask, tf.bool)), -1)
    if layer.go_backwards:
        x = tf.reverse(x, [0])
        mask = None if mask is None else tf.reverse(mask, [0])
    xw = tf.tensordot(x, kernel, axes=[[2], [0]])
    if cell.use_bias:
        xw = xw + tf.cast(tf.convert_to_tensor(cell.bias), dtype)
    h0, c0 = (tf.cast(s, dtype) for s in initial_state)
    Y, last, hT, cT = fused_recurrence(
        xw, recurrent, h0, c0, mask, bool(layer.zero_output_for_mask), jit=layer_uses_xla(layer, training),
        training=bool(training), sequence=layer.return_sequences,
    )  # fmt: skip
    outputs = tf.transpose(Y, (1, 0, 2)) if layer.return_sequences else last[:, None, :]
    return last, outputs, [hT, cT]


def layer_uses_xla(layer, training=True) -> bool:
    """Whether the recurrence runs under XLA: ``layer.fused_jit`` if set (True/False), else
    only for training calls.

    Measured here (``lstm-zoo bench layer``, process CPU time, B=64 T=100 I=64 H=256): XLA
    saves CPU for forward+backward (hand-written backward, hoisted weight gradients) but the
    XLA inference loop cost ~15% *more* CPU than keras.layers.LSTM, while the same loop
    without XLA is on par.  Inference without XLA also keeps exported graphs runnable by TF
    Serving builds without XLA:CPU JIT.
    """
    choice = getattr(layer, "fused_jit", None)
    return bool(training) if choice is None else bool(choice)
