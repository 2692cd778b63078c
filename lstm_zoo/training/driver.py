"""The generic driver that trains and evaluates any recipe.

``train`` loads the recipe's data, builds and compiles its model, fits it with the standard
callbacks (early stopping with the best weights restored, a learning-rate schedule, a CSV log,
and ``BackupAndRestore`` so a killed run resumes from its last epoch), evaluates it next to the
recipe's baselines and writes ``model.keras``, ``metrics.json`` and PNG plots into ``out_dir``.
"""

from __future__ import annotations

import dataclasses
import platform
import time
import zipfile
from pathlib import Path
from typing import Any

from lstm_zoo.errors import ModelFileError
from lstm_zoo.files import atomic_path, atomic_write_json
from lstm_zoo.recipe import Recipe, RecipeData, TrainConfig

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
BACKUP_DIR = "backup"


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


def standard_callbacks(out_dir: Path, config: TrainConfig, resume: bool = True) -> list[Any]:
    """Early stopping, LR schedule, CSV log and resumable backups, all in ``out_dir``."""
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
    resume: bool = True,
    verbose: Any = "auto",
    plots: bool = True,
    **options: Any,
) -> TrainResult:
    """Train ``recipe`` on ``data`` (None: its embedded default) and evaluate it.

    ``hparams`` mixes :class:`TrainConfig` fields (``batch_size``, ``learning_rate`` ...) and
    model builder arguments (``units`` ...).  ``options`` are the recipe's own data options.
    With ``resume`` (the default) a run killed mid-training continues from its last epoch when
    started again with the same ``out_dir``.
    """
    import keras

    recipe = resolve_recipe(recipe)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        (out_dir / HISTORY_FILE).unlink(missing_ok=True)
    keras.utils.set_random_seed(seed)

    config_changes, model_hparams = split_hparams(recipe, dict(hparams or {}))
    config = recipe.train_config.replace(**config_changes, epochs=epochs)
    loaded = recipe.load(data, seed=seed, **options)
    model = recipe.build_model(loaded, **model_hparams)
    recipe.compile(model, config)

    started = time.perf_counter()
    recipe.fit(model, loaded, config, standard_callbacks(out_dir, config, resume), verbose)
    seconds = time.perf_counter() - started

    with atomic_path(out_dir / MODEL_FILE, suffix=".keras") as tmp:
        model.save(tmp)
    metrics = recipe.evaluate(model, loaded)
    record = {
        "recipe": recipe.name,
        "model": recipe.default_model,
        "data": str(data) if data is not None else "embedded default",
        "data_info": loaded.info,
        "seed": seed,
        "train_config": dataclasses.asdict(config),
        "hparams": model_hparams,
        "options": {k: v for k, v in options.items() if v is not None},
        "train_seconds": round(seconds, 1),
        "versions": versions(),
        "test": metrics,
    }
    atomic_write_json(out_dir / METRICS_FILE, record)
    if plots:
        _write_plots(recipe, model, loaded, out_dir)
    return TrainResult(model, record, out_dir, loaded, config, model_hparams)


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
