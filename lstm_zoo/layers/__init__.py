"""lstm_zoo's LSTM layer: one exact layer, several computation paths, many variants.

Public API: :class:`LSTM`, :class:`LSTMCell`, :func:`select_implementation`, and the weight
conversions in :mod:`lstm_zoo.layers.convert`.
"""

from lstm_zoo.layers.cell import LSTMCell
from lstm_zoo.layers.dispatch import select_implementation
from lstm_zoo.layers.lstm import LSTM

__all__ = ["LSTM", "LSTMCell", "select_implementation"]
