"""The fused CPU path: hoisted input projection, XLA recurrence, hand-written backward pass.

Only for the plain LSTM (tanh/sigmoid, no recurrent dropout, no variant; bias optional, any
mask, input dropout applied before the projection).  What makes it faster than stepping the
cell through ``keras.layers.RNN``:

* ``x·W`` for all timesteps is one large matmul before the loop (autodiff handles it, so
  its weight gradient is one large matmul too); the bias is added inside the loop;
* the recurrence (``h·U`` + gates, time-major, ``TensorArray.read(t)``) runs in a
  ``tf.while_loop`` - XLA-compiled except in graphs traced for export (``layer_uses_xla``),
  with the gates from one tanh over the packed pre-activations under XLA - that also stores
  the gate activations and states when training (inference calls store nothing);
* the backward pass is a second XLA loop written by hand (``tf.custom_gradient``): per step only
  ``dz_t·Uᵀ`` is in the loop, and ``dU = Σ_t h_{t-1}ᵀ·dz_t`` is a single matmul afterwards.
  Gradients are therefore never taken *across* the XLA boundary (which fails in TF for
  ``TensorList``-carrying loops), so the path works inside ``model.fit`` whether or not the
  model itself is jit-compiled, and exports to SavedModel;
* for training the batch is split into slices (``batch_shards``: up to 2 with >= 2 cores)
  whose projections and loops are independent ops that TF's inter-op pool runs concurrently
  (``sharded_recurrence``; exact, rows never interact).

Opt-in, not exact: ``layer.fused_bf16_matmul`` runs every matmul in bfloat16 with float32
state (``layer_matmul_dtype``).  The measured speed of each option is in the README.

Masking follows ``keras.layers.RNN`` exactly: at a masked step the states keep their previous
values and the output repeats the previous output (zeros if ``zero_output_for_mask``).
"""

from __future__ import annotations

import functools
import os

import tensorflow as tf

from lstm_zoo.layers.tracing import in_xla_context, tracing_for_export


def _low_precision_matmul(dtype, matmul_dtype):
    """``a·B`` in ``matmul_dtype`` (operands rounded to it; ``B`` cast once by the caller),
    result back in ``dtype``; plain ``tf.matmul`` when ``matmul_dtype`` is None."""
    if matmul_dtype is None:
        return tf.matmul
    return lambda a, b: tf.cast(tf.matmul(tf.cast(a, matmul_dtype), b), dtype)


def _gate_affine(units, dtype):
    """Per-column ``(scale, shift)`` over the packed ``i, f, c, o`` gates such that
    ``tanh(z * scale) * scale + shift`` is ``sigmoid(z)`` in the i/f/o columns
    (``σ(z) = ½·tanh(½z) + ½``) and ``tanh(z)`` in the candidate columns."""
    half = tf.fill([units], tf.constant(0.5, dtype))
    one, zero = tf.ones([units], dtype), tf.zeros([units], dtype)
    return tf.concat([half, half, one, half], 0), tf.concat([half, half, zero, half], 0)


def _one_tanh_gate_activations(z, units):
    """``[σ(z_i), σ(z_f), tanh(z_c), σ(z_o)]`` of packed pre-activations ``z`` (B, 4H), still
    packed, from one tanh over all of ``z`` (``σ(z) = ½·tanh(½z) + ½``).

    Used where XLA compiles the loop: XLA:CPU fuses this into one vectorised loop, 5x cheaper
    than its logistic and tanh on four column slices (2026-11-29, B=64 H=256, 100 steps: 5.4
    vs 28 ms).  Without XLA the four-slice form is cheaper (fewer TF ops).  The values agree
    to float32 rounding (~2e-7)."""
    scale, shift = _gate_affine(units, z.dtype)
    return tf.tanh(z * scale) * scale + shift


def _forward(
    xw, R, h0, c0, mask, zero_output_for_mask, store=True, sequence=True, matmul_dtype=None,
    whole_tensor_gates=False, bias=None,
):  # fmt: skip
    """Time-major recurrence.  ``xw`` (T,B,4H) holds x·W (+ b unless ``bias`` is given);
    ``mask`` (T,B,1) bool or None;
    ``zero_output_for_mask`` a scalar bool tensor.  ``mask`` None (static) compiles a program
    without any masking op.  ``store``: also return what the backward
    pass needs (gate activations, states); ``sequence``: also return all outputs.
    ``matmul_dtype`` (e.g. ``"bfloat16"``): the per-step ``h·R`` in that precision, state and
    gate math stay in ``xw.dtype``.  ``whole_tensor_gates``: the gates from one tanh (see
    ``_one_tanh_gate_activations``), for loops XLA compiles.  ``bias`` (4H) or None: added
    inside the loop (where XLA fuses it into the gate math) instead of in a separate pass
    over the whole (T,B,4H) projection.  Returns
    (Y or None, last, h, c, gates, Hs, Cs) (the last three None unless ``store``)."""
    steps = tf.shape(xw)[0]
    xw_ta = tf.TensorArray(xw.dtype, size=steps).unstack(xw)
    mask_ta = None if mask is None else tf.TensorArray(tf.bool, size=steps).unstack(mask)
    dtype = xw.dtype
    matmul = _low_precision_matmul(dtype, matmul_dtype)
    R = R if matmul_dtype is None else tf.cast(R, matmul_dtype)
    units = tf.shape(R)[0]  # a tensor: reduce_retracing may trace with unknown shapes

    def body(t, h, c, y, tas):
        z = xw_ta.read(t) + matmul(h, R)
        if bias is not None:
            z = z + bias
        if whole_tensor_gates:
            gates = _one_tanh_gate_activations(z, units)
            i, f, g, o = tf.split(gates, 4, axis=1)
        else:
            zi, zf, zg, zo = tf.split(z, 4, axis=1)
            i, f, g, o = tf.sigmoid(zi), tf.sigmoid(zf), tf.tanh(zg), tf.sigmoid(zo)
            gates = None
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
            written += [tf.concat([i, f, g, o], axis=1) if gates is None else gates, h_new, c_new]
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


def _backward(
    dY, dlast, dh, dc, gates, Hs, Cs, h0, c0, R, mask, zero_output_for_mask, matmul_dtype=None
):
    """Gradients of (Y, last, h_T, c_T) w.r.t. (xw, R, h0, c0), by hand, time-major.
    ``dY`` None: the outputs Y were not returned (only ``last``), no zero tensor is read.
    ``matmul_dtype``: the per-step ``dz·Rᵀ`` in that precision (as the forward's ``h·R``)."""
    steps = tf.shape(gates)[0]
    h_prev_all = tf.concat([h0[None], Hs[:-1]], axis=0)
    c_prev_all = tf.concat([c0[None], Cs[:-1]], axis=0)
    gates_ta = tf.TensorArray(gates.dtype, size=steps).unstack(gates)
    cp_ta = tf.TensorArray(gates.dtype, size=steps).unstack(c_prev_all)
    dY_ta = None if dY is None else tf.TensorArray(gates.dtype, size=steps).unstack(dY)
    mask_ta = None if mask is None else tf.TensorArray(tf.bool, size=steps).unstack(mask)
    R_t = tf.transpose(R if matmul_dtype is None else tf.cast(R, matmul_dtype))
    matmul = _low_precision_matmul(gates.dtype, matmul_dtype)

    def body(k, dh, dc, dy_carry, dz_ta):
        t = steps - 1 - k
        i, f, g, o = tf.split(gates_ta.read(t), 4, axis=1)
        c_prev = cp_ta.read(t)
        gy = dy_carry if dY_ta is None else dY_ta.read(t) + dy_carry  # total gradient at y_t
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
        dh_prev = dh_prev + matmul(dz, R_t)
        dc_prev = dc_prev + dc_new * f
        return k + 1, dh_prev, dc_prev, dy_carry, dz_ta.write(t, dz)

    _, dh0, dc0, _, dz_ta = tf.while_loop(
        lambda k, *_: k < steps,
        body,
        (tf.constant(0), dh, dc, dlast, tf.TensorArray(gates.dtype, size=steps)),
        maximum_iterations=steps,
    )
    dZ = dz_ta.stack()
    dR = _tensordot(h_prev_all, dZ, [[0, 1], [0, 1]], matmul_dtype)
    return dZ, dR, dh0, dc0


def _tensordot(a, b, axes, matmul_dtype=None):
    """``tf.tensordot`` with operands rounded to ``matmul_dtype`` (None: as they are); the
    result in ``a``'s dtype.  Differentiable (autodiff sees the casts)."""
    if matmul_dtype is None:
        return tf.tensordot(a, b, axes=axes)
    low = tf.tensordot(tf.cast(a, matmul_dtype), tf.cast(b, matmul_dtype), axes=axes)
    return tf.cast(low, a.dtype)


def _forward_whole_tensor_gates(*args, **kwargs):
    return _forward(*args, whole_tensor_gates=True, **kwargs)


_forward_xla = tf.function(
    _forward_whole_tensor_gates, jit_compile=True, autograph=False, reduce_retracing=True
)
_backward_xla = tf.function(_backward, jit_compile=True, autograph=False, reduce_retracing=True)


def fused_recurrence(
    xw,
    R,
    h0,
    c0,
    mask=None,
    zero_output_for_mask=False,
    jit=True,
    training=True,
    sequence=True,
    matmul_dtype=None,
    bias=None,
):
    """(Y, last, h_T, c_T) of the plain LSTM over time-major ``xw`` = x·W (+ ``bias``, a
    (4H) tensor added inside the loop, or None when ``xw`` holds it already or there is
    none); Y is None unless ``sequence``.

    Differentiable w.r.t. ``xw``, ``R``, ``h0``, ``c0`` (and ``bias``) through the
    hand-written backward.
    ``training=False`` runs a lighter forward that stores nothing for the backward pass; a
    gradient is still correct (the backward then recomputes the forward first).
    ``jit=False`` runs the same loops without XLA (used to check XLA changes nothing).
    Inference traced for an export (``tracing.tracing_for_export``) has no hand-written
    backward in its graph; gradients there come from TensorFlow's autodiff of the loop.
    ``matmul_dtype="bfloat16"``: its matmuls (``h·R``, ``dz·Rᵀ`` and ``dR``) in bfloat16, the
    state, gates and everything else in ``xw.dtype`` (opt-in; not exact, see ``LSTM``).
    """
    # Without our own XLA function the loop may still be compiled by an enclosing one (a
    # model compiled with jit_compile=True): then the gates take XLA's cheaper form too.
    fwd = _forward_xla if jit else functools.partial(
        _forward, whole_tensor_gates=in_xla_context()
    )
    bwd = _backward_xla if jit else _backward
    zero_output_for_mask = tf.constant(bool(zero_output_for_mask))
    store = bool(training)
    if not training and not jit and tracing_for_export():
        # A serving graph: the forward loop alone.  The hand-written gradient would add a
        # backward loop per layer that serving never runs (~15 % of a speech model's graph);
        # a gradient through the export still works, by TensorFlow's autodiff of the loop.
        Y, last, hT, cT = fwd(
            xw, R, h0, c0, mask, zero_output_for_mask, store=False, sequence=sequence,
            matmul_dtype=matmul_dtype, bias=bias,
        )[:4]  # fmt: skip
        return Y, last, hT, cT

    @tf.custom_gradient
    def core(xw, R, h0, c0, *bias):
        # stop_gradient: an active tape must not make TF build the jitted function's own
        # gradient (its TensorLists cannot cross the XLA boundary); ``grad`` below is used.
        xw, R, h0, c0, *bias = (tf.stop_gradient(t) for t in (xw, R, h0, c0, *bias))
        b = bias[0] if bias else None
        Y, last, hT, cT, gates, Hs, Cs = fwd(
            xw, R, h0, c0, mask, zero_output_for_mask, store=store, sequence=sequence,
            matmul_dtype=matmul_dtype, bias=b,
        )  # fmt: skip

        def grad(*upstream):
            refs = ((Y,) if sequence else ()) + (last, hT, cT)
            upstream = [tf.zeros_like(r) if d is None else d for d, r in zip(upstream, refs)]
            if not sequence:
                upstream.insert(0, None)
            dY, dlast, dhT, dcT = upstream
            saved = (gates, Hs, Cs)
            if not store:
                saved = fwd(
                    xw, R, h0, c0, mask, zero_output_for_mask, store=True, sequence=False,
                    matmul_dtype=matmul_dtype, bias=b,
                )[4:]  # fmt: skip
            dZ, dR, dh0, dc0 = bwd(
                dY, dlast, dhT, dcT, *saved, h0, c0, R, mask, zero_output_for_mask, matmul_dtype
            )
            return (dZ, dR, dh0, dc0) + ((tf.reduce_sum(dZ, axis=[0, 1]),) if bias else ())

        outputs = ((Y,) if sequence else ()) + (last, hT, cT)
        return outputs, grad

    outputs = core(xw, R, h0, c0, *(() if bias is None else (bias,)))
    return outputs if sequence else (None, *outputs)


def _shard_sizes(batch, shards: int):
    """Row counts of ``shards`` contiguous batch slices, as equal as possible (the first
    ``batch % shards`` get one row more); ``batch`` may be a scalar tensor (zero-row slices
    are fine)."""
    base, extra = batch // shards, batch % shards
    return [base + tf.cast(k < extra, base.dtype) if tf.is_tensor(base) else base + int(k < extra)
            for k in range(shards)]  # fmt: skip


def sharded_recurrence(
    x, kernel, bias, R, h0, c0, mask, zero_output_for_mask, shards: int, matmul_dtype=None,
    **kwargs,
):  # fmt: skip
    """(Y, last, h_T, c_T) of the plain LSTM over time-major inputs ``x`` (T,B,I): the input
    projection ``x·W + b`` (``bias`` may be None) and ``fused_recurrence`` run on ``shards``
    independent batch slices, results concatenated.

    The rows of a batch never interact in an LSTM, so this is exact (same ops per row).  The
    slices' loops (forward, and backward through each slice's custom gradient) are independent
    ops in one graph, which TensorFlow's inter-op pool runs concurrently: on a 2-core CPU two
    small-matmul loops can keep both cores busy where one loop's per-step ops are too small to
    split well across threads.  Each slice projects its own rows, so the large (T,B,4H)
    projection is never copied to be split; ``dW``, ``db`` and ``dR`` are summed over slices
    by autodiff.
    """

    def one_slice(x, h0, c0, mask):
        xw = _tensordot(x, kernel, [[2], [0]], matmul_dtype)
        return fused_recurrence(
            xw, R, h0, c0, mask, zero_output_for_mask, matmul_dtype=matmul_dtype, bias=bias,
            **kwargs,
        )  # fmt: skip

    if shards <= 1:
        return one_slice(x, h0, c0, mask)
    batch = x.shape[1] if x.shape[1] is not None else tf.shape(x)[1]
    sizes = _shard_sizes(batch, shards)
    pieces = zip(
        tf.split(x, sizes, axis=1),
        tf.split(h0, sizes, axis=0),
        tf.split(c0, sizes, axis=0),
        [None] * shards if mask is None else tf.split(mask, sizes, axis=1),
    )
    results = [one_slice(*piece) for piece in pieces]
    Y = None if results[0][0] is None else tf.concat([r[0] for r in results], axis=1)
    return (Y, *(tf.concat([r[k] for r in results], axis=0) for k in (1, 2, 3)))


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
    bias = tf.cast(tf.convert_to_tensor(cell.bias), dtype) if cell.use_bias else None
    h0, c0 = (tf.cast(s, dtype) for s in initial_state)
    jit = layer_uses_xla(layer, training, steps_known=x.shape[0] is not None)
    shards, why = batch_shards(layer, x.shape[1], bool(training), jit)
    layer.last_fused_shards = shards
    if layer.last_implementation == "fused" and layer.last_implementation_reason is not None:
        layer.last_implementation_reason += f"; {why}"
    Y, last, hT, cT = sharded_recurrence(
        x, kernel, bias, recurrent, h0, c0, mask, bool(layer.zero_output_for_mask), shards,
        matmul_dtype=layer_matmul_dtype(layer, dtype), jit=jit,
        training=bool(training), sequence=layer.return_sequences,
    )  # fmt: skip
    outputs = tf.transpose(Y, (1, 0, 2)) if layer.return_sequences else last[:, None, :]
    return last, outputs, [hT, cT]


def layer_uses_xla(layer, training: bool = True, steps_known: bool = True) -> bool:
    """Whether the recurrence runs under XLA: ``layer.fused_jit`` if set (True/False);
    otherwise yes for training calls, and for inference calls whose number of timesteps is
    known at trace time (``steps_known``) unless traced for an export file; never by default
    with ``fused_bf16_matmul``.

    XLA with the one-tanh gates (``_one_tanh_gate_activations``) is the fastest float32 loop
    measured here for training and inference at every batch size (2026-11-29, idle 2-core
    machine, ``lstm-zoo bench layer --paths fused,fused+noxla``, wall-clock ratio to
    keras.layers.LSTM, inference: B=64 1.63-1.78x vs 1.41-1.67x without XLA in three runs; B=8
    2.2x vs 1.0x, B=1 2.5x vs 1.5x in one run each).  But XLA compiles
    once per input shape (a fraction of a second per layer): inference over sequences of
    varying length - a graph traced with an unknown number of timesteps, such as batches of
    utterances or sentences - runs the loop without XLA rather than compile for every batch.
    Inference traced for an export (``tf.saved_model.save``, Keras' ``model.export``; see
    ``tracing.tracing_for_export``) runs without XLA: TF Serving runs no XLA:CPU JIT by
    default and converters such as tf2onnx know no XLA ops.  With ``fused_bf16_matmul``
    the default is no XLA at all: XLA:CPU gave the bfloat16 matmuls no speed-up (training CPU
    time 183 ms with XLA, 162 ms without, vs 177 ms float32 with XLA; loaded 2-core machine).
    """
    choice = getattr(layer, "fused_jit", None)
    if choice is not None:
        return bool(choice)
    if getattr(layer, "fused_bf16_matmul", False):
        return False
    if training:
        return True
    return steps_known and not tracing_for_export()


#: Fewest rows a batch shard gets when the batch size is known at trace time.
MIN_SHARD_ROWS = 16
#: Most shards ``auto`` uses (only 2 measured: the development machine has 2 cores).
MAX_AUTO_SHARDS = 2


def _usable_cores() -> int:
    """CPU cores this process may run on, capped by TF's inter-op pool if one was set (loops
    of different shards only run concurrently on different inter-op threads)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    inter_op = tf.config.threading.get_inter_op_parallelism_threads()
    return min(cores, inter_op) if inter_op > 0 else cores


def batch_shards(
    layer, batch: int | None, training: bool = True, jit: bool = False
) -> tuple[int, str]:
    """How many batch slices the fused recurrence runs as concurrent loops, and why.

    ``layer.fused_shards`` if set (an int >= 1; capped at a static batch size).  Otherwise
    (auto): ``min(usable cores, MAX_AUTO_SHARDS)``, and with the batch size known at trace
    time also at most ``batch // MIN_SHARD_ROWS`` (so batch 1 and small batches run one
    loop).  With a batch size unknown at trace time (``model.fit`` on a ``tf.data`` pipeline,
    serving signatures), training calls still use the slices (a batch smaller than the shard
    count leaves some empty, which is correct) but inference calls run one loop: an empty
    slice still steps through every timestep, which cost ~30% at batch 1 (3.5 vs 4.6 ms,
    T=100, H=256), the common serving case.  Inference with ``fused_bf16_matmul`` runs one
    loop: its half-batch bfloat16 matmuls cost ~10% more CPU time than one full-batch loop
    (three benchmark runs, loaded 2-core machine), while training still gained from slices.
    Inference under XLA (``jit``) runs one loop: XLA's matmuls already use both cores, and two
    half-batch XLA loops were no faster (2026-11-29, idle 2-core machine, B=64 T=100 H=256:
    34.8 vs 36.6 ms and 39.1 vs 43.5 ms in two runs) for more CPU time.
    """
    choice = getattr(layer, "fused_shards", None)
    if choice is not None:
        if isinstance(choice, bool) or not isinstance(choice, int) or choice < 1:
            raise ValueError(f"`fused_shards` must be None (auto) or an int >= 1, got {choice!r}.")
        shards = choice if batch is None else max(1, min(choice, batch))
        return shards, f"{shards} batch shard(s) (fused_shards={choice})"
    if not training and getattr(layer, "fused_bf16_matmul", False):
        return 1, "1 batch shard(s) (auto: bfloat16 inference runs one loop)"
    if not training and jit:
        return 1, "1 batch shard(s) (auto: XLA inference runs one loop)"
    if not training and batch is None:
        return 1, "1 batch shard(s) (auto: inference with a batch size unknown at trace time)"
    cores = _usable_cores()
    shards = min(cores, MAX_AUTO_SHARDS)
    rule = f"auto: {cores} usable core(s)"
    if batch is not None:
        shards = max(1, min(shards, batch // MIN_SHARD_ROWS))
        rule += f", batch {batch} (>= {MIN_SHARD_ROWS} rows per shard)"
    return shards, f"{shards} batch shard(s) ({rule})"


def layer_matmul_dtype(layer, dtype) -> str | None:
    """``"bfloat16"`` when ``layer.fused_bf16_matmul`` is set and the layer computes in
    float32 (every matmul of the fused path - input projection, ``h·R``, ``dz·Rᵀ``, weight
    gradients - then rounds its operands and result to bfloat16; state, gates and sums
    stay float32), else None."""
    if getattr(layer, "fused_bf16_matmul", False) and tf.as_dtype(dtype) == tf.float32:
        return "bfloat16"
    return None
