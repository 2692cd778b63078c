"""Ensembles: several trained models of one architecture combined into one Keras model.

Models trained alike from different seeds make different mistakes, above all on inputs unlike
their training data (an unseen speaker); combining their outputs cancels much of that
run-to-run variance.  The ensemble is an ordinary functional model over the members, so it
saves to one ``.keras`` file (safe mode), exports to one SavedModel and serves the same inputs
and outputs as each member.

Three ways to combine, by what the outputs are:

* ``"mean"``: the outputs' average (regression values, probabilities);
* ``"log_probs"``: the average of each member's log-softmax over the last axis, for class
  logits.  The result is again a logit tensor: its softmax is the normalised geometric mean
  of the members' distributions (log-linear pooling);
* ``"stack"``: the members' outputs stacked on a new axis 1 (``[B, N, ...]``), for outputs
  that must be combined after decoding: CTC logits, whose members put a label's spike on
  different frames (see :func:`lstm_zoo.models.ctc.decode_ensemble`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

COMBINE = ("mean", "log_probs", "stack")


def _renamed_copy(model: keras.Model, name: str) -> keras.Model:
    """A copy of functional ``model`` named ``name`` with the same weights (members need
    distinct names inside one model)."""
    config = model.get_config()
    config["name"] = name
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def build_ensemble(members: Sequence[keras.Model], combine: str = "mean",
                   name: str = "ensemble") -> keras.Model:
    """One functional model whose outputs combine those of ``members`` (see the module).

    The members must be functional models with the same inputs (names, shapes, dtypes) and
    the same output structure, e.g. runs of one recipe with different seeds.  Their weights
    are copied; training the ensemble further is possible but not what it is for.
    """
    if combine not in COMBINE:
        raise ValueError(f"unknown combine {combine!r}; expected one of {COMBINE}")
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    for i, member in enumerate(members):
        if not isinstance(member, keras.Model) or not hasattr(member, "inputs") or not hasattr(
                member, "_nodes_by_depth"):
            raise ValueError(f"member {i} ({type(member).__name__}) is not a functional Keras "
                             "model; ensembles combine functional models only")
    signature = [_input_signature(m) for m in members]
    if any(s != signature[0] for s in signature[1:]):
        raise ValueError(f"the members take different inputs (shape, dtype): {signature}")
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name)
              for t in members[0].inputs]
    feed = inputs[0] if len(inputs) == 1 else inputs
    outputs = [_renamed_copy(m, f"member_{i}")(feed) for i, m in enumerate(members)]
    structures = {str(keras.tree.map_structure(lambda _: 0, o)) for o in outputs}
    if len(structures) > 1:
        raise ValueError(f"the members' outputs differ in structure: {sorted(structures)}")

    def combine_one(*tensors: Any) -> Any:
        if combine == "stack":
            return keras.ops.stack(list(tensors), axis=1)
        if combine == "log_probs":
            tensors = [keras.ops.log_softmax(t, axis=-1) for t in tensors]
        return keras.layers.Average()(list(tensors))

    combined = keras.tree.map_structure(combine_one, *outputs)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], combined, name=name)


def _input_signature(model: keras.Model) -> tuple[tuple[Any, str], ...]:
    """Each input's shape (without the batch) and dtype; names may differ between runs."""
    return tuple((tuple(t.shape[1:]), str(t.dtype)) for t in model.inputs)


def members(model: keras.Model) -> list[keras.Model]:
    """The member models of an ensemble built by :func:`build_ensemble` (empty if it is not
    one)."""
    return [layer for layer in model.layers
            if isinstance(layer, keras.Model) and layer.name.startswith("member_")]


def find_layer(model: keras.Model, name: str) -> Any:
    """``model.get_layer(name)``, or the first member's layer of that name for an ensemble."""
    try:
        return model.get_layer(name)
    except ValueError:
        for member in members(model):
            return member.get_layer(name)
        raise
