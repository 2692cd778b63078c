"""TF Serving warmup requests: ``assets.extra/tf_serving_warmup_requests``.

TF Serving replays the ``PredictionLog`` records of this TFRecord file when it loads a version,
before the version is marked available, so the first real request does not pay for graph
optimisation and kernel selection.  The records are built with the official
``tensorflow-serving-api`` protos (``tensorflow_serving.apis``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

EXTRA_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
SIGNATURE = "serving_default"


def warmup_path(version_dir: str | Path) -> Path:
    """Where TF Serving looks for the warmup file of one version directory."""
    return Path(version_dir) / EXTRA_DIR / WARMUP_FILE


def build_requests(
    name: str, inputs: Mapping[str, np.ndarray], batch_sizes: Sequence[int] = (1, 0)
) -> list[Any]:
    """``PredictionLog`` protos for ``inputs``: one per batch size (0 = the whole batch).

    Warming up both a single-example and a full batch request covers the two shapes a server
    most often sees first.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    total = len(next(iter(inputs.values())))
    logs = []
    seen: set[int] = set()
    for size in batch_sizes:
        size = total if size in (0, None) else min(size, total)
        if size in seen or size == 0:
            continue
        seen.add(size)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.model_spec.signature_name = SIGNATURE
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value[:size]))
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
    return logs


def write_warmup(version_dir: str | Path, name: str, inputs: Mapping[str, np.ndarray]) -> Path:
    """Write the warmup TFRecord into ``version_dir/assets.extra``; returns its path."""
    import tensorflow as tf

    path = warmup_path(version_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in build_requests(name, inputs):
            writer.write(log.SerializeToString())
    return path


def read_warmup(path: str | Path) -> list[dict[str, np.ndarray]]:
    """Parse a warmup file back into the request inputs it holds (one dict per request)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(
            {k: tf.make_ndarray(v) for k, v in log.predict_log.request.inputs.items()}
        )
    return requests
