"""A multi-step, multivariate LSTM forecaster that takes raw history and returns raw forecasts.

Architecture::

    history [batch, lookback, features]  (raw units)
      -> Normalization (mean/variance fitted on the training split, constants in the model)
      -> LSTM x depth (lstm_zoo.layers.LSTM; every variant switch is passed through)
      -> Dropout -> Dense(horizon * targets) -> Reshape [batch, horizon, targets]
      (+ the last observed value of each target, when ``target_index`` is given: the network
       then learns the change from "now", so it starts from the persistence forecast)
      -> Normalization(invert=True) with the targets' training statistics  (raw units again)
      -> [batch, horizon] when ``squeeze_targets`` and there is a single target
    forecast

Only built-in Keras layers and the registered lstm_zoo LSTM are used, so the model saves to
``.keras``, loads in safe mode and exports to TF Serving with its preprocessing inside.  Not
registered here: recipes (weather, finance) register their own names around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lstm_zoo.models.stack import accepts_lstm_options, lstm_stack

INPUT_NAME = "history"
OUTPUT_NAME = "forecast"


@accepts_lstm_options
def build_forecaster(
    *,
    lookback: int,
    n_features: int,
    horizon: int,
    n_targets: int = 1,
    input_mean: Sequence[float] | None = None,
    input_variance: Sequence[float] | None = None,
    target_mean: Sequence[float] | None = None,
    target_variance: Sequence[float] | None = None,
    squeeze_targets: bool = False,
    target_index: Sequence[int] | None = None,
    units: int = 64,
    depth: int = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    head_dropout: float = 0.0,
    name: str = "lstm_forecaster",
    **lstm_options: Any,
) -> Any:
    """Build the forecaster (a functional ``keras.Model``) with input ``history`` and output
    ``forecast``.

    ``input_mean``/``input_variance`` (per feature) and ``target_mean``/``target_variance``
    (per target) are the training-split statistics; without them the model works on
    already-scaled data.  ``proj_units`` of 0 or None means no projection.  The LSTM switches
    (``layer_norm``, ``use_peepholes``, ``proj_units``, zoneout, ``cifg`` ...) are passed to
    every LSTM layer so sweeps can search over them.

    ``target_index`` (the position of each target among the input features) adds a skip
    connection from the last observed target values to every forecast step, built from
    built-in layers (a frozen one-hot ``Dense`` picks the columns) so it stays serializable.
    It needs the targets' statistics to equal those of their input columns (fit both on the
    same training rows, as :func:`lstm_zoo.data.timeseries.window_series` does).
    """
    import keras
    import numpy as np


    for label, value in (("lookback", lookback), ("n_features", n_features),
                         ("horizon", horizon), ("n_targets", n_targets),
                         ("units", units), ("depth", depth)):
        if int(value) < 1:
            raise ValueError(f"{label} must be >= 1, got {value}")
    if squeeze_targets and n_targets != 1:
        raise ValueError(f"squeeze_targets needs a single target, got n_targets={n_targets}")

    if target_index is not None:
        target_index = [int(i) for i in target_index]
        if len(target_index) != n_targets or not all(0 <= i < n_features for i in target_index):
            raise ValueError(f"target_index {target_index} must give {n_targets} feature "
                             f"position(s) in [0, {n_features})")
        if input_mean is not None and target_mean is not None and not (
            np.allclose(np.asarray(input_mean)[target_index], target_mean)
            and np.allclose(np.asarray(input_variance)[target_index], target_variance)
        ):
            raise ValueError("target statistics differ from their input columns' statistics; "
                             "the last-value skip connection needs them equal")

    inputs = keras.Input(shape=(int(lookback), int(n_features)), name=INPUT_NAME, dtype="float32")
    x = inputs
    if input_mean is not None:
        x = keras.layers.Normalization(
            axis=-1, mean=list(map(float, input_mean)),
            variance=list(map(float, input_variance)), name="input_scaling",
        )(x)
    scaled_history = x
    x = lstm_stack(x, units=units, depth=depth, dropout=dropout,
                   recurrent_dropout=recurrent_dropout, **lstm_options)
    if head_dropout:
        x = keras.layers.Dropout(float(head_dropout), name="head_dropout")(x)
    x = keras.layers.Dense(int(horizon) * int(n_targets), name="head")(x)
    x = keras.layers.Reshape((int(horizon), int(n_targets)), name="per_step")(x)
    if target_index is not None:
        last = keras.layers.Cropping1D((int(lookback) - 1, 0), name="last_step")(scaled_history)
        last = keras.layers.Flatten(name="last_values")(last)
        pick = keras.layers.Dense(int(n_targets), use_bias=False, trainable=False,
                                  name="last_targets")
        last = pick(last)
        selection = np.zeros((int(n_features), int(n_targets)), dtype="float32")
        selection[target_index, np.arange(int(n_targets))] = 1.0
        pick.set_weights([selection])
        last = keras.layers.RepeatVector(int(horizon), name="repeat_last")(last)
        x = keras.layers.Add(name="change_from_last")([x, last])
    if target_mean is not None:
        x = keras.layers.Normalization(
            axis=-1, mean=list(map(float, target_mean)),
            variance=list(map(float, target_variance)), invert=True, name="output_scaling",
        )(x)
    if squeeze_targets:
        x = keras.layers.Reshape((int(horizon),), name="squeeze")(x)
    outputs = keras.layers.Identity(name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name=name)
