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

__all__ = [
    "DataError",
    "DuplicateNameError",
    "LstmZooError",
    "UnknownNameError",
    "__version__",
    "get_model",
    "get_recipe",
    "list_models",
    "list_recipes",
    "load_plugins",
    "model_info",
    "register_model",
    "register_recipe",
]
