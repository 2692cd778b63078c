"""Which computation path an ``LSTM`` call takes, and why: a pure, testable decision.

Three paths compute the same function (see :mod:`lstm_zoo.layers.cell` for the equations):

* ``"cudnn"``  - ``tf.raw_ops.CudnnRNNV3`` on a GPU (:mod:`lstm_zoo.layers.cudnn`).  Only the
  plain LSTM: tanh/sigmoid, bias, no recurrent dropout, no variant, not unrolled, masks
  strictly right-padded with no empty row.  Input dropout is fine (applied before the op).
* ``"fused"``  - the CPU path (:mod:`lstm_zoo.layers.fused`): input projection hoisted out of
  the loop, XLA-compiled recurrence (see ``fused.layer_uses_xla``), hand-written backward
  pass.  Plain LSTM only (tanh/sigmoid, no recurrent dropout, no variant, not unrolled); any
  mask, bias optional.
* ``"generic"`` - the cell stepped by ``keras.layers.RNN``; everything works here.

``select_implementation`` is pure (no TensorFlow), so the decisions can be tested without a
GPU.  Unlike Keras 3.15, which fails a runtime ``tf.Assert`` when a mask is not right-padded,
``"cudnn"`` with a mask whose padding is unknown at trace time means "cuDNN if the runtime
check passes, else the generic path" (a ``tf.cond``; see ``cudnn.cudnn_inner_loop``), and
a mask known (eagerly) to be unsuitable sends that call to another path instead of failing.
Inside an XLA-compiled function cuDNN is never chosen (its ops cannot be compiled).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lstm_zoo.layers._validation import check_implementation

logger = logging.getLogger("lstm_zoo.layers")

#: What a mask can be known to be at trace time.
MASK_INFOS = ("none", "right_padded", "left_padded", "arbitrary", "empty_row", "unknown")

_VARIANTS = {
    "use_peepholes": False,
    "layer_norm": False,
    "proj_units": None,
    "zoneout_cell": 0.0,
    "zoneout_hidden": 0.0,
    "cell_clip": None,
    "cifg": False,
}


def _activation_name(activation: Any) -> str:
    """'tanh' for 'tanh', keras.activations.tanh, tf.tanh, {'class_name': ..., 'config': 'tanh'}."""
    if isinstance(activation, str):
        return activation
    if isinstance(activation, Mapping):
        inner = activation.get("config", activation.get("class_name", ""))
        return inner if isinstance(inner, str) else str(inner.get("name", ""))
    if activation is None:
        return "linear"
    return getattr(activation, "__name__", type(activation).__name__)


def _is(activation: Any, name: str) -> bool:
    return _activation_name(activation).split(".")[-1] == name


def _plain_lstm_problems(config: Mapping[str, Any]) -> list[str]:
    """Why ``config`` is not the plain tanh/sigmoid LSTM (empty list if it is)."""
    problems = []
    if not _is(config.get("activation", "tanh"), "tanh"):
        problems.append(f"activation is {_activation_name(config.get('activation'))!r}, not 'tanh'")
    if not _is(config.get("recurrent_activation", "sigmoid"), "sigmoid"):
        problems.append(
            "recurrent_activation is "
            f"{_activation_name(config.get('recurrent_activation'))!r}, not 'sigmoid'"
        )
    if config.get("recurrent_dropout", 0.0):
        problems.append(f"recurrent_dropout={config['recurrent_dropout']} (must be 0)")
    for name, default in _VARIANTS.items():
        value = config.get(name, default)
        if value != default:
            problems.append(f"{name}={value!r} (must be {default!r})")
    if config.get("unroll", False):
        problems.append("unroll=True")
    return problems


_BAD_MASKS = ("left_padded", "arbitrary", "empty_row")


def cudnn_problems(
    config: Mapping[str, Any], gpu_available: bool, in_xla: bool = False
) -> list[str]:
    """Every reason cuDNN cannot compute this layer configuration here (empty: it can)."""
    problems = _plain_lstm_problems(config)
    if not config.get("use_bias", True):
        problems.append("use_bias=False (cuDNN always adds a bias)")
    if not gpu_available:
        problems.append("no GPU visible to TensorFlow")
    if in_xla:
        problems.append("called inside an XLA-compiled function (cuDNN ops cannot be compiled)")
    return problems


def fused_problems(config: Mapping[str, Any]) -> list[str]:
    """Every reason the fused CPU path cannot compute this configuration exactly."""
    return _plain_lstm_problems(config)


def select_implementation(
    config: Mapping[str, Any],
    mask_info: str = "none",
    gpu_available: bool = False,
    in_xla: bool = False,
) -> tuple[str, str]:
    """Choose ``"cudnn"``, ``"fused"`` or ``"generic"`` for one call; return ``(path, reason)``.

    Args:
        config: the layer's config (``LSTM.get_config()`` or any mapping with the same keys;
            missing keys take the defaults).  ``config["implementation"]`` is the request.
        mask_info: one of ``MASK_INFOS``: ``"none"`` (no mask), ``"right_padded"``,
            ``"left_padded"``, ``"arbitrary"``, ``"empty_row"`` (a fully masked row) when the
            mask's values are known at trace time (eager), ``"unknown"`` otherwise.
        gpu_available: whether a GPU is visible at trace time.
        in_xla: whether the call is being traced inside an XLA-compiled function.

    Raises:
        ValueError: ``implementation="cudnn"`` or ``"fused"`` was requested but the layer
            configuration or the device cannot honour it; the message lists every reason.
            A *batch* whose mask cuDNN cannot take is not an error: that call runs on the
            generic path (said in the reason and the debug log), so such batches never crash.
    """
    requested = check_implementation(config.get("implementation", "auto"))
    if mask_info not in MASK_INFOS:
        raise ValueError(f"`mask_info` must be one of {MASK_INFOS}, got {mask_info!r}.")
    runtime_note = ""
    if mask_info == "unknown":
        runtime_note = (
            "; mask padding unknown at trace time: a runtime check (tf.cond) uses cuDNN only if "
            "the mask is strictly right-padded with no empty row, else the generic path"
        )
    bad_mask = mask_info in _BAD_MASKS
    mask_words = f"this batch's mask is {mask_info.replace('_', ' ')}, which cuDNN cannot take"

    if requested == "generic":
        return "generic", "implementation='generic' requested"
    if requested == "fused":
        problems = fused_problems(config)
        if problems:
            raise ValueError("implementation='fused' cannot be used: " + "; ".join(problems) + ".")
        return "fused", "implementation='fused' requested"
    cudnn_no = cudnn_problems(config, gpu_available, in_xla)
    if requested == "cudnn":
        if cudnn_no:
            raise ValueError("implementation='cudnn' cannot be used: " + "; ".join(cudnn_no) + ".")
        if bad_mask:
            return "generic", f"implementation='cudnn' requested but {mask_words}"
        return "cudnn", "implementation='cudnn' requested" + runtime_note

    # auto
    if not cudnn_no and not bad_mask:
        return "cudnn", "auto: GPU visible and configuration is exactly cuDNN's LSTM" + runtime_note
    fused_no = fused_problems(config)
    if not fused_no:
        why = "; ".join(cudnn_no) if cudnn_no else mask_words
        return "fused", f"auto: plain LSTM; cuDNN not usable ({why})"
    return "generic", "auto: " + "; ".join(fused_no)


def log_decision(layer_name: str, path: str, reason: str) -> None:
    """DEBUG-log one dispatch decision on the ``lstm_zoo.layers`` logger."""
    logger.debug("LSTM %r uses the %s path: %s", layer_name, path, reason)
