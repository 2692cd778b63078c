"""The layer inside models: stateful, Bidirectional, stacked/residual stacks, model.fit (with
and without XLA), and round trips through .keras files and SavedModel export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_zoo.layers import LSTM

B, T, F, U = 2, 6, 3, 4


def _x(seed=0):
    return np.random.RandomState(seed).randn(B, T, F).astype("float32")


def _stateful_model():
    inp = keras.Input(batch_shape=(B, None, F))
    out = LSTM(U, stateful=True, return_sequences=True, name="s")(inp)
    return keras.Model(inp, out)


def test_stateful_continues_across_calls_and_resets():
    x = _x()
    model = _stateful_model()
    whole = np.asarray(model(x))
    model.layers[-1].reset_state()
    first, second = np.asarray(model(x[:, :3])), np.asarray(model(x[:, 3:]))
    np.testing.assert_allclose(np.concatenate([first, second], 1), whole, atol=1e-5)
    model.layers[-1].reset_state()
    np.testing.assert_allclose(np.asarray(model(x[:, :3])), first, atol=1e-6)


def test_stateful_keras_file_and_savedmodel(tmp_path):
    x = _x()
    model = _stateful_model()
    expected = np.asarray(model(x))
    model.layers[-1].reset_state()
    model.save(tmp_path / "s.keras")
    loaded = keras.models.load_model(tmp_path / "s.keras")
    assert loaded.layers[-1].stateful
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-6)
    # the state carries over in the loaded model too
    model(x)
    np.testing.assert_allclose(
        np.asarray(loaded(x[:, :2])), np.asarray(model(x[:, :2])), atol=1e-6
    )
    model.layers[-1].reset_state()
    model.export(str(tmp_path / "saved"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "saved"))
    first = np.asarray(served.serve(tf.constant(x[:, :3])))
    second = np.asarray(served.serve(tf.constant(x[:, 3:])))
    np.testing.assert_allclose(np.concatenate([first, second], 1), expected, atol=1e-5)


def test_bidirectional_matches_keras_and_round_trips(tmp_path):
    x = _x()
    x[0, 4:] = 0.0
    models = []
    for cls in (keras.layers.LSTM, LSTM):
        inp = keras.Input((T, F))
        masked = keras.layers.Masking(0.0)(inp)
        y = keras.layers.Bidirectional(cls(U, return_sequences=True))(masked)
        models.append(keras.Model(inp, y))
    models[1].set_weights(models[0].get_weights())
    expected = np.asarray(models[0](x))
    np.testing.assert_allclose(np.asarray(models[1](x)), expected, atol=1e-5)
    bi = models[1].layers[-1]
    assert isinstance(bi.forward_layer, LSTM) and bi.backward_layer.go_backwards
    assert bi.forward_layer.last_implementation == "fused"
    models[1].save(tmp_path / "bi.keras")
    loaded = keras.models.load_model(tmp_path / "bi.keras")
    assert isinstance(loaded.layers[-1].backward_layer, LSTM)
    np.testing.assert_allclose(np.asarray(loaded(x)), expected, atol=1e-5)
    models[1].export(str(tmp_path / "bi_saved"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "bi_saved"))
    np.testing.assert_allclose(np.asarray(served.serve(tf.constant(x))), expected, atol=1e-5)


def test_bidirectional_stateful_round_trips(tmp_path):
    inp = keras.Input(batch_shape=(B, T, F))
    model = keras.Model(inp, keras.layers.Bidirectional(LSTM(U, stateful=True))(inp))
    x = _x()
    first, second = np.asarray(model(x)), np.asarray(model(x))
    assert not np.allclose(first, second)  # state carried over
    model.layers[-1].reset_state()
    model.save(tmp_path / "bs.keras")
    loaded = keras.models.load_model(tmp_path / "bs.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), first, atol=1e-5)
    np.testing.assert_allclose(np.asarray(loaded(x)), second, atol=1e-5)
    model.layers[-1].reset_state()
    model.export(str(tmp_path / "bs_saved"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "bs_saved"))
    np.testing.assert_allclose(np.asarray(served.serve(tf.constant(x))), first, atol=1e-5)
    np.testing.assert_allclose(np.asarray(served.serve(tf.constant(x))), second, atol=1e-5)


def _stack(residual, **kw):
    inp = keras.Input((T, F))
    h = keras.layers.Dense(U)(inp)
    for k in range(2):
        y = LSTM(U, return_sequences=True, **kw)(h)
        h = keras.layers.Add()([h, y]) if residual else y
    return keras.Model(inp, keras.layers.Dense(1)(LSTM(U, **kw)(h)))


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_fused_with_and_without_xla(jit_compile):
    """model.fit works on the fused path whether or not Keras jit-compiles the train step,
    and gives the same updates as the generic path."""
    x, y = _x(), np.ones((B, 1), "float32")
    losses = {}
    for implementation in ("generic", "fused"):
        keras.utils.set_random_seed(0)
        inp = keras.Input((T, F))
        lstm = LSTM(U, implementation=implementation)
        model = keras.Model(inp, keras.layers.Dense(1)(lstm(inp)))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit_compile)
        losses[implementation] = model.fit(x, y, epochs=3, batch_size=B, verbose=0).history["loss"]
        assert lstm.last_implementation == implementation
    assert losses["fused"][-1] < losses["fused"][0]
    np.testing.assert_allclose(losses["fused"], losses["generic"], rtol=1e-4)


def test_residual_stack_round_trips(tmp_path):
    model = _stack(residual=True, use_peepholes=True, layer_norm=True)
    x = _x()
    expected = np.asarray(model(x))
    model.save(tmp_path / "stack.keras")
    np.testing.assert_allclose(
        np.asarray(keras.models.load_model(tmp_path / "stack.keras")(x)), expected, atol=1e-5
    )
    model.export(str(tmp_path / "stack_saved"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "stack_saved"))
    np.testing.assert_allclose(np.asarray(served.serve(tf.constant(x))), expected, atol=1e-5)
