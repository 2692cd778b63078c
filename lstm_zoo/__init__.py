"""lstm_zoo: a Keras 3 / TensorFlow model zoo built around one exact, fast LSTM layer.

The registry functions are re-exported here; the heavier entry points (training, export,
pretrained models, sweeps) load on first use, so ``import lstm_zoo`` stays light and imports
no TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

from lstm_zoo._version import __version__
from lstm_zoo.errors import (
    DataError,
    DuplicateNameError,
    LstmZooError,
    UnknownNameError,
)
from lstm_zoo.registry import (
    get_model,
    get_recipe,
    list_models,
    list_recipes,
    load_plugins,
    model_info,
    register_model,
    register_recipe,
)

# public name -> the module that defines it (PEP 562: imported on first use)
_LAZY = {
    "train": "lstm_zoo.training.driver",
    "evaluate": "lstm_zoo.training.driver",
    "export": "lstm_zoo.serving.savedmodel",
    "pull": "lstm_zoo.hub.pretrained",
    "load_pretrained": "lstm_zoo.hub.pretrained",
    "tune": "lstm_zoo.tuning.sweep",
    "from_pretrained": "lstm_zoo.hub.task",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lstm_zoo' has no attribute {name!r}")


__all__ = [
    "DataError",
    "DuplicateNameError",
    "LstmZooError",
    "UnknownNameError",
    "__version__",
    "evaluate",
    "export",
    "from_pretrained",
    "get_model",
    "get_recipe",
    "list_models",
    "list_recipes",
    "load_plugins",
    "load_pretrained",
    "model_info",
    "pull",
    "register_model",
    "register_recipe",
    "train",
    "tune",
]
