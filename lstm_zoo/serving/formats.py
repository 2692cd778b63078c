"""Beyond TF Serving: convert an exported SavedModel to TFLite or ONNX, and check the result.

Both conversions start from the export's ``serving_default`` signature (so pre- and
post-processing come along where the target format can express them) and are checked by
running the converted model on the export's warmup inputs and comparing with the SavedModel.

* TFLite: builtin ops first (the numeric recipes' LSTM loops lower, batch and time dynamic);
  if that fails, ``SELECT_TF_OPS`` (TF kernels inside TFLite).  A ``SELECT_TF_OPS`` model
  needs the Flex delegate, which ``tf.lite.Interpreter`` lacks, so it cannot be checked here
  and is not written (string pre/post-processing: translation, speech).
* ONNX: ``tf2onnx`` (optional extra ``lstm-zoo[onnx]``), checked with ``onnxruntime``.

Only a conversion that runs and matches (atol 1e-4) is written, beside the version directory
as ``BASE/NAME/VERSION.tflite`` or ``VERSION.onnx`` (TF Serving ignores non-numeric entries),
with a ``.json`` report next to it; otherwise :class:`ConversionError` says what was measured.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lstm_zoo.errors import LstmZooError
from lstm_zoo.files import atomic_path, atomic_write_json
from lstm_zoo.serving.warmup import read_warmup, warmup_path

FORMATS = ("tflite", "onnx")


class ConversionError(LstmZooError, RuntimeError):
    """A format the export does not convert to (the message says why)."""


@dataclasses.dataclass
class Conversion:
    """A converted model and what was measured about it."""

    path: Path
    format: str
    note: str
    report: dict[str, Any]


def _samples(version_dir: Path) -> dict[str, np.ndarray]:
    requests = read_warmup(warmup_path(version_dir)) if warmup_path(version_dir).exists() else []
    if not requests:
        raise ConversionError(f"{version_dir} has no warmup requests to check a conversion with")
    return max(requests, key=lambda r: len(next(iter(r.values()))))


def _reference(version_dir: Path, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def _max_diff(want: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]) -> dict[str, Any]:
    diffs: dict[str, Any] = {}
    for key, value in want.items():
        if key not in got:
            diffs[key] = "missing"
        elif np.asarray(value).dtype.kind in "OSU":
            diffs[key] = 0.0 if np.array_equal(np.asarray(got[key], object),
                                               np.asarray(value, object)) else "differs"
        elif np.shape(got[key]) != np.shape(value):
            diffs[key] = f"shape {np.shape(got[key])} != {np.shape(value)}"
        else:
            diffs[key] = float(np.max(np.abs(np.asarray(got[key], np.float64) - value), initial=0))
    return diffs


def _matches(diffs: Mapping[str, Any], atol: float) -> bool:
    return all(isinstance(d, float) and d <= atol for d in diffs.values())


# ---- TFLite --------------------------------------------------------------------------------
def _tflite_bytes(version_dir: Path, select_tf_ops: bool) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(version_dir), signature_keys=["serving_default"]
    )
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    return converter.convert()


def _run_tflite(model: bytes, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=model)
    runner = interpreter.get_signature_runner("serving_default")
    return {k: np.asarray(v) for k, v in runner(**inputs).items()}


def to_tflite(version_dir: Path, inputs: Mapping[str, np.ndarray],
              atol: float) -> tuple[bytes, dict[str, Any]]:
    """Convert (builtins, else SELECT_TF_OPS) and run it; returns (flatbuffer, report)."""
    report: dict[str, Any] = {}
    try:
        model = _tflite_bytes(version_dir, select_tf_ops=False)
        report["select_tf_ops"] = False
    except Exception as exc:  # the converter raises ConverterError with the failing ops
        report["builtins_error"] = _first_lines(exc)
        try:
            model = _tflite_bytes(version_dir, select_tf_ops=True)
        except Exception as exc2:
            raise ConversionError(f"TFLite conversion failed: {_first_lines(exc2)}") from None
        report["select_tf_ops"] = True
    try:
        report["max_abs_diff"] = _max_diff(_reference(version_dir, inputs),
                                           _run_tflite(model, inputs))
        report["runs"] = True
        report["matches"] = _matches(report["max_abs_diff"], atol)
    except Exception as exc:
        report.update(runs=False, matches=False, run_error=_first_lines(exc))
    return model, report


# ---- ONNX ----------------------------------------------------------------------------------
def to_onnx(version_dir: Path, inputs: Mapping[str, np.ndarray], atol: float,
            opset: int = 17) -> tuple[bytes, dict[str, Any]]:
    """Convert with ``python -m tf2onnx.convert`` and run with onnxruntime."""
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        raise ConversionError(
            "ONNX export needs the optional extra: pip install 'lstm-zoo[onnx]' "
            "(tf2onnx and onnxruntime)"
        ) from None
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "model.onnx"
        cmd = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(version_dir),
               "--signature_def", "serving_default", "--opset", str(opset), "--output", str(out)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0 or not out.exists():
            errors = [line for line in proc.stderr.splitlines()
                      if "ERROR" in line or "rror:" in line]
            raise ConversionError("tf2onnx failed: " + " | ".join(errors[-3:] or
                                                                  proc.stderr.splitlines()[-3:]))
        model = out.read_bytes()
    report: dict[str, Any] = {"opset": opset}
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        feed = {i.name: inputs[_onnx_key(i.name, inputs)] for i in session.get_inputs()}
        got = dict(zip([_onnx_key(n, _reference_keys(version_dir)) for n in names],
                       session.run(names, feed), strict=True))
        report["max_abs_diff"] = _max_diff(_reference(version_dir, inputs), got)
        report["runs"] = True
        report["matches"] = _matches(report["max_abs_diff"], atol)
    except Exception as exc:
        report.update(runs=False, matches=False, run_error=_first_lines(exc))
    return model, report


def _reference_keys(version_dir: Path) -> list[str]:
    import tensorflow as tf

    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return list(fn.structured_outputs)


def _onnx_key(name: str, keys: Any) -> str:
    """tf2onnx names signature tensors ``key`` or ``key:0``."""
    base = name.split(":")[0]
    for key in keys:
        if base == key or base.endswith("_" + key) or base.endswith("/" + key):
            return key
    raise KeyError(f"ONNX tensor {name!r} matches none of {list(keys)}")


def _first_lines(exc: BaseException, n: int = 4) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: " + " | ".join(lines[:n])[:600]


# ---- public --------------------------------------------------------------------------------
def convert(version_dir: str | Path, fmt: str, atol: float = 1e-4) -> Conversion:
    """Convert ``BASE/NAME/VERSION`` to ``fmt`` (``"tflite"`` or ``"onnx"``), check it against
    the SavedModel on the warmup inputs, and write ``BASE/NAME/VERSION.FMT`` plus a report."""
    version_dir = Path(version_dir)
    if fmt not in FORMATS:
        raise ConversionError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    inputs = _samples(version_dir)
    model, report = (to_tflite if fmt == "tflite" else to_onnx)(version_dir, inputs, atol)
    note = "needs SELECT_TF_OPS (Flex delegate)" if report.get("select_tf_ops") else (
        "builtin ops only" if fmt == "tflite" else f"opset {report.get('opset')}")
    if not report["runs"]:
        raise ConversionError(
            f"{fmt} conversion of {version_dir} converts ({note}) but cannot run here: "
            f"{report['run_error']}; nothing written"
        )
    if not report["matches"]:
        raise ConversionError(
            f"{fmt} conversion of {version_dir} runs but differs from the SavedModel: "
            f"max |diff| {report['max_abs_diff']} (atol {atol}); nothing written"
        )
    target = version_dir.with_name(f"{version_dir.name}.{fmt}")
    with atomic_path(target) as tmp:
        tmp.write_bytes(model)
    report.update(format=fmt, file=target.name, bytes=len(model), atol=atol)
    atomic_write_json(target.with_name(target.name + ".json"), report)
    note += f"; outputs match the SavedModel (max |diff| {report['max_abs_diff']})"
    return Conversion(target, fmt, note, report)
