"""Which LSTM path an export traces: portable (no cuDNN, no XLA) or GPU (cuDNN kernels).

A SavedModel holds the kernels chosen when it was traced: one traced while a GPU is visible
holds only cuDNN ops and fails on a CPU server.  :func:`traced_for` sets every LSTM of a model
to the right path for the duration of an export and records which path each one took.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

DEVICES = ("cpu", "gpu")


def _lstm_layers(model: Any) -> list[Any]:
    flatten = getattr(model, "_flatten_layers", None)
    layers = list(flatten(include_self=True, recursive=True)) if flatten else [model]
    return [layer for layer in layers if hasattr(layer, "use_cudnn") or _is_ours(layer)]


def _is_ours(layer: Any) -> bool:
    return hasattr(layer, "implementation") and hasattr(layer, "dispatch_config")


_UNSET = object()


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU in this process."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@contextlib.contextmanager
def traced_for(model: Any, device: str) -> Iterator[list[dict[str, Any]]]:
    """Set every LSTM of ``model`` to a path for ``device`` while tracing; restore afterwards.

    ``"cpu"``: lstm_zoo LSTMs on ``"fused"`` without XLA (``fused_jit=False``: TF Serving
    runs no XLA:CPU JIT by default) where the configuration allows, else ``"generic"``;
    ``keras.layers.LSTM``/``GRU`` with ``use_cudnn=False``.  ``"gpu"``: left on
    ``"auto"``/``use_cudnn="auto"``, which picks cuDNN when a GPU is visible.  Yields a list
    filled (after tracing) with each layer's name and the path it took.
    """
    saved = []
    for layer in _lstm_layers(model):
        if _is_ours(layer):
            saved.append((layer, "implementation", layer.implementation))
            saved.append((layer, "last_implementation", layer.last_implementation))
            layer.last_implementation = None  # set again by this trace if the layer runs
            if device == "cpu" and layer.implementation in ("auto", "cudnn"):
                from lstm_zoo.layers.dispatch import fused_problems

                fused_ok = not fused_problems(layer.dispatch_config())
                layer.implementation = "fused" if fused_ok else "generic"
            if device == "cpu":
                # TF Serving runs no XLA:CPU JIT by default: the fused loop without XLA
                saved.append((layer, "fused_jit", getattr(layer, "fused_jit", _UNSET)))
                layer.fused_jit = False
        else:
            saved.append((layer, "use_cudnn", layer.use_cudnn))
            if device == "cpu":
                layer.use_cudnn = False
    paths: list[dict[str, Any]] = []
    try:
        yield paths
        for layer in dict.fromkeys(layer for layer, _attr, _old in saved):
            if _is_ours(layer):
                # None: the layer itself was not called (e.g. a decoder stepping its cell)
                path = layer.last_implementation or "cell only (layer not called)"
            else:
                path = "generic" if not layer.use_cudnn else "auto"
            paths.append({"layer": layer.name, "class": type(layer).__name__, "path": path})
    finally:
        for layer, attr, old in reversed(saved):
            if old is _UNSET:
                delattr(layer, attr)
            else:
                setattr(layer, attr, old)
