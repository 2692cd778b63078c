"""``LSTMCell``: one time step of the lstm_zoo LSTM, with all its variants.

The cell is the *reference* (generic) computation: every other path (fused CPU, cuDNN) must
agree with it.  With default arguments it computes exactly what ``keras.layers.LSTMCell``
computes and holds the same weights in the same layout:

* ``kernel`` (input_dim, 4·units), ``recurrent_kernel`` (units, 4·units), ``bias`` (4·units),
  gate order i, f, c (candidate), o.

Per step, with ``z = x·W + h·U + b`` split into gate pre-activations::

    i = σ(z_i + w_ci⊙c_{t-1})        # peephole term only if use_peepholes
    f = σ(z_f + w_cf⊙c_{t-1})
    ĉ = tanh(z_c)
    c_t = f⊙c_{t-1} + i⊙ĉ            # then clipped to ±cell_clip if set
    o = σ(z_o + w_co⊙c_t)
    h_t = o⊙tanh(LN(c_t))           # LN only if layer_norm; then h_t = h_t·W_hr if proj_units

Variants (all off by default):

* ``use_peepholes`` (Gers & Schmidhuber 2000): diagonal weights ``input_peephole``,
  ``forget_peephole`` (on c_{t-1}) and ``output_peephole`` (on c_t), each (units,).
* ``layer_norm`` (Ba et al. 2016): per-gate layer normalisation of the input projection
  x·W and of the recurrent projection h·U separately (scales ``input_norm_gamma`` and
  ``recurrent_norm_gamma``, (G·units,); ``bias`` plays the role of the shift), and of c_t
  before the output tanh (``cell_norm_gamma``/``cell_norm_beta``).  The state carried to the
  next step is the *un-normalised* c_t, as in the paper.
* ``proj_units`` (LSTMP, Sak et al. 2014; PyTorch ``proj_size``): h_t = (o⊙tanh(c_t))·W_hr
  with ``projection_kernel`` (units, proj_units); h (state 0, the output) then has
  proj_units features and ``recurrent_kernel`` is (proj_units, G·units).
* ``zoneout_cell`` / ``zoneout_hidden`` (Krueger et al. 2016): in training each unit keeps
  its previous value with that probability (fresh draw each step); at inference the
  expectation z·prev + (1−z)·new is used.
* ``dropout`` / ``recurrent_dropout``: variational (one mask per sequence, reused at every
  step), on the input and on h_{t-1} before the recurrent projection.
* ``cell_clip``: c_t clipped to [−cell_clip, cell_clip] (before the output peephole).
* ``cifg`` (coupled input-forget gate, Greff et al. 2017): i = 1 − f.  There is no input
  gate, so the gate blocks are f, c, o and G = 3: ``kernel`` is (input_dim, 3·units).
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
from keras import activations, constraints, initializers, ops, regularizers

from lstm_zoo.adapters.keras_private import DropoutRNNCell  # one mask per sequence
from lstm_zoo.layers._validation import (
    check_bool,
    check_optional_positive_float,
    check_optional_positive_int,
    check_positive_int,
    check_rate,
)

LN_EPSILON = 1e-5

#: The variant switches beyond ``keras.layers.LSTMCell``, declared (with their defaults) by
#: :class:`LSTMCell` alone; the LSTM layer and every model builder pass them through by name.
VARIANTS = ("use_peepholes", "layer_norm", "proj_units", "zoneout_cell", "zoneout_hidden",
            "cell_clip", "cifg")


def _layer_norm(x, gamma, beta=None, groups: int = 1):
    """Normalise ``x`` (batch, groups·n) within each of ``groups`` blocks of n features."""
    shape = ops.shape(x)
    if groups > 1:
        x = ops.reshape(x, (shape[0], groups, -1))
    mean = ops.mean(x, axis=-1, keepdims=True)
    var = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
    x = (x - mean) * ops.rsqrt(var + LN_EPSILON)
    if groups > 1:
        x = ops.reshape(x, shape)
    x = x * gamma
    if beta is not None:
        x = x + beta
    return x


@keras.saving.register_keras_serializable(package="lstm_zoo")
class LSTMCell(keras.layers.Layer, DropoutRNNCell):
    """One LSTM step; same arguments and weights as ``keras.layers.LSTMCell`` plus variants.

    See the module docstring for the equations and the variant arguments.  States are
    ``[h, c]`` (h has ``proj_units`` features when projecting, else ``units``).
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
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        use_peepholes: bool = False,
        layer_norm: bool = False,
        proj_units: int | None = None,
        zoneout_cell: float = 0.0,
        zoneout_hidden: float = 0.0,
        cell_clip: float | None = None,
        cifg: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.recurrent_constraint = constraints.get(recurrent_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.dropout = check_rate("dropout", dropout)
        self.recurrent_dropout = check_rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.use_peepholes = check_bool("use_peepholes", use_peepholes)
        self.layer_norm = check_bool("layer_norm", layer_norm)
        self.proj_units = check_optional_positive_int("proj_units", proj_units)
        self.zoneout_cell = check_rate("zoneout_cell", zoneout_cell, upper_inclusive=False)
        self.zoneout_hidden = check_rate("zoneout_hidden", zoneout_hidden, upper_inclusive=False)
        self.cell_clip = check_optional_positive_float("cell_clip", cell_clip)
        self.cifg = check_bool("cifg", cifg)

        self.num_gates = 3 if self.cifg else 4
        self.hidden_units = self.proj_units or self.units
        self.state_size = [self.hidden_units, self.units]
        self.output_size = self.hidden_units

    # ------------------------------------------------------------------ weights
    def _bias_init(self, shape, dtype=None, **kwargs):
        """Keras' unit_forget_bias: ones on the forget block, bias_initializer elsewhere."""
        if not self.unit_forget_bias:
            return self.bias_initializer(shape, dtype=dtype, **kwargs)
        u = self.units
        before = 0 if self.cifg else u  # forget block is first under CIFG, second otherwise
        parts = []
        if before:
            parts.append(self.bias_initializer((before,), dtype=dtype, **kwargs))
        parts.append(initializers.get("ones")((u,), dtype=dtype, **kwargs))
        parts.append(self.bias_initializer((2 * u,), dtype=dtype, **kwargs))
        return ops.concatenate(parts)

    def build(self, input_shape):
        input_dim = input_shape[-1]
        g, u = self.num_gates, self.units
        self.kernel = self.add_weight(
            shape=(input_dim, g * u),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.hidden_units, g * u),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(g * u,),
                name="bias",
                initializer=self._bias_init,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.input_peephole = self.forget_peephole = self.output_peephole = None
        if self.use_peepholes:
            if not self.cifg:
                self.input_peephole = self.add_weight(
                    shape=(u,), name="input_peephole", initializer="zeros"
                )
            self.forget_peephole = self.add_weight(
                shape=(u,), name="forget_peephole", initializer="zeros"
            )
            self.output_peephole = self.add_weight(
                shape=(u,), name="output_peephole", initializer="zeros"
            )
        if self.layer_norm:
            self.input_norm_gamma = self.add_weight(
                shape=(g * u,), name="input_norm_gamma", initializer="ones"
            )
            self.recurrent_norm_gamma = self.add_weight(
                shape=(g * u,), name="recurrent_norm_gamma", initializer="ones"
            )
            self.cell_norm_gamma = self.add_weight(
                shape=(u,), name="cell_norm_gamma", initializer="ones"
            )
            self.cell_norm_beta = self.add_weight(
                shape=(u,), name="cell_norm_beta", initializer="zeros"
            )
        self.projection_kernel = None
        if self.proj_units:
            self.projection_kernel = self.add_weight(
                shape=(u, self.proj_units),
                name="projection_kernel",
                initializer=self.kernel_initializer,
            )
        self.built = True

    # ------------------------------------------------------------------- step
    def input_projection(self, inputs):
        """x·W (layer-normalised per gate when ``layer_norm``); no bias."""
        z = ops.matmul(inputs, self.kernel)
        if self.layer_norm:
            z = _layer_norm(z, self.input_norm_gamma, groups=self.num_gates)
        return z

    def recurrent_projection(self, h):
        """h·U (layer-normalised per gate when ``layer_norm``)."""
        z = ops.matmul(h, self.recurrent_kernel)
        if self.layer_norm:
            z = _layer_norm(z, self.recurrent_norm_gamma, groups=self.num_gates)
        return z

    def _zoneout(self, new, prev, rate: float, training):
        if not rate:
            return new
        if training:
            keep_prev = keras.random.uniform(
                ops.shape(new), seed=self.seed_generator, dtype=new.dtype
            ) < rate
            return ops.where(keep_prev, prev, new)
        return rate * prev + (1.0 - rate) * new

    def step_from_projection(self, zx, h_tm1, c_tm1, training=False):
        """The step given the (already bias-free) input projection ``zx`` of this step."""
        h_in = h_tm1
        if training and 0.0 < self.recurrent_dropout < 1.0:
            h_in = h_in * self.get_recurrent_dropout_mask(h_tm1)
        z = zx + self.recurrent_projection(h_in)
        if self.use_bias:
            z = z + self.bias
        gates = ops.split(z, self.num_gates, axis=-1)
        if self.cifg:
            z_f, z_c, z_o = gates
        else:
            z_i, z_f, z_c, z_o = gates
        if self.use_peepholes:
            z_f = z_f + self.forget_peephole * c_tm1
            if not self.cifg:
                z_i = z_i + self.input_peephole * c_tm1
        f = self.recurrent_activation(z_f)
        i = 1.0 - f if self.cifg else self.recurrent_activation(z_i)
        c = f * c_tm1 + i * self.activation(z_c)
        if self.cell_clip is not None:
            c = ops.clip(c, -self.cell_clip, self.cell_clip)
        if self.use_peepholes:
            z_o = z_o + self.output_peephole * c
        o = self.recurrent_activation(z_o)
        c_out = _layer_norm(c, self.cell_norm_gamma, self.cell_norm_beta) if self.layer_norm else c
        h = o * self.activation(c_out)
        if self.proj_units:
            h = ops.matmul(h, self.projection_kernel)
        c = self._zoneout(c, c_tm1, self.zoneout_cell, training)
        h = self._zoneout(h, h_tm1, self.zoneout_hidden, training)
        return h, c

    def call(self, inputs, states, training=False):
        h_tm1, c_tm1 = states[0], states[1]
        if training and 0.0 < self.dropout < 1.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        h, c = self.step_from_projection(self.input_projection(inputs), h_tm1, c_tm1, training)
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in self.state_size]

    # ---------------------------------------------------------- serialisation
    def variant_config(self) -> dict:
        """The lstm_zoo-specific arguments (what keras.layers.LSTMCell does not have)."""
        return {name: getattr(self, name) for name in VARIANTS}

    def keras_config(self) -> dict:
        """The arguments shared with keras.layers.LSTMCell (serialised)."""
        return {
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "recurrent_activation": activations.serialize(self.recurrent_activation),
            "use_bias": self.use_bias,
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": constraints.serialize(self.recurrent_constraint),
            "bias_constraint": constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }

    def get_config(self):
        return {**super().get_config(), **self.keras_config(), **self.variant_config()}


def variant_parameters() -> list[inspect.Parameter]:
    """The :data:`VARIANTS` as keyword-only parameters, with :class:`LSTMCell`'s defaults and
    annotations (for the signatures of the layer and of builders that pass them through)."""
    params = inspect.signature(LSTMCell.__init__).parameters
    return [params[name].replace(kind=inspect.Parameter.KEYWORD_ONLY) for name in VARIANTS]
