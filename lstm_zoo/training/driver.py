"""The generic driver that trains and evaluates any recipe.

``train`` loads the recipe's data, builds and compiles its model, fits it with the standard
callbacks (early stopping with the best weights restored, a learning-rate schedule, a CSV log,
and ``BackupAndRestore`` so a killed run resumes from its last epoch), evaluates it next to the
recipe's baselines and writes ``model.keras``, ``metrics.json`` and PNG plots into ``out_dir``
(switched in together, see :mod:`lstm_zoo.training.run_dir`).
"""

from __future__ import annotations

import dataclasses
import inspect
import platform
import time
import types
import zipfile
from pathlib import Path
from typing import Any

from lstm_zoo.errors import ConfigError, ModelFileError, UnknownNameError
from lstm_zoo.files import atomic_path, atomic_write_json
from lstm_zoo.recipe import Recipe, RecipeData, TrainConfig
from lstm_zoo.training import run_dir
from lstm_zoo.training.run_dir import BACKUP_DIR, HISTORY_FILE, METRICS_FILE, MODEL_FILE


@dataclasses.dataclass
class TrainResult:
    """What a training run produced."""

    model: Any
    metrics: dict[str, Any]
    out_dir: Path
    data: RecipeData
    config: TrainConfig
    hparams: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.out_dir / MODEL_FILE


def resolve_recipe(recipe: str | Recipe) -> Recipe:
    """A recipe object from a registered name or an instance."""
    if isinstance(recipe, Recipe):
        return recipe
    from lstm_zoo.registry import get_recipe

    return get_recipe(recipe)


def split_hparams(recipe: Recipe, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split mixed hyperparameters into (TrainConfig changes, model builder arguments)."""
    config_keys = {f.name for f in dataclasses.fields(TrainConfig)}
    config = {k: v for k, v in values.items() if k in config_keys}
    model = {k: v for k, v in values.items() if k not in config_keys}
    return config, model


_SIMPLE_TYPES: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool,
                                  "None": type(None)}


def _accepted_types(annotation: Any, default: Any) -> tuple[type, ...] | None:
    """The types a parameter takes, from its annotation (``int``, ``float | None`` ...) or
    else its default's type; None when that cannot be told (lists, ``Any``, no default)."""
    if isinstance(annotation, str):
        names = [part.strip() for part in annotation.split("|")]
        if all(name in _SIMPLE_TYPES for name in names):
            return tuple(_SIMPLE_TYPES[name] for name in names)
        return None
    parts = getattr(annotation, "__args__", None) if isinstance(annotation, types.UnionType) \
        else (annotation,)
    if parts and all(part in _SIMPLE_TYPES.values() for part in parts):
        return tuple(parts)
    if annotation is inspect.Parameter.empty and type(default) in (int, float, str, bool):
        return (type(default),)
    return None


def _fits(value: Any, accepted: tuple[type, ...]) -> bool:
    """Whether ``value`` is one of ``accepted`` (an int passes for a float, a bool for nothing
    but a bool)."""
    if isinstance(value, bool):
        return bool in accepted
    if isinstance(value, int) and float in accepted:
        return True
    return any(type(value) is kind or (kind is not bool and isinstance(value, kind))
               for kind in accepted)


def _type_names(accepted: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             type(None): "null"}
    return " or ".join(names[kind] for kind in accepted)


def _parameter_types(recipe: Recipe) -> dict[str, tuple[type, ...]]:
    """``{hyperparameter: accepted types}`` of the recipe's model: the registered builder's
    parameters, then those ``recipe.build_model`` names itself."""
    from lstm_zoo.registry import model_entry

    signatures = []
    try:
        signatures.append(inspect.signature(model_entry(recipe.default_model).builder))
    except (UnknownNameError, AttributeError, TypeError, ValueError):
        pass  # a recipe whose build_model does not use a registered builder
    signatures.append(inspect.signature(recipe.build_model))
    found: dict[str, tuple[type, ...]] = {}
    for signature in signatures:
        for param in signature.parameters.values():
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                accepted = _accepted_types(param.annotation, param.default)
                if accepted is not None:
                    found[param.name] = accepted
    return found


def check_hparam_types(recipe: Recipe, config_changes: dict[str, Any],
                       model_hparams: dict[str, Any]) -> None:
    """Refuse a hyperparameter of the wrong type (``units="abc"``), naming it and the type
    expected, before any data is loaded (the model would fail deep inside with
    "invalid literal for int()")."""
    config_types = {f.name: _accepted_types(f.type, f.default)
                    for f in dataclasses.fields(TrainConfig)}
    model_types = _parameter_types(recipe)
    for kind, owner, values, known in (
            ("training setting", "", config_changes, config_types),
            ("hyperparameter", f" of model {recipe.default_model!r}", model_hparams, model_types)):
        for key, value in values.items():
            accepted = known.get(key)
            if accepted is not None and not _fits(value, accepted):
                raise ConfigError(f"{kind} {key!r}{owner} must be {_type_names(accepted)}, got "
                                  f"{value!r} (type {type(value).__name__}); e.g. "
                                  f"{key}={_example(accepted)}")


def _example(accepted: tuple[type, ...]) -> str:
    return {int: "64", float: "0.001", str: "NAME", bool: "true"}.get(accepted[0], "null")


def standard_callbacks(out_dir: Path, config: TrainConfig, resume: bool = True) -> list[Any]:
    """Early stopping, LR schedule, CSV log and resumable backups, all in ``out_dir``.

    ``resume`` appends to an existing CSV log (the run folder's history is aligned with its
    backup by :func:`lstm_zoo.training.run_dir.prepare` first)."""
    import keras

    callbacks: list[Any] = [
        keras.callbacks.EarlyStopping(
            monitor=config.monitor, patience=config.patience, restore_best_weights=True
        ),
        keras.callbacks.CSVLogger(str(out_dir / HISTORY_FILE), append=resume),
        keras.callbacks.BackupAndRestore(str(out_dir / BACKUP_DIR), delete_checkpoint=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    if config.lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=config.monitor, factor=0.5, patience=max(1, config.patience // 2)
            )
        )
    return callbacks


def versions() -> dict[str, str]:
    """lstm_zoo / TensorFlow / Keras / Python versions, recorded with every result."""
    import keras
    import tensorflow as tf

    from lstm_zoo._version import __version__

    return {
        "lstm_zoo": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }


def train(
    recipe: str | Recipe,
    data: str | Path | None = None,
    *,
    out_dir: str | Path = "runs/train",
    seed: int = 0,
    epochs: int | None = None,
    hparams: dict[str, Any] | None = None,
    resume: bool | None = None,
    overwrite: bool = False,
    verbose: Any = "auto",
    plots: bool = True,
    **options: Any,
) -> TrainResult:
    """Train ``recipe`` on ``data`` (None: its embedded default) and evaluate it.

    ``hparams`` mixes :class:`TrainConfig` fields (``batch_size``, ``learning_rate`` ...) and
    model builder arguments (``units`` ...).  ``options`` are the recipe's own data options.
    ``out_dir`` always holds one consistent run (see :mod:`lstm_zoo.training.run_dir`): a run
    killed mid-training continues from its last epoch when started again with the same
    configuration and ``out_dir`` (``resume=True`` insists on that, ``resume=False`` starts
    over); a finished run there is refused unless ``overwrite``, which replaces it as a whole.
    """
    import keras

    recipe = resolve_recipe(recipe)
    out_dir = Path(out_dir).resolve()
    config_changes, model_hparams = split_hparams(recipe, dict(hparams or {}))
    check_hparam_types(recipe, config_changes, model_hparams)
    _check_positive("epochs", epochs)
    if epochs is not None:  # the epochs argument wins over an "epochs" hyperparameter
        config_changes["epochs"] = epochs
    config = recipe.train_config.replace(**config_changes)
    _check_positive("epochs", config.epochs)
    _check_positive("batch_size", config.batch_size)
    run = run_dir.identity(recipe.name, data, seed, dataclasses.asdict(config), model_hparams,
                           options)
    with run_dir.explained_write_errors(out_dir):
        run_dir.prepare(out_dir, run, resume, overwrite)
        keras.utils.set_random_seed(seed)
        loaded = recipe.load(data, seed=seed, **options)
        model = recipe.build_model(loaded, **model_hparams)
        recipe.compile(model, config)

        started = time.perf_counter()
        recipe.fit(model, loaded, config, standard_callbacks(out_dir, config), verbose)
        seconds = time.perf_counter() - started

        metrics = recipe.evaluate(model, loaded)
        record = {
            "recipe": recipe.name,
            "model": recipe.default_model,
            "data": str(data) if data is not None else "embedded default",
            "data_info": loaded.info,
            "seed": seed,
            "train_config": dataclasses.asdict(config),
            "hparams": model_hparams,
            "options": run["options"],
            "train_seconds": round(seconds, 1),
            "versions": versions(),
            "test": metrics,
        }
        with run_dir.finishing(out_dir) as staging:  # all artefacts switched in together
            with atomic_path(staging / MODEL_FILE, suffix=".keras") as tmp:
                model.save(tmp)
            atomic_write_json(staging / METRICS_FILE, record)
            if plots:
                _write_plots(recipe, model, loaded, staging)
            run_dir.finished_record(run, staging)
    return TrainResult(model, record, out_dir, loaded, config, model_hparams)


def _check_positive(name: str, value: Any) -> None:
    """Refuse ``epochs=0`` and the like (None: not given); Keras would silently train nothing."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer (1 or more), got {value!r}")


def _write_plots(recipe: Recipe, model: Any, data: RecipeData, out_dir: Path) -> list[Path]:
    from lstm_zoo.plots import plot_training_curves

    written = [plot_training_curves(out_dir / HISTORY_FILE, out_dir / "training_curves.png")]
    written += recipe.plot(model, data, out_dir)
    return [p for p in written if p is not None]


def load_model(path: str | Path) -> Any:
    """Load a ``.keras`` model in safe mode (no arbitrary code from the file runs)."""
    import keras

    import lstm_zoo.layers  # noqa: F401  registers the custom layers for deserialisation
    from lstm_zoo.registry import load_plugins

    load_plugins()  # recipes register their own serializable layers and losses

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(f"{path} is a folder without {MODEL_FILE}: not a finished "
                                    f"training run (give a .keras file or a run's --out folder)")
        path = path / MODEL_FILE
    check_model_file(path)
    return keras.saving.load_model(path, safe_mode=True)


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def check_model_file(path: Path) -> None:
    """Refuse a file that is not a saved Keras model, saying what it is expected to be.

    Keras reports a text file named ``.keras`` as "File not found" and one named ``.h5`` as
    "file signature not found"; this names the file and the format instead.
    """
    suffix = path.suffix.lower()
    if suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise ModelFileError(f"{path} is not a Keras archive: a .keras model is a zip file "
                                 f"(model.save writes one), this file starts with "
                                 f"{_head(path)!r}")
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():
                raise ModelFileError(f"{path} is a zip file but not a Keras archive (it has no "
                                     f"config.json); save the model with model.save")
    elif suffix in (".h5", ".hdf5"):
        if not _is_hdf5(path):
            raise ModelFileError(f"{path} is not a Keras HDF5 model: an .h5 model is an HDF5 "
                                 f"file, this file starts with {_head(path)!r}")
    else:
        raise ModelFileError(f"{path} is not a Keras model file: expected a .keras archive, a "
                             f"legacy .h5 file, or a training run folder holding {MODEL_FILE}")


def _head(path: Path, size: int = 16) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def _is_hdf5(path: Path) -> bool:
    """HDF5's signature sits at offset 0, or 512, 1024, 2048 ... after a user block."""
    with path.open("rb") as handle:
        offset, size = 0, path.stat().st_size
        while offset + len(HDF5_SIGNATURE) <= size:
            handle.seek(offset)
            if handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False


def evaluate(
    recipe: str | Recipe,
    model: str | Path | Any,
    data: str | Path | None = None,
    *,
    out_dir: str | Path | None = None,
    seed: int = 0,
    plots: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Evaluate a trained model (a ``.keras`` path, a run directory, or a model object).

    Uses the same deterministic splits as :func:`train`; writes ``metrics.json`` and plots into
    ``out_dir`` when given.
    """
    recipe = resolve_recipe(recipe)
    model_obj = load_model(model) if isinstance(model, str | Path) else model
    loaded = recipe.load(data, seed=seed, **options)
    metrics = recipe.evaluate(model_obj, loaded)
    record = {
        "recipe": recipe.name,
        "model": str(model) if isinstance(model, str | Path) else recipe.default_model,
        "data": str(data) if data is not None else "embedded default",
        "data_info": loaded.info,
        "versions": versions(),
        "test": metrics,
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        atomic_write_json(out_dir / METRICS_FILE, record)
        if plots:
            recipe.plot(model_obj, loaded, out_dir)
    return record
