"""What ``lstm-zoo train --distributed`` cannot do yet is refused with a clear error, never
silently trained wrong (sample weights dropped, one of several losses used)."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_zoo.distributed import DistributedConfigError, _arrays, _per_example_loss


def test_sample_weights_are_refused_not_dropped():
    x, y, w = np.zeros((4, 3)), np.zeros(4), np.ones(4)
    assert _arrays((x, y), "train")[0] is x
    with pytest.raises(DistributedConfigError, match="sample weights"):
        _arrays((x, y, w), "train")


def test_datasets_and_multi_output_losses_are_refused():
    import tensorflow as tf

    with pytest.raises(DistributedConfigError, match="in-memory"):
        _arrays(tf.data.Dataset.range(3), "train")
    with pytest.raises(DistributedConfigError, match="log_return, volatility"):
        _per_example_loss({"log_return": "mse", "volatility": "mae"})
    per_example = _per_example_loss("mse")
    values = per_example(tf.zeros((2, 3)), tf.ones((2, 3)))
    assert values.shape == (2,) and np.allclose(values.numpy(), 1.0)
