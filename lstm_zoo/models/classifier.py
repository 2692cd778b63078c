"""An LSTM sequence classifier: a variable-length sequence in, one probability out.

Architecture::

    sequence [batch, time, features]  (raw values; all-zero rows are padding)
      -> Masking(mask_value)            (padded steps are skipped by the LSTM)
      -> encoder                        (optional recipe layer: feature transforms + scaling,
                                          must propagate the mask)
      -> LSTM x depth (lstm_zoo.layers.LSTM; every variant switch is passed through)
      -> Dropout -> [Dense(head_units, relu)] -> Dense(1, sigmoid) -> [batch]
    probability

Only built-in Keras layers, the registered lstm_zoo LSTM and the recipe's own registered
encoder are used, so the model saves to ``.keras``, loads in safe mode and exports to TF
Serving with its preprocessing inside.  Not registered here: recipes register their own
names around it (``fraud-lstm``).
"""

from __future__ import annotations

from typing import Any

from lstm_zoo.models.stack import accepts_lstm_options, lstm_stack


@accepts_lstm_options
def build_sequence_classifier(
    *,
    n_features: int,
    encoder: Any = None,
    mask_value: float | None = 0.0,
    units: int = 32,
    depth: int = 1,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    head_units: int = 0,
    input_name: str = "sequence",
    output_name: str = "probability",
    name: str = "lstm_classifier",
    **lstm_options: Any,
) -> Any:
    """Build the classifier (a functional ``keras.Model``): ``input_name`` -> ``output_name``.

    ``encoder`` is a Keras layer applied to the masked raw features (the place for a recipe's
    in-graph preprocessing); ``mask_value`` None disables masking.  ``proj_units`` of 0 or
    None means no projection.  The LSTM switches are passed to every LSTM layer so sweeps can
    search over them.  The output is the positive-class probability, shape [batch].
    """
    import keras


    for label, value in (("n_features", n_features), ("units", units), ("depth", depth)):
        if int(value) < 1:
            raise ValueError(f"{label} must be >= 1, got {value}")
    if head_units < 0:
        raise ValueError(f"head_units must be >= 0, got {head_units}")

    inputs = keras.Input(shape=(None, int(n_features)), name=input_name, dtype="float32")
    x = inputs
    if mask_value is not None:
        x = keras.layers.Masking(mask_value=float(mask_value), name="padding_mask")(x)
    if encoder is not None:
        x = encoder(x)
    x = lstm_stack(x, units=units, depth=depth, dropout=dropout,
                   recurrent_dropout=recurrent_dropout, **lstm_options)
    if dropout:
        x = keras.layers.Dropout(float(dropout), name="head_dropout")(x)
    if head_units:
        x = keras.layers.Dense(int(head_units), activation="relu", name="head_hidden")(x)
    x = keras.layers.Dense(1, activation="sigmoid", name="head")(x)
    x = keras.layers.Reshape((), name="squeeze")(x)
    outputs = keras.layers.Identity(name=output_name)(x)
    return keras.Model(inputs, outputs, name=name)
