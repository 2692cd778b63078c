"""Path selection: the pure decision function (no GPU needed) and what the layer records/logs."""

import logging

import numpy as np
import pytest

from lstm_zoo.layers import LSTM, select_implementation
from lstm_zoo.layers.masks import describe_mask

PLAIN = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True}


@pytest.mark.parametrize(
    ("config", "mask_info", "gpu", "path", "reason_part"),
    [
        (PLAIN, "none", True, "cudnn", "exactly cuDNN"),
        (PLAIN, "right_padded", True, "cudnn", "exactly cuDNN"),
        (PLAIN, "unknown", True, "cudnn", "runtime check (tf.cond)"),
        (PLAIN, "left_padded", True, "fused", "mask is left padded"),
        (PLAIN, "empty_row", True, "fused", "mask is empty row"),
        (PLAIN, "none", False, "fused", "no GPU visible"),
        ({**PLAIN, "dropout": 0.5}, "none", True, "cudnn", "exactly cuDNN"),
        ({**PLAIN, "use_bias": False}, "none", True, "fused", "use_bias=False"),
        ({**PLAIN, "recurrent_dropout": 0.1}, "none", True, "generic", "recurrent_dropout=0.1"),
        ({**PLAIN, "unroll": True}, "none", True, "generic", "unroll=True"),
        ({**PLAIN, "activation": "relu"}, "none", True, "generic", "activation is 'relu'"),
        ({**PLAIN, "recurrent_activation": "hard_sigmoid"}, "none", False, "generic", "hard_sigmoid"),
        ({**PLAIN, "use_peepholes": True}, "none", True, "generic", "use_peepholes=True"),
        ({**PLAIN, "layer_norm": True}, "none", True, "generic", "layer_norm=True"),
        ({**PLAIN, "proj_units": 8}, "none", True, "generic", "proj_units=8"),
        ({**PLAIN, "zoneout_cell": 0.1}, "none", True, "generic", "zoneout_cell=0.1"),
        ({**PLAIN, "zoneout_hidden": 0.1}, "none", True, "generic", "zoneout_hidden=0.1"),
        ({**PLAIN, "cell_clip": 3.0}, "none", True, "generic", "cell_clip=3.0"),
        ({**PLAIN, "cifg": True}, "none", True, "generic", "cifg=True"),
        ({**PLAIN, "implementation": "generic"}, "none", True, "generic", "'generic' requested"),
        ({**PLAIN, "implementation": "fused"}, "none", True, "fused", "'fused' requested"),
        ({**PLAIN, "implementation": "cudnn"}, "unknown", True, "cudnn", "runtime check"),
        ({**PLAIN, "implementation": "cudnn"}, "left_padded", True, "generic", "cannot take"),
    ],
)
def test_select_implementation(config, mask_info, gpu, path, reason_part):
    got_path, reason = select_implementation(config, mask_info, gpu)
    assert got_path == path
    assert reason_part in reason


def test_config_from_layer_accepts_callables_and_serialized_activations():
    import keras

    layer = LSTM(3, activation=keras.activations.tanh)
    assert select_implementation(layer.get_config(), "none", True)[0] == "cudnn"
    assert select_implementation(layer.dispatch_config(), "none", False)[0] == "fused"


@pytest.mark.parametrize(
    ("config", "gpu", "message"),
    [
        (PLAIN, False, "implementation='cudnn' cannot be used: no GPU visible to TensorFlow."),
        (
            {**PLAIN, "recurrent_dropout": 0.2, "use_bias": False},
            True,
            "implementation='cudnn' cannot be used: recurrent_dropout=0.2 (must be 0); "
            "use_bias=False (cuDNN always adds a bias).",
        ),
        (
            {**PLAIN, "layer_norm": True},
            True,
            "implementation='cudnn' cannot be used: layer_norm=True (must be False).",
        ),
    ],
)
def test_cudnn_request_raises_with_exact_reason(config, gpu, message):
    with pytest.raises(ValueError) as info:
        select_implementation({**config, "implementation": "cudnn"}, "none", gpu)
    assert str(info.value) == message


def test_fused_request_raises_with_reason():
    with pytest.raises(ValueError, match=r"'fused' cannot be used: cifg=True \(must be False\)"):
        select_implementation({**PLAIN, "cifg": True, "implementation": "fused"})


def test_cudnn_layer_on_cpu_raises_at_call_not_silently():
    layer = LSTM(3, implementation="cudnn")
    with pytest.raises(ValueError, match="no GPU visible"):
        layer(np.zeros((1, 2, 2), "float32"))


def test_layer_records_and_logs_decision(caplog):
    x = np.zeros((2, 3, 2), "float32")
    caplog.set_level(logging.DEBUG, logger="lstm_zoo.layers")
    layer = LSTM(3, name="probe")
    layer(x)
    assert layer.last_implementation == "fused"
    assert "no GPU visible" in layer.last_implementation_reason
    records = [r for r in caplog.records if r.name == "lstm_zoo.layers"]
    assert records and "'probe' uses the fused path" in records[-1].getMessage()
    peep = LSTM(3, use_peepholes=True)
    peep(x)
    assert (peep.last_implementation, peep.last_implementation_reason) == (
        "generic",
        "auto: use_peepholes=True (must be False)",
    )


@pytest.mark.parametrize(
    ("rows", "info"),
    [
        (None, "none"),
        ([[1, 1, 0], [1, 1, 1]], "right_padded"),
        ([[0, 1, 1], [1, 1, 1]], "left_padded"),
        ([[1, 0, 1], [1, 1, 1]], "arbitrary"),
        ([[1, 1, 0], [0, 0, 0]], "empty_row"),
    ],
)
def test_describe_mask_eager(rows, info):
    import tensorflow as tf

    mask = None if rows is None else tf.constant(np.array(rows, bool))
    assert describe_mask(mask) == info


def test_describe_mask_in_graph_is_unknown():
    import tensorflow as tf

    seen = []
    tf.function(lambda m: seen.append(describe_mask(m)) or m)(tf.constant([[True]]))
    assert seen == ["unknown"]


def test_bad_mask_info_rejected():
    with pytest.raises(ValueError, match="mask_info"):
        select_implementation(PLAIN, "sideways", False)


def test_xla_context_rules_out_cudnn():
    assert select_implementation(PLAIN, "none", True, in_xla=True)[0] == "fused"
    with pytest.raises(ValueError, match="inside an XLA-compiled function"):
        select_implementation({**PLAIN, "implementation": "cudnn"}, "none", True, in_xla=True)


def test_layer_detects_xla_context(monkeypatch):
    import tensorflow as tf

    from lstm_zoo.layers import lstm

    monkeypatch.setattr(lstm, "_gpu_available", lambda: True)
    layer = LSTM(3)
    assert layer.supports_jit is False  # like keras.layers.LSTM when cuDNN is possible
    x = tf.zeros((1, 2, 2))
    layer.build(x.shape)
    tf.function(layer, jit_compile=True).get_concrete_function(x)
    assert layer.last_implementation == "fused"
    assert "XLA-compiled" in layer.last_implementation_reason
