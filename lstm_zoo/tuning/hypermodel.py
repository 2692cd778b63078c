"""A recipe as a keras-tuner ``HyperModel``, and the tuner that runs it.

A recipe declares its search space in ``Recipe.search_space(hp)``: a dict whose keys that are
:class:`~lstm_zoo.recipe.TrainConfig` fields (``learning_rate``, ``batch_size`` ...) set the
training configuration and whose other keys go to ``Recipe.build_model``.  The hypermodel's
``build`` builds and compiles the recipe's model for one trial; its ``fit`` trains it with the
recipe's own ``fit`` (so its batch size, data pipeline and callbacks apply) plus early stopping.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from lstm_zoo.recipe import Recipe, RecipeData, TrainConfig
from lstm_zoo.training.driver import split_hparams
from lstm_zoo.tuning.oracle import SweepError

_HIGHER_IS_BETTER = ("acc", "auc", "bleu", "precision", "recall", "f1", "r2")


def draw_hyperparameters(recipe: Recipe, hp: Any) -> dict[str, Any]:
    """The recipe's hyperparameter values for one trial, checked: a non-empty dict whose
    training keys are valid ``TrainConfig`` fields."""
    values = recipe.search_space(hp)
    if not isinstance(values, dict):
        raise TypeError(
            f"recipe {recipe.name!r}: search_space(hp) must return a dict of hyperparameter "
            f"values, got {type(values).__name__}"
        )
    if not values or not hp.space:
        raise SweepError(
            f"recipe {recipe.name!r} has an empty search space: search_space(hp) must declare "
            "at least one hyperparameter (e.g. {'units': hp.Int('units', 16, 128, step=16)})"
        )
    config_changes, _ = split_hparams(recipe, values)
    recipe.train_config.replace(**config_changes)  # raises on a bad training setting
    return values


def check_search_space(recipe: Recipe) -> dict[str, Any]:
    """Draw the recipe's default hyperparameters once (fails early on an empty/bad space)."""
    import keras_tuner as kt

    return draw_hyperparameters(recipe, kt.HyperParameters())


def objective_for(config: TrainConfig) -> tuple[str, str]:
    """(metric name, "min"|"max") the sweep optimises: the recipe's early-stopping monitor."""
    name = config.monitor
    direction = "max" if any(k in name.lower() for k in _HIGHER_IS_BETTER) else "min"
    return name, direction


def trial_callbacks(config: TrainConfig) -> list[Any]:
    """What every trial trains with besides the recipe's own: early stopping (best weights
    restored), NaN guard, and the recipe's plateau schedule — as in ``lstm-zoo train``."""
    import keras

    callbacks = [
        keras.callbacks.EarlyStopping(monitor=config.monitor, patience=config.patience,
                                      restore_best_weights=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=config.monitor, factor=0.5, patience=max(1, config.patience // 2)))
    return callbacks


def _hypermodel_class():
    import keras
    import keras_tuner as kt

    class RecipeHyperModel(kt.HyperModel):
        """A recipe as a keras-tuner ``HyperModel``: build + compile per trial, recipe fit.

        With ``data=None`` (a chief, which never trains) ``build`` only declares the space.
        """

        def __init__(self, recipe: Recipe, data: RecipeData | None, config: TrainConfig,
                     seed: int = 0, fit_verbose: Any = 2):
            super().__init__(name=recipe.name)
            self.recipe, self.data, self.config = recipe, data, config
            self.seed, self.fit_verbose = seed, fit_verbose
            self.space_only = data is None

        def _split(self, hp: Any) -> tuple[TrainConfig, dict[str, Any]]:
            values = draw_hyperparameters(self.recipe, hp)
            config_changes, model_hparams = split_hparams(self.recipe, values)
            return self.config.replace(**config_changes), model_hparams

        def build(self, hp: Any) -> Any:
            config, model_hparams = self._split(hp)
            if self.space_only:
                return None
            keras.utils.set_random_seed(self.seed)  # same hyperparameters -> same model
            model = self.recipe.build_model(self.data, **model_hparams)
            self.recipe.compile(model, config)
            return model

        def fit(self, hp: Any, model: Any, *args: Any, callbacks: Any = (), epochs: Any = None,
                initial_epoch: int = 0, verbose: Any = None, **kwargs: Any) -> Any:
            config, _ = self._split(hp)
            total = epochs or config.epochs
            config = config.replace(epochs=max(1, total - initial_epoch))  # Hyperband resumes
            callbacks = [*callbacks, *trial_callbacks(config)]
            return self.recipe.fit(model, self.data, config, callbacks, verbose=self.fit_verbose)

    return RecipeHyperModel


def make_hypermodel(recipe: Recipe, data: RecipeData | None, config: TrainConfig,
                    seed: int = 0, fit_verbose: Any = 2) -> Any:
    """The recipe wrapped as a ``keras_tuner.HyperModel`` (see module docstring)."""
    return _hypermodel_class()(recipe, data, config, seed, fit_verbose)


_tuner_classes: dict[str, type] = {}


def make_tuner(tuner: str, oracle: Any, hypermodel: Any, directory: Path, project: str) -> Any:
    """keras-tuner's tuner class for ``tuner`` driven by ``oracle`` (see :mod:`tuning_oracle`).

    Always ``overwrite=False``: an existing project is reloaded (resume), never deleted —
    deleting is what makes keras-tuner's distributed workers crash each other.
    """
    import keras_tuner as kt

    cls = _tuner_classes.get(tuner)
    if cls is None:
        base = {"random": kt.RandomSearch, "hyperband": kt.Hyperband,
                "bayesian": kt.BayesianOptimization}[tuner]

        def __init__(self, oracle, hypermodel, **kwargs):  # skip the base's own oracle
            self.heartbeat = None
            kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)

        def on_trial_begin(self, trial):
            if self.heartbeat is not None:
                self.heartbeat.start(trial.trial_id)
            base.on_trial_begin(self, trial)

        def on_trial_end(self, trial):
            if self.heartbeat is not None:
                self.heartbeat.stop()
            base.on_trial_end(self, trial)

        cls = type(f"Sweep{base.__name__}", (base,), {
            "__init__": __init__, "on_trial_begin": on_trial_begin, "on_trial_end": on_trial_end,
        })
        _tuner_classes[tuner] = cls
    hypermodel.space_only = True  # declaring the space at construction needs no model
    try:
        return cls(oracle, hypermodel, directory=str(directory), project_name=project,
                   overwrite=False)
    finally:
        hypermodel.space_only = hypermodel.data is None


def recipe_hparams(recipe: Recipe, project_dir: Path, trial_id: str) -> dict[str, Any]:
    """The values ``search_space`` returns for a finished trial (what ``build_model`` and
    ``TrainConfig`` received; may differ from the raw hyperparameters, e.g. derived keys)."""
    from keras_tuner.engine.trial import Trial

    trial = Trial.load(str(project_dir / f"trial_{trial_id}" / "trial.json"))
    return draw_hyperparameters(recipe, trial.hyperparameters)


def train_defaults(recipe: Recipe, data: RecipeData, config: TrainConfig, seed: int,
                   objective: str, direction: str) -> dict[str, Any]:
    """Train the recipe's default hyperparameters under the sweep's budget: the reference a
    sweep's best trial is compared with (validation objective and test metrics)."""
    import keras

    keras.utils.set_random_seed(seed)
    model = recipe.build_model(data)
    recipe.compile(model, config)
    history = recipe.fit(model, data, config, trial_callbacks(config), verbose=2)
    values = [v for v in history.history.get(objective, []) if v == v]
    best = (min if direction == "min" else max)(values) if values else None
    return {"hyperparameters": "recipe defaults", "score": best,
            "train_config": dataclasses.asdict(config), "test": recipe.evaluate(model, data)}
