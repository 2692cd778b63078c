"""Conversions beyond TF Serving, from the tiny export: what converts, and only what runs and
matches is written."""

from __future__ import annotations

import importlib.util

import pytest

from lstm_zoo.serving.formats import ConversionError, convert


def _private_copy(tiny_export, tmp_path):
    """A copy of the shared export: conversions write beside the version directory, and the
    session-wide export must stay exactly as TF Serving would see it for the other tests."""
    import shutil

    result, _ = tiny_export
    version_dir = tmp_path / result.path.parent.name / result.path.name
    shutil.copytree(result.path, version_dir)
    return version_dir


@pytest.mark.slow
def test_tflite_is_written_only_if_it_runs_and_matches(tiny_export, tmp_path):
    """Measured: numeric recipes lower to TFLite builtins (README table); a model that needs
    SELECT_TF_OPS converts but tf.lite.Interpreter has no Flex delegate, so nothing is written."""
    import json

    version_dir = _private_copy(tiny_export, tmp_path)
    target = version_dir.with_name("1.tflite")
    try:
        converted = convert(version_dir, "tflite")
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
def test_onnx_converts_and_matches(tiny_export, tmp_path):
    import json

    version_dir = _private_copy(tiny_export, tmp_path)
    converted = convert(version_dir, "onnx")
    assert converted.path == version_dir.with_name("1.onnx") and converted.path.stat().st_size
    report = json.loads(converted.path.with_name("1.onnx.json").read_text())
    assert report["runs"] and report["matches"]
    assert set(report["max_abs_diff"]) == {"forecast", "spread"}
    assert max(report["max_abs_diff"].values()) <= 1e-4


def test_unknown_format(tiny_export):
    with pytest.raises(ConversionError, match="format must be one of tflite, onnx"):
        convert(tiny_export[0].path, "coreml")
