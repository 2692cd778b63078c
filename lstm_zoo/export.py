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
import sys
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lstm_zoo.errors import LstmZooError
from lstm_zoo.io import atomic_directory, atomic_write_json, atomic_write_text
from lstm_zoo.recipe import Recipe, RecipeData
from lstm_zoo.serving_contract import ServingContract
from lstm_zoo.warmup import EXTRA_DIR, SIGNATURE, write_warmup

MANIFEST_FILE = "lstm_zoo.json"
MODELS_CONFIG_FILE = "models.config"
DEVICES = ("cpu", "gpu")


class ExportError(LstmZooError, ValueError):
    """An export that cannot be written: no contract, existing version, unwritable folder ..."""


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


# ---- versions ------------------------------------------------------------------------------
def list_versions(model_dir: str | Path) -> list[int]:
    """The numeric version subdirectories of ``BASE/NAME``, ascending (as TF Serving sees them)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: str | Path) -> int:
    """One more than the highest existing version, or 1."""
    versions = list_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def _target_dir(base_dir: Path, name: str, version: int | None, force: bool) -> tuple[Path, int]:
    model_dir = base_dir / name
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"cannot create export folder {model_dir}: {exc.strerror or exc}; "
            "choose a writable --out directory"
        ) from None
    if not os.access(model_dir, os.W_OK):
        raise ExportError(f"export folder {model_dir} is not writable; choose another --out")
    if version is None:
        version = next_version(model_dir)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"version must be a positive integer, got {version!r}")
    target = model_dir / str(version)
    if target.exists() and not force:
        raise ExportError(
            f"version {version} of {name!r} already exists at {target}; pass --force "
            f"(force=True) to overwrite it, or leave out --version to write version "
            f"{next_version(model_dir)}"
        )
    return target, version


# ---- resolving what to export --------------------------------------------------------------
def _resolve(model_or_recipe: Any, model: Any, recipe: Any, name: str | None) -> tuple[Any, Recipe]:
    """``(keras model, recipe)`` from the flexible arguments of :func:`export`."""
    from lstm_zoo.training import load_model, resolve_recipe

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
        model = _pretrained(recipe.name)
    elif isinstance(model, str | os.PathLike):
        model = load_model(model)
    return model, recipe


def _pretrained(name: str) -> Any:
    try:
        from lstm_zoo import hub
    except ImportError:
        hub = None
    if hub is None or not hasattr(hub, "load_pretrained"):
        raise ExportError(
            f"no model given for recipe {name!r}: pass model= (a keras.Model, a .keras file or "
            "a training run directory), or --model PATH on the command line"
        )
    return hub.load_pretrained(name)


# ---- tracing on the right path -------------------------------------------------------------
def _lstm_layers(model: Any) -> list[Any]:
    flatten = getattr(model, "_flatten_layers", None)
    layers = list(flatten(include_self=True, recursive=True)) if flatten else [model]
    return [layer for layer in layers if hasattr(layer, "use_cudnn") or _is_ours(layer)]


def _is_ours(layer: Any) -> bool:
    return hasattr(layer, "implementation") and hasattr(layer, "dispatch_config")


_UNSET = object()


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU in this process."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@contextlib.contextmanager
def traced_for(model: Any, device: str) -> Iterator[list[dict[str, Any]]]:
    """Set every LSTM of ``model`` to a path for ``device`` while tracing; restore afterwards.

    ``"cpu"``: lstm_zoo LSTMs on ``"fused"`` without XLA (``fused_jit=False``: TF Serving
    runs no XLA:CPU JIT by default) where the configuration allows, else ``"generic"``;
    ``keras.layers.LSTM``/``GRU`` with ``use_cudnn=False``.  ``"gpu"``: left on
    ``"auto"``/``use_cudnn="auto"``, which picks cuDNN when a GPU is visible.  Yields a list
    filled (after tracing) with each layer's name and the path it took.
    """
    saved = []
    for layer in _lstm_layers(model):
        if _is_ours(layer):
            saved.append((layer, "implementation", layer.implementation))
            if device == "cpu" and layer.implementation in ("auto", "cudnn"):
                from lstm_zoo.layers.dispatch import fused_problems

                fused_ok = not fused_problems(layer.dispatch_config())
                layer.implementation = "fused" if fused_ok else "generic"
            if device == "cpu":
                # TF Serving runs no XLA:CPU JIT by default: the fused loop without XLA
                saved.append((layer, "fused_jit", getattr(layer, "fused_jit", _UNSET)))
                layer.fused_jit = False
        else:
            saved.append((layer, "use_cudnn", layer.use_cudnn))
            if device == "cpu":
                layer.use_cudnn = False
    paths: list[dict[str, Any]] = []
    try:
        yield paths
        for layer in dict.fromkeys(layer for layer, _attr, _old in saved):
            path = getattr(layer, "last_implementation", None)
            if path is None:
                path = "generic" if not getattr(layer, "use_cudnn", True) else "auto"
            paths.append({"layer": layer.name, "class": type(layer).__name__, "path": path})
    finally:
        for layer, attr, old in reversed(saved):
            if old is _UNSET:
                delattr(layer, attr)
            else:
                setattr(layer, attr, old)


# ---- building the archive ------------------------------------------------------------------
def _serving_callable(recipe: Recipe, model: Any, contract: ServingContract) -> tuple[Any, list]:
    """The recipe's serving function with outputs checked and cast to the contract."""
    import tensorflow as tf

    serve = recipe.serving_function(model)
    extra_trackables = list(getattr(serve, "trackables", []))

    def endpoint(inputs: Mapping[str, Any]) -> dict[str, Any]:
        # TF Serving feeds tensors of any shape into the graph: check rank and fixed dims here
        # so a bad request gets "Shape of tensor history [2,6,3] is not compatible with
        # expected shape [?,5,3]" rather than an error deep inside the model.
        checked = {k: tf.ensure_shape(v, contract.inputs[k].shape) for k, v in inputs.items()}
        outputs = serve(checked)
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


def _trace(recipe: Recipe, model: Any, contract: ServingContract) -> Any:
    """An ``ExportArchive`` with the ``serving_default`` endpoint traced (not yet written)."""
    import keras

    endpoint, trackables = _serving_callable(recipe, model, contract)
    archive = keras.export.ExportArchive()
    archive.track(model)
    for trackable in trackables:
        archive.track(trackable)
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


def _expected_outputs(recipe: Recipe, model: Any, inputs: Mapping[str, np.ndarray]) -> dict:
    import tensorflow as tf

    serve = recipe.serving_function(model)
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    return {k: np.asarray(v) for k, v in serve(tensors).items()}


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
    a recipe name/object (then ``model=`` is the model, a ``.keras`` path or a run directory; if
    absent the pretrained model is loaded through :mod:`lstm_zoo.hub` when available).
    ``name`` defaults to the recipe name; ``version`` to the next free integer.  An existing
    version is only replaced with ``force``.  Warmup and verification use ``sample_inputs``, else
    ``recipe.sample_inputs`` on ``data`` (a ``RecipeData`` or a path the recipe loads), else
    inputs synthesised from the contract.  ``verify=True`` loads the export in a TensorFlow-only
    process and compares it with the model (``atol``).
    """
    from lstm_zoo.training import versions

    if device not in DEVICES:
        raise ExportError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "gpu" and not gpu_available():
        raise ExportError(
            "--device gpu traces cuDNN kernels and needs a visible GPU, but TensorFlow sees none "
            "here; export with --device cpu (portable: runs on CPU and GPU servers)"
        )
    model, recipe = _resolve(model_or_recipe, model, recipe, name)
    name = name or recipe.name
    raw_contract = recipe.serving_contract(model)
    if raw_contract is None:
        raise ExportError(
            f"recipe {recipe.name!r} has no serving contract (Recipe.serving_contract returned "
            "None), so its models cannot be exported"
        )
    contract = ServingContract.from_mapping(raw_contract)
    inputs, sample_source = _sample_inputs(recipe, model, contract, data, sample_inputs, n_samples)
    base_dir = Path(base_dir)
    target, version = _target_dir(base_dir, name, version, force)

    with atomic_directory(target, overwrite=force) as tmp:
        lstm_paths = _write_savedmodel(recipe, model, contract, tmp, device)
        from lstm_zoo.serving_verify import cudnn_ops, graph_op_types

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
        if warmup:
            write_warmup(tmp, name, inputs)
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
            "warmup_requests": warmup,
            "sample_inputs": sample_source,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "versions": versions(),
        }
        expected = _expected_outputs(recipe, model, inputs)
        verification = None
        if verify:
            from lstm_zoo.serving_verify import verify_export

            verification = verify_export(tmp, inputs, expected, atol=atol,
                                         hide_gpus=device == "cpu")
            manifest["verification"] = verification
        atomic_write_json(tmp / EXTRA_DIR / MANIFEST_FILE, manifest)
        _make_readable(tmp)
    return ExportResult(target, name, version, manifest, verification)


def _make_readable(root: Path) -> None:
    """Temp files are created owner-only; a server running as another user must read them."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [root, *root.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def read_manifest(version_dir: str | Path) -> dict[str, Any]:
    """The ``assets.extra/lstm_zoo.json`` manifest of one exported version."""
    import json

    return json.loads((Path(version_dir) / EXTRA_DIR / MANIFEST_FILE).read_text())


def servable_models(base_dir: str | Path) -> dict[str, list[int]]:
    """``{name: versions}`` for every ``BASE/NAME`` holding a numeric version with a SavedModel."""
    base_dir = Path(base_dir)
    found = {}
    for model_dir in sorted(p for p in base_dir.iterdir() if p.is_dir()) if base_dir.is_dir() else []:
        versions = [v for v in list_versions(model_dir)
                    if (model_dir / str(v) / "saved_model.pb").is_file()]
        if versions:
            found[model_dir.name] = versions
    return found


def write_models_config(base_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write a TF Serving ``models.config`` serving every model under ``base_dir``.

    Use with ``tensorflow_model_server --model_config_file=BASE/models.config``; each model's
    ``base_path`` is absolute.  Built with the official ``ModelServerConfig`` proto.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    base_dir = Path(base_dir).resolve()
    models = servable_models(base_dir)
    if not models:
        raise ExportError(f"no exported models (NAME/VERSION/saved_model.pb) under {base_dir}")
    config = model_server_config_pb2.ModelServerConfig()
    for model_name in models:
        entry = config.model_config_list.config.add()
        entry.name = model_name
        entry.base_path = str(base_dir / model_name)
        entry.model_platform = "tensorflow"
    target = Path(path) if path is not None else base_dir / MODELS_CONFIG_FILE
    return atomic_write_text(target, text_format.MessageToString(config))


class _CallableModule(types.ModuleType):
    """Importing ``lstm_zoo.export`` binds the module to the package attribute ``export``, so
    the module itself forwards calls: ``lstm_zoo.export(...)`` always means :func:`export`."""

    def __call__(self, *args: Any, **kwargs: Any) -> ExportResult:
        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
