"""lstm_zoo's LSTM layer: one exact layer, several computation paths, many variants.

Public API: :class:`LSTM`, :class:`LSTMCell`, :func:`select_implementation`, and the weight
conversions :func:`from_keras_lstm`, :func:`to_keras_lstm`, :func:`torch_lstm_weights`,
:func:`from_torch_lstm` (see :mod:`lstm_zoo.layers.weights`).
"""

from lstm_zoo.layers.cell import LSTMCell
from lstm_zoo.layers.dispatch import select_implementation
from lstm_zoo.layers.lstm import LSTM
from lstm_zoo.layers.weights import (
    from_keras_lstm,
    from_torch_lstm,
    to_keras_lstm,
    torch_lstm_weights,
)

__all__ = [
    "LSTM",
    "LSTMCell",
    "from_keras_lstm",
    "from_torch_lstm",
    "select_implementation",
    "to_keras_lstm",
    "torch_lstm_weights",
]
