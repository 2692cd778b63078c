"""Keras internals with no public API in Keras 3 (checked against 3.15).

* ``DropoutRNNCell``: the mixin ``keras.layers.LSTMCell`` uses to draw one dropout mask per
  sequence (variational dropout).  :class:`lstm_zoo.layers.LSTMCell` uses the same mixin so its
  masks, seeds and ``get_config`` match Keras' cell exactly.
* ``squeeze_or_expand_to_same_rank``: how ``keras.losses.Loss.__call__`` aligns ``y_true`` and
  ``y_pred`` before reducing.  The multi-worker loop recomputes that call without the final
  division (:mod:`lstm_zoo.training.distributed.losses`) and must align shapes identically.
"""

try:
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell
    from keras.src.losses.loss import squeeze_or_expand_to_same_rank
except ImportError as exc:  # pragma: no cover - keras moved them
    raise ImportError(
        f"lstm_zoo needs keras internals that this keras version moved ({exc}); "
        "install keras>=3.10,<4 as pyproject.toml pins"
    ) from exc

__all__ = ["DropoutRNNCell", "squeeze_or_expand_to_same_rank"]
