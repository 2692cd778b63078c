"""lstm_zoo: a Keras 3 / TensorFlow model zoo built around one exact, fast LSTM layer.

The registry functions are re-exported here; heavier parts (layers, recipes, export, hub,
tuning) are imported from their own modules so ``import lstm_zoo`` stays light.
"""

from lstm_zoo.errors import DataError, DuplicateNameError, LstmZooError, UnknownNameError
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

__version__ = "0.1.0"

_LAZY = {
    "pull": "lstm_zoo.hub",
    "load_pretrained": "lstm_zoo.hub",
    # lstm_zoo.export(model, base_dir, name, ...): the submodule is itself callable, so this
    # works whether the attribute is the function or (after any import of it) the module
    "export": "lstm_zoo.export",
    "tune": "lstm_zoo.tuning",  # lstm_zoo.tune(recipe, tuner=..., max_trials=...): sweeps
}


def __getattr__(name: str):  # PEP 562: heavy parts load on first use, not on import
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lstm_zoo' has no attribute {name!r}")

__all__ = [
    "DataError",
    "DuplicateNameError",
    "export",
    "LstmZooError",
    "UnknownNameError",
    "__version__",
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
    "tune",
]
