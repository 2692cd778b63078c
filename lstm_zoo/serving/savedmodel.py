"""Export a trained model as a TF Serving SavedModel: ``BASE/NAME/VERSION/``.

TF Serving watches ``BASE/NAME``, loads the highest numeric version subdirectory and runs no
Python, so everything a request needs is inside the graph: the recipe's
:meth:`~lstm_zoo.recipe.Recipe.serving_function` (pre-processing, the model, post-processing)
is traced into a ``serving_default`` signature whose keys, dtypes and shapes are the recipe's
:meth:`~lstm_zoo.recipe.Recipe.serving_contract`; outputs are named (a dict), vocabularies
travel as assets and normalisation statistics as constants.

Each version is written to a hidden temporary sibling (``.N.xxxx.tmp``, which TF Serving
ignores) and renamed into place, so a server never sees a partial version and a failed export
leaves nothing behind.  Beside the graph, ``assets.extra/`` holds

* ``tf_serving_warmup_requests`` — ``PredictionLog`` records TF Serving replays on load;
* ``lstm_zoo.json`` — the manifest: recipe, device, signature contract, LSTM paths traced,
  versions.

``device="cpu"`` (the default) is portable: every LSTM is traced on a non-cuDNN path, and the
graph is checked to hold no cuDNN op, so it runs on any server.  ``device="gpu"`` traces the
cuDNN kernels and then needs a GPU server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lstm_zoo.errors import LstmZooError
from lstm_zoo.files import atomic_directory, atomic_write_json, current_umask
from lstm_zoo.recipe import Recipe, RecipeData
from lstm_zoo.serving.contract import ServingContract
from lstm_zoo.serving.device import DEVICES, gpu_available, traced_for
from lstm_zoo.serving.layout import (  # re-exported: the export API in one place
    MANIFEST_FILE,
    MODELS_CONFIG_FILE,
    ExportError,
    list_versions,
    next_version,
    read_export_manifest,
    servable_models,
    target_dir,
    write_models_config,
)
from lstm_zoo.serving.warmup import EXTRA_DIR, SIGNATURE, read_warmup, write_warmup

__all__ = [
    "DEVICES", "EMBEDDED_DEFAULT", "MANIFEST_FILE", "MODELS_CONFIG_FILE", "ExportError",
    "ExportResult", "export", "gpu_available", "list_versions", "next_version", "read_export_manifest",
    "servable_models", "traced_for", "write_models_config",
]


@dataclasses.dataclass
class ExportResult:
    """Where an export went and what it holds."""

    path: Path  # BASE/NAME/VERSION
    name: str
    version: int
    manifest: dict[str, Any]
    verification: dict[str, Any] | None = None

    @property
    def model_base_path(self) -> Path:
        """What to pass to ``tensorflow_model_server --model_base_path``."""
        return self.path.parent


# ---- resolving what to export --------------------------------------------------------------
def _resolve(model_or_recipe: Any, model: Any, recipe: Any, name: str | None) -> tuple[Any, Recipe]:
    """``(keras model, recipe)`` from the flexible arguments of :func:`export`."""
    from lstm_zoo.training.driver import load_model, resolve_recipe

    if isinstance(model_or_recipe, str | Recipe):
        if recipe is not None:
            raise ExportError("pass the recipe either positionally or as recipe=, not both")
        recipe = model_or_recipe
    elif model_or_recipe is not None:
        if model is not None:
            raise ExportError("pass the model either positionally or as model=, not both")
        model = model_or_recipe
    if recipe is None:
        recipe = name
    if recipe is None:
        raise ExportError("say which recipe the model belongs to (recipe= or name=)")
    recipe = resolve_recipe(recipe)
    if model is None:
        raise ExportError(
            f"no model given for recipe {recipe.name!r}: pass model= (a keras.Model, a .keras "
            f"file or a training run directory), or lstm_zoo.load_pretrained({recipe.name!r})"
        )
    if isinstance(model, str | os.PathLike):
        model = load_model(model)
    return model, recipe


# ---- a model that does not fit its recipe ---------------------------------------------------
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_MISMATCH_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError)


def _plain_message(exc: BaseException) -> str:
    """The first informative line of ``exc``, without Keras' ANSI styling and call banner."""
    lines = (line.strip() for line in _ANSI_ESCAPE.sub("", str(exc)).splitlines())
    useful = [line for line in lines if line and not line.startswith("Exception encountered")]
    return useful[0] if useful else type(exc).__name__


def _model_inputs(model: Any) -> str:
    inputs = getattr(model, "inputs", None) or []
    described = [f"{getattr(t, 'name', '?')} {tuple(t.shape)}" for t in inputs]
    return ", ".join(described) or "inputs of unknown shape"


def _mismatch(recipe: Recipe, model: Any, exc: BaseException, what: str) -> ExportError:
    """The error for a model the recipe cannot serve (most often: trained for another recipe)."""
    return ExportError(
        f"model {getattr(model, 'name', type(model).__name__)!r} does not match recipe "
        f"{recipe.name!r}'s serving contract: {what}, but the model takes "
        f"{_model_inputs(model)}; is it a model of another recipe? ({_plain_message(exc)})"
    )


def _contract_of(recipe: Recipe, model: Any) -> ServingContract:
    """The recipe's validated serving contract for ``model``."""
    try:
        raw = recipe.serving_contract(model)
    except LstmZooError:
        raise
    except _MISMATCH_ERRORS as exc:
        raise _mismatch(recipe, model, exc, "the contract cannot be read off it") from exc
    if raw is None:
        raise ExportError(
            f"recipe {recipe.name!r} has no serving contract (Recipe.serving_contract returned "
            "None), so its models cannot be exported"
        )
    return ServingContract.from_mapping(raw)


def _call_serving(serve: Any, inputs: Mapping[str, Any], recipe: Recipe, model: Any,
                  contract: ServingContract) -> Any:
    """``serve(inputs)``; a model that cannot take the contract's inputs raises ExportError
    saying so (its input shapes against the contract's), not a raw Keras shape error."""
    import tensorflow as tf

    try:
        return serve(inputs)
    except LstmZooError:
        raise
    except (*_MISMATCH_ERRORS, tf.errors.InvalidArgumentError) as exc:
        wanted = ", ".join(f"{k} {t.dtype} {t.shape}" for k, t in contract.inputs.items())
        raise _mismatch(recipe, model, exc, f"the contract feeds {wanted}") from exc


# ---- building the archive ------------------------------------------------------------------
def _serving_callable(recipe: Recipe, model: Any, contract: ServingContract) -> tuple[Any, list]:
    """The recipe's serving function with outputs checked and cast to the contract."""
    import tensorflow as tf

    serve = recipe.serving_function(model)
    extra_trackables = list(getattr(serve, "trackables", []))

    def endpoint(inputs: Mapping[str, Any]) -> dict[str, Any]:
        # TF Serving feeds tensors of any shape and value: shapes and finiteness are checked
        # first, so a bad request fails naming its input (not deep inside the model, or not
        # at all: a NaN would flow through to a confident wrong answer)
        checked = contract.checked_tensors(inputs)
        outputs = _call_serving(serve, checked, recipe, model, contract)
        if not isinstance(outputs, Mapping) or set(outputs) != set(contract.outputs):
            got = sorted(outputs) if isinstance(outputs, Mapping) else type(outputs).__name__
            raise ExportError(
                f"recipe {recipe.name!r} serving_function returned {got}; its contract names "
                f"outputs {sorted(contract.outputs)}"
            )
        return {
            key: tf.cast(outputs[key], tf.as_dtype(spec.dtype))
            if outputs[key].dtype != tf.as_dtype(spec.dtype)
            else tf.identity(outputs[key], name=key)
            for key, spec in contract.outputs.items()
        }

    return endpoint, extra_trackables


def _check_output_shapes(archive: Any, contract: ServingContract, name: str) -> None:
    import tensorflow as tf

    concrete = getattr(archive._tf_trackable, SIGNATURE).get_concrete_function()
    for key, spec in contract.outputs.items():
        traced = concrete.structured_outputs[key].shape
        if not traced.is_compatible_with(tf.TensorShape(spec.shape)):
            raise ExportError(
                f"recipe {name!r}: output {key!r} traces to shape {traced}, but the contract "
                f"says {spec.shape}"
            )


def _store_each_variable_once(archive: Any) -> None:
    """Keras 3.15's ``ExportArchive.track`` lists the model's Keras variables, and writing
    lists the TensorFlow variables the endpoints capture; on the TensorFlow backend a Keras
    variable is a separate trackable wrapping that TensorFlow variable, so every weight was
    written twice (the variables file was twice the weights).  Listing the wrapped TensorFlow
    variables instead lets the checkpoint see one object per weight; the revived SavedModel's
    ``variables`` properties still list them all."""
    tracked = archive._tf_trackable
    for attr in ("variables", "trainable_variables", "non_trainable_variables"):
        setattr(tracked, attr, [getattr(v, "value", v) for v in getattr(tracked, attr)])


def _trace(recipe: Recipe, model: Any, contract: ServingContract) -> Any:
    """An ``ExportArchive`` with the ``serving_default`` endpoint traced (not yet written)."""
    import keras

    endpoint, trackables = _serving_callable(recipe, model, contract)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for trackable in trackables:
        archive.track(trackable)
    _store_each_variable_once(archive)
    archive.add_endpoint(SIGNATURE, endpoint, input_signature=contract.input_signature())
    _check_output_shapes(archive, contract, recipe.name)
    return archive


def _write_savedmodel(recipe: Recipe, model: Any, contract: ServingContract, out: Path,
                      device: str) -> list[dict[str, Any]]:
    """Trace on ``device``'s paths and write the SavedModel; returns the LSTM paths traced."""
    with traced_for(model, device) as lstm_paths:
        archive = _trace(recipe, model, contract)
        archive.write_out(str(out), verbose=False)  # saving may trace again: keep the paths set
    return lstm_paths


def _expected_outputs(recipe: Recipe, model: Any, contract: ServingContract,
                      inputs: Mapping[str, np.ndarray]) -> dict:
    import tensorflow as tf

    serve = recipe.serving_function(model)
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    return {k: np.asarray(v) for k, v in _call_serving(serve, tensors, recipe, model,
                                                       contract).items()}


class _EmbeddedDefault:
    """Sentinel: take sample inputs from the recipe's embedded default data."""

    def __repr__(self) -> str:
        return "EMBEDDED_DEFAULT"


EMBEDDED_DEFAULT: Any = _EmbeddedDefault()


def _sample_inputs(
    recipe: Recipe, model: Any, contract: ServingContract, data: Any, samples: Any, n: int
) -> tuple[dict[str, np.ndarray], str]:
    """Sample inputs for warmup and verification, and where they came from."""
    if samples is not None:
        return contract.check_inputs(samples), "given"
    if data is EMBEDDED_DEFAULT:
        try:
            loaded = recipe.load(None)
            return (contract.check_inputs(recipe.sample_inputs(model, loaded, n)),
                    "recipe embedded default data")
        except (LstmZooError, NotImplementedError, ValueError) as exc:
            note = " ".join(str(exc).split())[:200]
            return contract.synthetic_inputs(n), f"synthetic (embedded data unusable: {note})"
    if isinstance(data, str | os.PathLike):
        data = recipe.load(data)
    if isinstance(data, RecipeData):
        return contract.check_inputs(recipe.sample_inputs(model, data, n)), "recipe data"
    return contract.synthetic_inputs(n), "synthetic (from the contract)"


# ---- the public entry point ----------------------------------------------------------------
def export(
    model_or_recipe: Any,
    base_dir: str | Path,
    name: str | None = None,
    version: int | None = None,
    *,
    model: Any = None,
    recipe: str | Recipe | None = None,
    data: RecipeData | str | Path | None = None,
    sample_inputs: Mapping[str, Any] | None = None,
    n_samples: int = 4,
    force: bool = False,
    device: str = "cpu",
    warmup: bool = True,
    verify: bool = False,
    atol: float = 1e-4,
) -> ExportResult:
    """Write ``model`` as a TF Serving SavedModel into ``base_dir/name/version``.

    ``model_or_recipe`` is a ``keras.Model`` (then ``recipe=`` or ``name`` names its recipe) or
    a recipe name/object (then ``model=`` is the model, a ``.keras`` path or a run directory).
    ``name`` defaults to the recipe name; ``version`` to the next free integer.  An existing
    version is only replaced with ``force``.  Warmup and verification use ``sample_inputs``, else
    ``recipe.sample_inputs`` on ``data`` (a ``RecipeData`` or a path the recipe loads), else
    inputs synthesised from the contract.  ``verify=True`` loads the export in a TensorFlow-only
    process and compares it with the model (``atol``).
    """
    from lstm_zoo.training.driver import versions

    if device not in DEVICES:
        raise ExportError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "gpu" and not gpu_available():
        raise ExportError(
            "--device gpu traces cuDNN kernels and needs a visible GPU, but TensorFlow sees none "
            "here; export with --device cpu (portable: runs on CPU and GPU servers)"
        )
    model, recipe = _resolve(model_or_recipe, model, recipe, name)
    name = name or recipe.name
    contract = _contract_of(recipe, model)
    inputs, sample_source = _sample_inputs(recipe, model, contract, data, sample_inputs, n_samples)
    base_dir = Path(base_dir)
    created = [p for p in (base_dir, base_dir / name) if not p.exists()]
    try:
        target, version = target_dir(base_dir, name, version, force)
        with atomic_directory(target, overwrite=force) as tmp:
            lstm_paths = _write_savedmodel(recipe, model, contract, tmp, device)
            from lstm_zoo.serving.verify import cudnn_ops, graph_op_types

            ops, xla = graph_op_types(tmp)
            if device == "cpu" and xla:
                raise ExportError(
                    "portable export holds XLA-compiled functions, which TF Serving does not run "
                    "by default (--xla_cpu_compilation_enabled); not written"
                )
            if device == "cpu" and cudnn_ops(ops):
                raise ExportError(f"portable export traced cuDNN ops {cudnn_ops(ops)}; not written")
            if device == "gpu" and not cudnn_ops(ops):
                raise ExportError("--device gpu traced no cuDNN op; use --device cpu instead")
            warmup_count = len(read_warmup(write_warmup(tmp, name, inputs))) if warmup else 0
            manifest = {
                "format": "lstm_zoo-export/1",
                "name": name,
                "recipe": recipe.name,
                "model": getattr(model, "name", type(model).__name__),
                "version": version,
                "device": device,
                "portable": device == "cpu",
                "requires": "any TF Serving (CPU or GPU build)" if device == "cpu"
                else "a TF Serving GPU build on a machine with a CUDA GPU (cuDNN kernels)",
                "signature": {"name": SIGNATURE, **contract.to_json()},
                "lstm_layers": lstm_paths,
                "cudnn_ops": cudnn_ops(ops),
                "xla_must_compile": xla,
                "warmup_requests": warmup_count,
                "sample_inputs": sample_source,
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "versions": versions(),
            }
            expected = _expected_outputs(recipe, model, contract, inputs)
            verification = None
            if verify:
                from lstm_zoo.serving.verify import verify_export

                verification = verify_export(tmp, inputs, expected, atol=atol,
                                             hide_gpus=device == "cpu")
                manifest["verification"] = verification
            atomic_write_json(tmp / EXTRA_DIR / MANIFEST_FILE, manifest)
            _make_readable(tmp)
    except BaseException:
        for folder in reversed(created):  # folders this export made, if it left them empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return ExportResult(target, name, version, manifest, verification)


def _make_readable(root: Path) -> None:
    """Every file of the export gets the mode the umask gives (a server running as another user
    must read them, whichever writer created them)."""
    umask = current_umask()
    for path in [root, *root.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)
