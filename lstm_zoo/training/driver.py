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
from pathlib import Path
from typing import Any

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
        path = path / MODEL_FILE
    return keras.saving.load_model(path, safe_mode=True)


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
