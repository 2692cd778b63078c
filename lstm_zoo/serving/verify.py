"""Check an export the way a server sees it: TensorFlow only, no lstm_zoo, no Keras objects.

:func:`verify_export` runs a separate Python process that imports TensorFlow (and the
``tensorflow_serving`` protos, to parse the warmup file) but never ``lstm_zoo`` — it asserts
``'lstm_zoo' not in sys.modules`` — loads the SavedModel, calls ``serving_default`` on the
sample inputs and replays every warmup request.  The parent compares the outputs with the Keras
model's and runs ``saved_model_cli show --all``.  :func:`graph_op_types` lists every op type in
a SavedModel (functions included) so a portable export can prove it holds no cuDNN kernel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lstm_zoo.errors import LstmZooError


class VerificationError(LstmZooError, AssertionError):
    """An export that does not load, run or match the Keras model in a TensorFlow-only process."""


def graph_op_types(version_dir: str | Path) -> tuple[set[str], bool]:
    """``(op types, has_xla_must_compile)`` over the graph and every function of a SavedModel.

    Read from ``saved_model.pb`` directly, so nothing is loaded or run.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(version_dir) / "saved_model.pb").read_bytes())
    ops: set[str] = set()
    xla = False
    for meta in proto.meta_graphs:
        nodes = list(meta.graph_def.node)
        for function in meta.graph_def.library.function:
            nodes.extend(function.node_def)
            attr = function.attr.get("_XlaMustCompile")
            xla = xla or bool(attr is not None and attr.b)
        for node in nodes:
            ops.add(node.op)
            attr = node.attr.get("_XlaMustCompile")
            xla = xla or bool(attr is not None and attr.b)
    return ops, xla


def cudnn_ops(op_types: set[str]) -> list[str]:
    """The cuDNN-only op types among ``op_types`` (they have no CPU kernel)."""
    return sorted(op for op in op_types if op.startswith("Cudnn"))


# Runs in the child: TensorFlow + numpy + tensorflow_serving protos only.
_CHILD = r"""
import json, os, sys
import numpy as np
import tensorflow as tf

version_dir, work = sys.argv[1], sys.argv[2]
with open(os.path.join(work, "inputs.json")) as f:
    keys = json.load(f)
inputs = {k: tf.io.parse_tensor(tf.io.read_file(os.path.join(work, f"in_{i}.pb")), dt)
          for i, (k, dt) in enumerate(keys)}
loaded = tf.saved_model.load(version_dir)
fn = loaded.signatures["serving_default"]
spec = lambda specs: {k: [v.dtype.name, v.shape.as_list()] for k, v in specs.items()}
report = {"signature": {"inputs": spec(fn.structured_input_signature[1]),
                        "outputs": spec(fn.structured_outputs)}}
outputs = fn(**inputs)
report["outputs"] = sorted(outputs)
for i, key in enumerate(sorted(outputs)):
    tf.io.write_file(os.path.join(work, f"out_{i}.pb"), tf.io.serialize_tensor(outputs[key]))
    report.setdefault("output_dtypes", {})[key] = outputs[key].dtype.name
warmup = os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
report["warmup_requests"] = 0
if os.path.exists(warmup):
    from tensorflow_serving.apis import prediction_log_pb2
    for record in tf.data.TFRecordDataset(warmup):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        args = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        out = loaded.signatures[request.model_spec.signature_name or "serving_default"](**args)
        batch = next(iter(args.values())).shape[0]
        bad = [k for k, v in out.items() if v.shape[0] != batch]
        if bad:
            raise SystemExit(f"warmup request gave outputs {bad} without batch size {batch}")
        report["warmup_requests"] += 1
report["lstm_zoo_imported"] = "lstm_zoo" in sys.modules or any(
    m.startswith("lstm_zoo.") for m in sys.modules)
report["keras_imported"] = "keras" in sys.modules
with open(os.path.join(work, "report.json"), "w") as f:
    json.dump(report, f)
"""


def _start(cmd: list[str], cwd: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, what: str, timeout: float = 600) -> str:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise VerificationError(f"{what} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-15:])
        raise VerificationError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return out


def _child_env(hide_gpus: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if hide_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""  # a portable export must run on a CPU-only server
    return env


def _saved_model_cli_cmd(version_dir: str | Path) -> list[str]:
    cli = shutil.which("saved_model_cli") or str(Path(sys.executable).with_name("saved_model_cli"))
    return [cli, "show", "--all", "--dir", str(Path(version_dir).resolve())]


def run_in_tensorflow_process(
    version_dir: str | Path, inputs: Mapping[str, np.ndarray], hide_gpus: bool = True,
    also_saved_model_cli: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Call ``serving_default`` on ``inputs`` in a fresh TensorFlow-only process.

    Returns ``(outputs, report)``; the report holds the signature as loaded, the number of
    warmup requests replayed and whether ``lstm_zoo``/``keras`` were imported there.  With
    ``also_saved_model_cli`` it runs ``saved_model_cli show --all`` at the same time (both
    processes spend most of their time importing TensorFlow) and adds its output as
    ``report["saved_model_cli"]``.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="lstm_zoo_verify_") as work:
        keys = []
        for i, (key, value) in enumerate(inputs.items()):
            tensor = tf.constant(value)
            keys.append([key, tensor.dtype.name])
            tf.io.write_file(os.path.join(work, f"in_{i}.pb"), tf.io.serialize_tensor(tensor))
        Path(work, "inputs.json").write_text(json.dumps(keys))
        # -I: isolated mode (no PYTHONPATH, no user site, script dir not on sys.path); cwd is
        # the scratch folder, so nothing of the repo can shadow a module.
        cmd = [sys.executable, "-I", "-c", _CHILD, str(Path(version_dir).resolve()), work]
        child = _start(cmd, work, _child_env(hide_gpus))
        cli = _start(_saved_model_cli_cmd(version_dir), work, _child_env(False)) \
            if also_saved_model_cli else None
        try:
            _finish(child, "loading the export in a TensorFlow-only process")
        finally:
            cli_out = _finish(cli, "saved_model_cli show --all") if cli is not None else None
        report = json.loads(Path(work, "report.json").read_text())
        if cli_out is not None:
            report["saved_model_cli"] = cli_out
        outputs = {}
        for i, key in enumerate(report["outputs"]):
            raw = tf.io.read_file(os.path.join(work, f"out_{i}.pb"))
            dtype = tf.as_dtype(report["output_dtypes"][key])
            outputs[key] = tf.io.parse_tensor(raw, dtype).numpy()
    return outputs, report


def compare_outputs(
    expected: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray], atol: float = 1e-4
) -> dict[str, float]:
    """Max absolute difference per output key; raises :class:`VerificationError` past ``atol``.

    String outputs must match exactly (reported as 0.0 or raised).
    """
    if set(expected) != set(actual):
        raise VerificationError(
            f"export outputs {sorted(actual)} differ from the model's {sorted(expected)}"
        )
    diffs = {}
    for key, want in expected.items():
        got = actual[key]
        if np.shape(got) != np.shape(want):
            raise VerificationError(
                f"output {key!r}: export gave shape {np.shape(got)}, the model {np.shape(want)}"
            )
        if np.asarray(want).dtype.kind in "OSU":
            if not np.array_equal(np.asarray(got, dtype=object), np.asarray(want, dtype=object)):
                raise VerificationError(f"output {key!r}: export {got!r} != model {want!r}")
            diffs[key] = 0.0
            continue
        diff = float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)),
                            initial=0.0))
        if not diff <= atol:
            raise VerificationError(
                f"output {key!r}: export differs from the Keras model by {diff:.3g} > {atol}"
            )
        diffs[key] = diff
    return diffs


def verify_export(
    version_dir: str | Path,
    inputs: Mapping[str, np.ndarray],
    expected: Mapping[str, np.ndarray],
    *,
    atol: float = 1e-4,
    hide_gpus: bool = True,
) -> dict[str, Any]:
    """Load ``version_dir`` without lstm_zoo, compare with ``expected``, replay warmup, run
    ``saved_model_cli``; returns a JSON-friendly report or raises :class:`VerificationError`."""
    outputs, report = run_in_tensorflow_process(
        version_dir, inputs, hide_gpus=hide_gpus, also_saved_model_cli=True
    )
    if report["lstm_zoo_imported"]:
        raise VerificationError("the verification process imported lstm_zoo; it must not")
    diffs = compare_outputs(expected, outputs, atol=atol)
    cli_signatures = re.findall(r"signature_def\['([^']+)'\]", report["saved_model_cli"])
    if "serving_default" not in cli_signatures:
        raise VerificationError("saved_model_cli show --all does not list serving_default")
    return {
        "tensorflow_only_process": True,
        "keras_imported": report["keras_imported"],
        "max_abs_diff": diffs,
        "atol": atol,
        "samples": int(len(next(iter(inputs.values())))),
        "warmup_requests_replayed": report["warmup_requests"],
        "signature": report["signature"],
        "saved_model_cli_signatures": cli_signatures,
    }
