"""Pretrained models as ready-to-use tasks: from a name to an answer in one call.

:func:`from_pretrained` pulls a published version (verified through the hub, as ``pull`` is)
and returns a :class:`PretrainedTask`.  Its :meth:`~PretrainedTask.predict` takes what a client
has — the serving contract's raw inputs (sentences, waveforms, windows) or, for recipes that
read files, a CSV path or a pandas DataFrame — and runs the version's own TF Serving
signature (``serving_default`` of the SavedModel), so its answers are the server's answers:
strings for translation and speech, values in the data's units for forecasters, probabilities
for fraud.  ``.model`` is the ``keras.Model`` (safe-mode load of the version's ``.keras`` file),
``.card`` the manifest, ``.export`` writes a TF Serving export like :func:`lstm_zoo.export`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstm_zoo.errors import DataError
from lstm_zoo.hub.manifest import KERAS_PATH, HubError, read_manifest
from lstm_zoo.hub.pretrained import available, pull, split_tag
from lstm_zoo.serving.layout import read_export_manifest


def resolve_pretrained_name(name: str, hub: str | os.PathLike | None = None) -> str:
    """The published name ``name`` stands for: itself, or (for a registered model such as
    ``weather-lstm``) the name of its recipe's published versions."""
    base, _ = split_tag(name)
    published = {row["name"] for row in available(hub)}
    if base in published:
        return name
    from lstm_zoo.registry import model_info

    try:
        recipe = model_info(base).get("recipe")
    except LookupError:
        recipe = None
    if recipe in published:
        return recipe if ":" not in name else f"{recipe}:{name.partition(':')[2]}"
    raise HubError(f"no published model is called {base!r}; published: "
                   f"{', '.join(sorted(published)) or '(none)'}")


def from_pretrained(
    name: str,
    version: str | int = "latest",
    hub: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    offline: bool = False,
    progress: bool = False,
) -> PretrainedTask:
    """Pull ``name`` (``"speech"``, ``"speech:5"``, or a model name like ``"weather-lstm"``)
    and return it as a :class:`PretrainedTask`."""
    name = resolve_pretrained_name(name, hub)
    path = pull(name, version, hub, cache_dir, offline=offline, progress=progress)
    return PretrainedTask(path)


class PretrainedTask:
    """One published, verified version: predict on raw inputs, describe, export."""

    def __init__(self, version_dir: str | os.PathLike) -> None:
        self.path = Path(version_dir)
        self.card: dict[str, Any] = read_manifest(self.path)
        self.export_card: dict[str, Any] = read_export_manifest(self.path)
        self.name: str = self.card["name"]
        self.version: str = str(self.card["version"])
        self.recipe_name: str = self.card["recipe"]

    def __repr__(self) -> str:
        return f"PretrainedTask({self.name}:{self.version}, recipe={self.recipe_name!r})"

    # ---- what it takes ---------------------------------------------------------------
    @property
    def input_spec(self) -> dict[str, dict[str, Any]]:
        """``{input key: {"dtype", "shape"}}`` of the serving signature (None: any size)."""
        return {key: dict(spec) for key, spec in self.export_card["signature"]["inputs"].items()}

    @property
    def output_spec(self) -> dict[str, dict[str, Any]]:
        """``{output key: {"dtype", "shape"}}`` of the serving signature."""
        return {key: dict(spec) for key, spec in self.export_card["signature"]["outputs"].items()}

    def describe(self) -> str:
        """A few lines: what it is, what it takes and returns, what it was trained on."""
        headline = (self.card.get("metrics") or {}).get("headline") or {}
        info = (self.card.get("data") or {}).get("info") or {}
        lines = [f"{self.name}:{self.version} — {self.card.get('description', '')}",
                 f"  model {self.card.get('model')} (recipe {self.recipe_name}, "
                 f"task {self.card.get('task')})"]
        for key, spec in self.input_spec.items():
            lines.append(f"  input  {key}: {spec['dtype']} {spec['shape']}")
        for key, spec in self.output_spec.items():
            lines.append(f"  output {key}: {spec['dtype']} {spec['shape']}")
        if info.get("features"):
            lines.append(f"  columns, in order: {', '.join(info['features'])}; forecasts "
                         f"{', '.join(info.get('targets', []))} every {info.get('step')}")
        if headline:
            lines.append(f"  test {headline.get('name')}: {headline.get('value')}")
        data = self.card.get("data") or {}
        lines.append(f"  trained on: {data.get('source')} ({data.get('provenance_and_licence')})")
        return "\n".join(lines)

    # ---- answers ---------------------------------------------------------------------
    @functools.cached_property
    def _signature(self) -> Any:
        import tensorflow as tf

        return tf.saved_model.load(str(self.path)).signatures["serving_default"]

    @functools.cached_property
    def model(self) -> Any:
        """The ``keras.Model`` of this version (loaded in safe mode, for inspection or Keras)."""
        from lstm_zoo.training.driver import load_model

        return load_model(self.path / KERAS_PATH)

    def serving_inputs(self, inputs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """``inputs`` as the signature's arrays, plus what the answer needs besides the
        outputs (e.g. forecast timestamps).  A CSV path or DataFrame goes to the recipe's
        :meth:`~lstm_zoo.recipe.Recipe.client_inputs`; anything else is the contract's raw
        inputs: a mapping by key or, for one input, the value itself."""
        spec = self.input_spec
        if _is_table(inputs):
            from lstm_zoo.registry import get_recipe

            arrays, extra = get_recipe(self.recipe_name).client_inputs(inputs, self.card)
            return {k: _as_input(k, v, spec[k]) for k, v in arrays.items()}, extra
        if not isinstance(inputs, Mapping):
            if len(spec) != 1:
                raise DataError(f"{self.name} takes several inputs ({', '.join(spec)}): pass a "
                                "mapping {input name: value}")
            inputs = {next(iter(spec)): inputs}
        unknown = sorted(set(inputs) - set(spec))
        missing = sorted(set(spec) - set(inputs))
        if unknown or missing:
            raise DataError(f"{self.name} takes inputs {', '.join(spec)}; got "
                            f"{', '.join(sorted(inputs)) or 'none'}")
        return {k: _as_input(k, v, spec[k]) for k, v in inputs.items()}, {}

    def predict(self, inputs: Any) -> Any:
        """The serving signature's answer for ``inputs`` (see :meth:`serving_inputs`).

        One output: its values (a list of strings for string outputs, else an array); several:
        a dict by output name.  Forecasts from a CSV or DataFrame come back as a DataFrame
        indexed by the forecast timestamps, one column per target (and per output).
        """
        import tensorflow as tf

        arrays, extra = self.serving_inputs(inputs)
        feeds = {k: tf.constant(v) for k, v in arrays.items()}
        raw = self._signature(**feeds)
        outputs = {k: _decoded(v.numpy()) for k, v in raw.items()}
        if "timestamps" in extra:
            return _forecast_frame(outputs, extra)
        return next(iter(outputs.values())) if len(outputs) == 1 else outputs

    # ---- elsewhere ---------------------------------------------------------------------
    def export(self, base_dir: str | os.PathLike, version: int | None = None, **options: Any) -> Any:
        """A TF Serving export of this model into ``base_dir/NAME/VERSION`` (as
        :func:`lstm_zoo.export`; options such as ``verify=True`` pass through)."""
        from lstm_zoo.serving.savedmodel import export

        return export(self.model, base_dir, self.name, version, recipe=self.recipe_name, **options)


def _is_table(value: Any) -> bool:
    if isinstance(value, str | os.PathLike) and str(value).lower().endswith((".csv", ".tsv")):
        return True
    return type(value).__name__ == "DataFrame"


def _as_input(key: str, value: Any, spec: Mapping[str, Any]) -> np.ndarray:
    """``value`` as an array of the signature's dtype and rank; a list of 1-D sequences of
    different lengths (waveforms) is zero-padded at the end, as the contracts say."""
    shape = spec["shape"]
    if spec["dtype"] == "string":
        values = [value] if isinstance(value, str | bytes) else list(value)
        for i, item in enumerate(values):
            if not isinstance(item, str | bytes):
                raise DataError(f"input {key!r}: item {i} is {type(item).__name__}, expected text")
        return np.array([v if isinstance(v, bytes) else v.encode() for v in values], dtype=object)
    if isinstance(value, Sequence) and value and all(np.ndim(v) == 1 for v in value) \
            and len(shape) == 2 and shape[1] is None:
        longest = max(len(v) for v in value)
        padded = np.zeros((len(value), longest), dtype=spec["dtype"])
        for i, v in enumerate(value):
            padded[i, :len(v)] = v
        array = padded
    else:
        array = np.asarray(value, dtype=spec["dtype"])
    if array.ndim == len(shape) - 1:  # one example without its batch dimension
        array = array[None]
    fixed = [(i, d) for i, d in enumerate(shape) if d is not None]
    if array.ndim != len(shape) or any(array.shape[i] != d for i, d in fixed):
        raise DataError(f"input {key!r} has shape {list(array.shape)}; expected {shape} "
                        "(None: any size)")
    return array


def _decoded(value: np.ndarray) -> Any:
    if value.dtype == object:
        return [v.decode("utf-8", errors="replace") for v in value.reshape(-1)]
    return value


def _forecast_frame(outputs: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> Any:
    """Forecast outputs of one window as a DataFrame indexed by the forecast timestamps."""
    import pandas as pd

    index = pd.DatetimeIndex(extra["timestamps"], name="time")
    columns: dict[str, np.ndarray] = {}
    targets = list(extra.get("targets") or [])
    for key, value in outputs.items():
        value = np.asarray(value)[0]  # one window
        if value.ndim == 1:
            label = targets[0] if len(targets) == 1 and len(outputs) == 1 else key
            columns[label] = value
        else:
            for j in range(value.shape[-1]):
                label = targets[j] if j < len(targets) and len(outputs) == 1 else f"{key}_{j}"
                columns[label] = value[:, j]
    return pd.DataFrame(columns, index=index)
