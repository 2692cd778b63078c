"""What kind of trace a layer call is part of: inside XLA, or building a SavedModel.

The fused path picks its loop (XLA or not) at trace time.  Two facts decide it besides the
layer's own options: whether the call is already inside an XLA-compiled function, and whether
the graph being traced is headed for a SavedModel, which must stay runnable where XLA:CPU JIT
is off (TF Serving's default) and convertible by tools that know no XLA ops (tf2onnx).
"""

from __future__ import annotations

import sys

import tensorflow as tf

#: Modules whose functions trace graphs for export files (Keras' ``model.export`` and its
#: ``ExportArchive``, ONNX/OpenVINO/LiteRT exporters); their traces run outside
#: ``tf.saved_model.save``'s save context.
_EXPORT_MODULE_PREFIXES = ("keras.src.export",)


def in_xla_context() -> bool:
    """Whether the current trace is inside an XLA-compiled function."""
    if tf.executing_eagerly():
        return False
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - TF internals moved
        return False
    return bool(control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()))


def tracing_for_export() -> bool:
    """Whether the current trace builds a graph for an export file: inside
    ``tf.saved_model.save`` (its save context), or called from Keras' export code
    (``model.export``, ``keras.export.ExportArchive``), which traces its endpoints before it
    saves.  Eager calls are never traced for export."""
    if tf.executing_eagerly():
        return False
    try:
        from tensorflow.python.saved_model import save_context
    except ImportError:  # pragma: no cover - TF internals moved
        save_context = None
    if save_context is not None and save_context.in_save_context():
        return True
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_EXPORT_MODULE_PREFIXES):
            return True
        frame = frame.f_back
    return False
