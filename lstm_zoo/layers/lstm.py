"""``LSTM``: the lstm_zoo LSTM layer (a ``keras.layers.RNN`` over :class:`LSTMCell`).

Same constructor arguments, weights and results as ``keras.layers.LSTM`` by default, plus the
variants documented in :mod:`lstm_zoo.layers.cell` and an ``implementation`` switch
(``"auto"`` | ``"cudnn"`` | ``"fused"`` | ``"generic"``, see :mod:`lstm_zoo.layers.dispatch`).
Masking, ``stateful``, ``go_backwards``, ``initial_state``, ``Bidirectional`` and
serialisation come from ``keras.layers.RNN``; this class only adds the path choice in
``inner_loop``.  After each call (or trace) ``layer.last_implementation`` and
``layer.last_implementation_reason`` say which path ran and why.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import tensorflow as tf
from keras import regularizers

from lstm_zoo.layers._validation import check_implementation
from lstm_zoo.layers.cell import VARIANTS, LSTMCell, variant_parameters
from lstm_zoo.layers.dispatch import log_decision, select_implementation
from lstm_zoo.layers.masks import describe_mask
from lstm_zoo.layers.tracing import in_xla_context

_CELL_ARGS = (
    "units", "activation", "recurrent_activation", "use_bias", "kernel_initializer",
    "recurrent_initializer", "bias_initializer", "unit_forget_bias", "kernel_regularizer",
    "recurrent_regularizer", "bias_regularizer", "kernel_constraint", "recurrent_constraint",
    "bias_constraint", "dropout", "recurrent_dropout", "seed", *VARIANTS,
)  # fmt: skip


def _gpu_available() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


@keras.saving.register_keras_serializable(package="lstm_zoo")
class LSTM(keras.layers.RNN):
    """Long Short-Term Memory layer (Hochreiter & Schmidhuber 1997) with variants.

    Args: those of ``keras.layers.LSTM`` (``units`` ... ``unroll``; ``use_cudnn`` is accepted
    for drop-in use: True means ``implementation="cudnn"``, False ``"generic"``), plus
    ``use_peepholes``, ``layer_norm``, ``proj_units``, ``zoneout_cell``, ``zoneout_hidden``,
    ``cell_clip``, ``cifg`` (see :class:`LSTMCell`) and ``implementation``.

    Attribute ``fused_jit`` (not serialised; unset/None: automatic, see
    ``fused.layer_uses_xla`` - XLA for training, and for inference with a known number of
    timesteps unless traced for an export file): True or False forces the fused path's loops
    on/off XLA for every call.  Same results either way.

    Attribute ``fused_shards`` (not serialised; unset/None: automatic, see
    ``fused.batch_shards``): the fused path splits the batch into this many slices whose
    recurrences run as concurrent loops (exact: rows never interact).  After a fused call
    ``last_fused_shards`` holds the number used and ``last_implementation_reason`` says why.

    Attribute ``fused_bf16_matmul`` (not serialised; default False): opt-in speed for float32
    layers on CPUs with fast bfloat16 (AVX512-BF16, AMX): every matmul of the fused path
    (input projection, per-step ``h·R``, and in the backward pass ``dz·Rᵀ`` and the weight
    gradients) rounds its operands and result to bfloat16; state, gate math and sums stay
    float32, and the recurrence runs without XLA unless ``fused_jit`` says otherwise.  Not
    exact: see the README for the measured deviation and speed.
    """

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        implementation: str = "auto",
        **kwargs,
    ):
        use_cudnn = kwargs.pop("use_cudnn", "auto")
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"`use_cudnn` must be 'auto', True or False, got {use_cudnn!r}.")
        if use_cudnn != "auto":
            if implementation != "auto":
                raise ValueError(
                    f"Pass either `use_cudnn` or `implementation`, not both "
                    f"(got use_cudnn={use_cudnn!r}, implementation={implementation!r})."
                )
            implementation = "cudnn" if use_cudnn else "generic"
        implementation = check_implementation(implementation)
        cell = LSTMCell(
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            bias_constraint=bias_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            seed=seed,
            **{name: kwargs.pop(name) for name in VARIANTS if name in kwargs},
            dtype=kwargs.get("dtype", None),
            trainable=kwargs.get("trainable", True),
            name="lstm_cell",
        )
        super().__init__(
            cell,
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            stateful=stateful,
            unroll=unroll,
            activity_regularizer=activity_regularizer,
            **kwargs,
        )
        self.input_spec = keras.layers.InputSpec(ndim=3)
        self.implementation = implementation
        self.last_implementation: str | None = None
        self.last_implementation_reason: str | None = None
        self.last_fused_shards: int | None = None
        if self.implementation == "cudnn" or (
            self.implementation == "auto"
            and select_implementation(self.dispatch_config(), "none", _gpu_available())[0]
            == "cudnn"
        ):
            self.supports_jit = False  # as keras.layers.LSTM: cuDNN ops are not XLA-compilable

    # -------------------------------------------------------------- dispatch
    def dispatch_config(self) -> dict:
        """The configuration ``select_implementation`` decides on."""
        cell = self.cell
        return {
            "activation": cell.activation,
            "recurrent_activation": cell.recurrent_activation,
            "use_bias": cell.use_bias,
            "recurrent_dropout": cell.recurrent_dropout,
            "unroll": self.unroll,
            "implementation": self.implementation,
            **cell.variant_config(),
        }

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        path, reason = select_implementation(
            self.dispatch_config(), describe_mask(mask), _gpu_available(), in_xla_context()
        )
        self.last_implementation, self.last_implementation_reason = path, reason
        log_decision(self.name, path, reason)

        def generic():
            return super(LSTM, self).inner_loop(sequences, initial_state, mask, training=training)

        if path == "cudnn":
            from lstm_zoo.layers import cudnn

            self.supports_jit = False
            return cudnn.cudnn_inner_loop(self, sequences, initial_state, mask, training, generic)
        if path == "fused":
            from lstm_zoo.layers import fused

            return fused.fused_inner_loop(self, sequences, initial_state, mask, training)
        return generic()

    def call(self, sequences, initial_state=None, mask=None, training=False):
        return super().call(sequences, mask=mask, training=training, initial_state=initial_state)

    # ------------------------------------------------------- serialisation
    def get_config(self):
        base = super().get_config()
        del base["cell"]
        return {
            **base,
            **self.cell.keras_config(),
            "activity_regularizer": regularizers.serialize(self.activity_regularizer),
            **self.cell.variant_config(),
            "implementation": self.implementation,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _forward(name: str):
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's ``{name}``.")


for _name in _CELL_ARGS:
    setattr(LSTM, _name, _forward(_name))


def _signature_with_variants() -> inspect.Signature:
    """``LSTM.__init__``'s signature with the cell's variant switches spelled out (they arrive
    through ``**kwargs`` and are declared once, by :class:`LSTMCell`)."""
    signature = inspect.signature(LSTM.__init__)
    params = list(signature.parameters.values())
    variadic = [p for p in params if p.kind is p.VAR_KEYWORD]
    plain = [p for p in params if p.kind is not p.VAR_KEYWORD]
    return signature.replace(parameters=[*plain, *variant_parameters(), *variadic])


LSTM.__init__.__signature__ = _signature_with_variants()
