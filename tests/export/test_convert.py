"""Conversions beyond TF Serving, from the tiny export: what converts, and only what runs and
matches is written."""

from __future__ import annotations

import importlib.util

import pytest

from lstm_zoo.convert import ConversionError, convert


@pytest.mark.slow
def test_tflite_is_written_only_if_it_runs_and_matches(tiny_export):
    """Measured: numeric recipes lower to TFLite builtins (README table); a model that needs
    SELECT_TF_OPS converts but tf.lite.Interpreter has no Flex delegate, so nothing is written."""
    import json

    result, _ = tiny_export
    target = result.path.with_name("1.tflite")
    try:
        converted = convert(result.path, "tflite")
    except ConversionError as exc:
        assert "needs SELECT_TF_OPS" in str(exc) and "cannot run here" in str(exc)
        assert not target.exists()
    else:
        assert converted.path == target and target.stat().st_size
        report = json.loads(target.with_name("1.tflite.json").read_text())
        assert report["runs"] and report["matches"] and report["select_tf_ops"] is False
        assert max(report["max_abs_diff"].values()) <= 1e-4


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
