"""The fused path's speed options: batch sharding (exact) and bfloat16 in-loop matmuls (opt-in,
approximate), plus the benchmark's path specs that select them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_zoo.bench.layer import parse_path_spec
from lstm_zoo.layers import LSTM, fused

HOLES = [[1, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 1], [1, 1, 1, 0], [1, 1, 0, 0]]


def _outputs_and_grads(layer, x, mask=None, training=True):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = layer(xt, mask=mask, training=training)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        rs = np.random.RandomState(0)
        loss = sum(tf.reduce_sum(o * rs.randn(*o.shape).astype("float32")) for o in outs)
    grads = tape.gradient(loss, [xt, *layer.trainable_weights])
    return [np.asarray(o) for o in outs], [np.asarray(g) for g in grads]


def _pair(units, config, input_shape, rng):
    ref = keras.layers.LSTM(units, use_cudnn=False, **config)
    ours = LSTM(units, implementation="fused", **config)
    ref.build(input_shape)
    ours.build(input_shape)
    ref.set_weights([rng.randn(*w.shape).astype("float32") * 0.6 for w in ref.get_weights()])
    ours.set_weights(ref.get_weights())
    return ref, ours


@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize(
    ("batch", "shards", "config", "masked"),
    [
        (5, 2, {"return_sequences": True}, True),  # 3 + 2 rows, holes and an empty row
        (5, 3, {"return_state": True, "go_backwards": True}, True),  # 2 + 2 + 1
        (5, 2, {"return_sequences": True, "zero_output_for_mask": True, "use_bias": False}, True),
        (4, 4, {"return_sequences": True, "return_state": True}, False),  # one row each
        (1, 3, {"return_state": True}, False),  # capped to the batch: one loop
    ],
)
def test_sharded_fused_matches_keras(batch, shards, config, masked, jit, rng):
    ref, ours = _pair(6, config, (None, 4, 3), rng)
    ours.fused_shards, ours.fused_jit = shards, jit
    x = rng.randn(batch, 4, 3).astype("float32")
    mask = np.array(HOLES[:batch], bool) if masked else None
    ref_outs, ref_grads = _outputs_and_grads(ref, x, mask)
    outs, grads = _outputs_and_grads(ours, x, mask)
    assert ours.last_implementation == "fused"
    assert ours.last_fused_shards == min(shards, batch)
    assert f"{min(shards, batch)} batch shard(s) (fused_shards={shards})" in (
        ours.last_implementation_reason
    )
    for a, b in zip(outs, ref_outs):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    for a, b in zip(grads, ref_grads):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5)


def test_unknown_batch_size_shards_with_empty_slices(rng):
    """Traced with an unknown batch size, the slices split whatever batch arrives - a batch of
    1 leaves a slice empty - and forward and gradients still match keras.layers.LSTM (auto
    sharding does this for training calls)."""
    ref, ours = _pair(5, {"return_sequences": True, "return_state": True}, (None, 4, 3), rng)
    ours.fused_shards = 2
    spec = [tf.TensorSpec([None, 4, 3], tf.float32)]

    def outputs_and_grads(layer):
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                outs = layer(x, training=True)
                loss = sum(tf.reduce_sum(o * o) for o in outs)
            return outs, tape.gradient(loss, [x, *layer.trainable_weights])

        return tf.function(step, input_signature=spec)

    sharded, reference = outputs_and_grads(ours), outputs_and_grads(ref)
    for batch in (1, 2, 7):
        x = tf.constant(rng.randn(batch, 4, 3).astype("float32"))
        (outs, grads), (ref_outs, ref_grads) = sharded(x), reference(x)
        for a, b in zip(outs, ref_outs):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=0)
        for a, b in zip(grads, ref_grads):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5, rtol=1e-5)
    assert ours.last_fused_shards == 2


def test_stateful_sharded_carries_state_per_row(rng):
    config = {"stateful": True, "return_sequences": True}
    ref, ours = _pair(4, config, (3, 4, 2), rng)
    ours.fused_shards = 2
    for _ in range(2):  # the second call starts from the first call's final states
        x = rng.randn(3, 4, 2).astype("float32")
        np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(ref(x)), atol=1e-5, rtol=0)
    assert ours.last_fused_shards == 2


def test_auto_shard_rule(monkeypatch):
    layer = LSTM(3)
    monkeypatch.setattr(fused, "_usable_cores", lambda: 2)
    assert fused.batch_shards(layer, 64)[0] == 2
    assert fused.batch_shards(layer, 31)[0] == 1  # fewer than 16 rows per shard
    assert fused.batch_shards(layer, 1)[0] == 1
    assert fused.batch_shards(layer, None) == (2, "2 batch shard(s) (auto: 2 usable core(s))")
    assert fused.batch_shards(layer, None, training=False)[0] == 1  # serving batch 1: no empty loop
    assert fused.batch_shards(layer, 64, training=False)[0] == 2  # inference traced for export
    assert fused.batch_shards(layer, 64, training=False, jit=True)[0] == 1  # XLA inference
    assert fused.batch_shards(layer, 64, training=True, jit=True)[0] == 2
    layer.fused_bf16_matmul = True  # bfloat16 inference: one loop; training still sharded
    assert fused.batch_shards(layer, 64, training=False)[0] == 1
    assert fused.batch_shards(layer, 64, training=True)[0] == 2
    layer.fused_bf16_matmul = False
    monkeypatch.setattr(fused, "_usable_cores", lambda: 8)
    assert fused.batch_shards(layer, 256)[0] == fused.MAX_AUTO_SHARDS
    monkeypatch.setattr(fused, "_usable_cores", lambda: 1)
    assert fused.batch_shards(layer, 256)[0] == 1
    for bad in (0, -1, 1.5, True, "2"):
        layer.fused_shards = bad
        with pytest.raises(ValueError, match="fused_shards"):
            fused.batch_shards(layer, 8)


def test_bf16_matmul_is_close_but_not_exact(rng):
    x = rng.randn(4, 6, 3).astype("float32")
    ref, ours = _pair(8, {"return_sequences": True}, (None, 6, 3), rng)
    ours.fused_bf16_matmul = True
    assert fused.layer_matmul_dtype(ours, "float32") == "bfloat16"
    assert fused.layer_matmul_dtype(ours, "bfloat16") is None  # already low precision
    assert not fused.layer_uses_xla(ours, training=True)  # bf16: no XLA unless asked
    ref_outs, ref_grads = _outputs_and_grads(ref, x)
    for jit in (True, False):
        ours.fused_jit = jit
        outs, grads = _outputs_and_grads(ours, x)
        deviation = np.abs(outs[0] - ref_outs[0]).max()
        assert 0 < deviation < 2e-2  # the option is in effect, and only rounds the matmuls
        for a, b in zip(grads, ref_grads):
            assert np.linalg.norm(a - b) <= 3e-2 * np.linalg.norm(b)


def test_benchmark_path_specs():
    assert parse_path_spec("fused") == ("fused", {})
    assert parse_path_spec("fused/2") == ("fused", {"fused_shards": 2})
    assert parse_path_spec("fused/1+bf16+noxla") == (
        "fused",
        {"fused_shards": 1, "fused_bf16_matmul": True, "fused_jit": False},
    )
    assert parse_path_spec("fused+xla") == ("fused", {"fused_jit": True})
    assert parse_path_spec("generic") == ("generic", {})
    bad_specs = ("fused/0", "generic/2", "generic+bf16", "cudnn", "fused+fp16", "fused+xla+noxla")
    for bad in bad_specs:
        with pytest.raises(ValueError, match="path spec"):
            parse_path_spec(bad)
