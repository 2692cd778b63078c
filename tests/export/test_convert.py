"""Conversions beyond TF Serving, from the tiny export: what converts, and only what runs and
matches is written."""

from __future__ import annotations

import importlib.util

import pytest

from lstm_zoo.convert import ConversionError, convert


@pytest.mark.slow
def test_tflite_needs_select_tf_ops_which_cannot_run_here(tiny_export):
    """Measured: the LSTM loop (TensorList ops, dynamic batch and time) does not lower to TFLite
    builtins; with SELECT_TF_OPS it converts but tf.lite.Interpreter has no Flex delegate."""
    result, _ = tiny_export
    with pytest.raises(ConversionError, match="needs SELECT_TF_OPS.*cannot run here"):
        convert(result.path, "tflite")
    assert not result.path.with_name("1.tflite").exists()


@pytest.mark.slow
@pytest.mark.skipif(not (importlib.util.find_spec("tf2onnx") and importlib.util.find_spec(
    "onnxruntime")), reason="optional extra lstm-zoo[onnx] not installed")
def test_onnx_converts_and_matches(tiny_export):
    import json

    result, _ = tiny_export
    converted = convert(result.path, "onnx")
    assert converted.path == result.path.with_name("1.onnx") and converted.path.stat().st_size
    report = json.loads(converted.path.with_name("1.onnx.json").read_text())
    assert report["runs"] and report["matches"]
    assert set(report["max_abs_diff"]) == {"forecast", "spread"}
    assert max(report["max_abs_diff"].values()) <= 1e-4


def test_unknown_format(tiny_export):
    with pytest.raises(ConversionError, match="format must be one of tflite, onnx"):
        convert(tiny_export[0].path, "coreml")
