"""A recipe's serving contract as a checked object: keys, dtypes and shapes of a signature.

Recipes describe their TF Serving signature as a plain mapping (see
:meth:`lstm_zoo.recipe.Recipe.serving_contract`)::

    {"inputs": {"history": ("float32", (None, 72, 6))},
     "outputs": {"forecast": ("float32", (None, 24))}}

:class:`ServingContract` validates that mapping once (the batch dimension must be ``None``,
keys must be valid signature names, dtypes must be ones TF Serving can carry), turns it into
``tf.TensorSpec`` input signatures, checks sample inputs against it, and makes synthetic inputs
when no real ones are at hand.  It holds no TensorFlow state, so it is cheap to build.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from lstm_zoo.errors import LstmZooError

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DTYPES = {"float16", "float32", "float64", "int32", "int64", "bool", "string"}


class ContractError(LstmZooError, ValueError):
    """A serving contract, or inputs checked against it, that cannot be used."""


@dataclasses.dataclass(frozen=True)
class TensorContract:
    """One named tensor of a signature: dtype name and shape (``None`` = any size)."""

    key: str
    dtype: str
    shape: tuple[int | None, ...]

    def to_json(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}

    def tensor_spec(self) -> Any:
        import tensorflow as tf

        return tf.TensorSpec(self.shape, tf.as_dtype(self.dtype), name=self.key)

    def numpy_dtype(self) -> Any:
        return object if self.dtype == "string" else np.dtype(self.dtype)

    @property
    def is_float(self) -> bool:
        """Floating point (the dtypes that can hold NaN and infinity)."""
        return self.dtype.startswith("float")

    def checked_tensor(self, value: Any) -> Any:
        """``value`` checked in-graph: its rank and fixed dimensions, and (floats) finiteness.

        TF Serving feeds tensors of any shape and value into the graph, so a bad request must
        fail here with a message naming the input: ``tf.ensure_shape`` gives "Shape of tensor
        history [2,6,3] is not compatible with expected shape [?,5,3]" rather than an error deep
        inside the model, and a NaN or infinity fails an assertion (TF Serving answers
        INVALID_ARGUMENT) instead of flowing through the model into a confident, meaningless
        answer.  Only core ops (``EnsureShape``, ``IsFinite``, ``All``, ``Assert``), so the
        graph still converts to TFLite and ONNX.
        """
        import tensorflow as tf

        value = tf.ensure_shape(value, self.shape)
        if not self.is_float:
            return value
        finite = tf.math.is_finite(value)
        bad = tf.size(finite) - tf.math.count_nonzero(finite, dtype=tf.int32)
        check = tf.debugging.Assert(
            tf.reduce_all(finite),
            # no quotes around the name: Assert prints its strings C-escaped
            [f"input {self.key} must hold finite values only; NaN or infinite values found:",
             bad],
            name=f"{self.key}_is_finite",
        )
        with tf.control_dependencies([check]):
            return tf.identity(value)


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    name = {"str": "string", "bytes": "string", "object": "string", "tf.string": "string"}.get(
        name, name
    )
    return name.removeprefix("tf.")


def _parse_tensors(section: str, raw: Any) -> dict[str, TensorContract]:
    if not isinstance(raw, Mapping) or not raw:
        raise ContractError(
            f"serving contract {section!r} must be a non-empty mapping, got {raw!r}"
        )
    tensors = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise ContractError(
                f"serving contract {section} key {key!r} is not a valid signature name "
                "(letters, digits and underscores, starting with a letter)"
            )
        try:
            dtype, shape = value
        except (TypeError, ValueError):
            raise ContractError(
                f"serving contract {section}[{key!r}] must be (dtype, shape), got {value!r}"
            ) from None
        dtype = _dtype_name(dtype)
        if dtype not in _DTYPES:
            raise ContractError(
                f"serving contract {section}[{key!r}] has dtype {dtype!r}; "
                f"expected one of {', '.join(sorted(_DTYPES))}"
            )
        shape = tuple(None if d is None else int(d) for d in shape)
        if not shape or shape[0] is not None:
            raise ContractError(
                f"serving contract {section}[{key!r}] has shape {shape}; the first (batch) "
                "dimension must be None"
            )
        tensors[key] = TensorContract(key, dtype, shape)
    return tensors


@dataclasses.dataclass(frozen=True)
class ServingContract:
    """Validated inputs and outputs of a ``serving_default`` signature."""

    inputs: dict[str, TensorContract]
    outputs: dict[str, TensorContract]

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ServingContract:
        """Validate a recipe's contract mapping (``{"inputs": ..., "outputs": ...}``)."""
        if isinstance(raw, ServingContract):
            return raw
        if not isinstance(raw, Mapping) or set(raw) != {"inputs", "outputs"}:
            raise ContractError(
                f"a serving contract is a mapping with keys 'inputs' and 'outputs', got {raw!r}"
            )
        return cls(
            _parse_tensors("inputs", raw["inputs"]), _parse_tensors("outputs", raw["outputs"])
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": {k: t.to_json() for k, t in self.inputs.items()},
            "outputs": {k: t.to_json() for k, t in self.outputs.items()},
        }

    def input_signature(self) -> list[dict[str, Any]]:
        """``[{key: tf.TensorSpec}]``: one dict argument whose keys become the signature's."""
        return [{k: t.tensor_spec() for k, t in self.inputs.items()}]

    def checked_tensors(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Each input tensor passed through :meth:`TensorContract.checked_tensor` (in-graph)."""
        return {key: self.inputs[key].checked_tensor(value) for key, value in inputs.items()}

    def check_inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """``inputs`` as numpy arrays of the contract's dtypes; raises naming what is wrong."""
        if not isinstance(inputs, Mapping):
            raise ContractError(f"sample inputs must be a dict keyed by {list(self.inputs)}")
        if set(inputs) != set(self.inputs):
            raise ContractError(
                f"sample inputs have keys {sorted(inputs)}; the contract expects "
                f"{sorted(self.inputs)}"
            )
        checked = {}
        batch = None
        for key, spec in self.inputs.items():
            value = inputs[key]
            if hasattr(value, "numpy"):
                value = value.numpy()
            array = np.asarray(value, dtype=spec.numpy_dtype())
            if spec.dtype == "string":
                array = np.vectorize(_to_bytes, otypes=[object])(array) if array.size else array
            if array.ndim != len(spec.shape):
                raise ContractError(
                    f"sample input {key!r} has shape {array.shape}; the contract expects rank "
                    f"{len(spec.shape)} {spec.shape}"
                )
            for axis, (got, want) in enumerate(zip(array.shape, spec.shape, strict=True)):
                if want is not None and got != want:
                    raise ContractError(
                        f"sample input {key!r} has shape {array.shape}; dimension {axis} must be "
                        f"{want} (contract shape {spec.shape})"
                    )
            if batch is not None and array.shape[0] != batch:
                raise ContractError(
                    f"sample inputs disagree on the batch size ({batch} vs {key!r})"
                )
            if spec.is_float and not np.isfinite(array).all():
                raise ContractError(
                    f"sample input {key!r} holds {int(np.size(array) - np.isfinite(array).sum())}"
                    " NaN or infinite values; every value must be finite"
                )
            batch = array.shape[0]
            checked[key] = array
        return checked

    def synthetic_inputs(self, n: int = 2, length: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
        """Inputs made from the contract alone: uniform values in [-1, 1], unknown dims ``length``.

        Used for warmup and verification when no real samples are available; strings are
        short lowercase words.
        """
        rng = np.random.default_rng(seed)
        made = {}
        for key, spec in self.inputs.items():
            shape = (n, *(length if d is None else d for d in spec.shape[1:]))
            if spec.dtype == "string":
                words = ["one", "two", "three", "hello", "world"]
                made[key] = np.array(
                    [" ".join(rng.choice(words, 3)).encode() for _ in range(int(np.prod(shape)))],
                    dtype=object,
                ).reshape(shape)
            elif spec.dtype == "bool":
                made[key] = rng.random(shape) < 0.5
            elif spec.dtype.startswith("int"):
                made[key] = rng.integers(0, 2, shape).astype(spec.dtype)
            else:
                made[key] = rng.uniform(-1, 1, shape).astype(spec.dtype)
        return made


def _to_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")
