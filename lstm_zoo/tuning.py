"""Hyperparameter sweeps of any recipe with keras-tuner: local, or chief/worker across machines.

A recipe declares its search space in ``Recipe.search_space(hp)``: a dict whose keys that are
:class:`~lstm_zoo.recipe.TrainConfig` fields (``learning_rate``, ``batch_size`` ...) set the
training configuration and whose other keys go to ``Recipe.build_model``.
:class:`RecipeHyperModel` wraps that generically into a ``keras_tuner.HyperModel``: ``build``
builds and compiles the recipe's model for one trial, ``fit`` trains it with the recipe's own
``fit`` (so its batch size, data pipeline and callbacks apply) plus early stopping.

:func:`tune` runs the sweep and writes, next to keras-tuner's project folder, a results table
(``results.csv`` / ``results.json``: trial id, status, worker, hyperparameters, metrics,
duration), a plot (``trials.png``: objective per trial, best so far) and, for a local sweep,
the best model (``best/model.keras`` + ``best/metrics.json``, evaluated on the test split).
An interrupted sweep resumes from its directory (keras-tuner with ``overwrite=False``): finished
trials are kept, the interrupted one is rerun.  Distributed roles live in
:mod:`lstm_zoo.tuning_distributed`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from lstm_zoo.io import atomic_path, atomic_write_json
from lstm_zoo.recipe import Recipe, RecipeData, TrainConfig
from lstm_zoo.training import resolve_recipe, split_hparams
from lstm_zoo.tuning_oracle import SweepError

ROLES = ("local", "chief", "worker")
BEST_DIR = "best"
_HIGHER_IS_BETTER = ("acc", "auc", "bleu", "precision", "recall", "f1", "r2")


@dataclasses.dataclass
class SweepResult:
    """What a sweep produced (``best`` is the best COMPLETED row of the results table)."""

    directory: Path
    record: dict[str, Any]
    best: dict[str, Any] | None
    best_model_path: Path | None = None

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.record["rows"]

    @property
    def results_csv(self) -> Path:
        return self.directory / "results.csv"

    @property
    def results_json(self) -> Path:
        return self.directory / "results.json"

    @property
    def plot(self) -> Path:
        return self.directory / "trials.png"


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


def _progress_printer(project_dir: Path, out_dir: Path, objective: str, direction: str):
    from lstm_zoo.tuning_results import write_results

    def on_trial_end(oracle: Any) -> None:
        record = write_results(project_dir, out_dir, objective=objective, direction=direction,
                               plot=False)
        ended = sum(v for k, v in record["status_counts"].items() if k in ("COMPLETED", "FAILED"))
        last = max(record["rows"], key=lambda r: r["ended"] or "", default=None)
        best = record["best"]
        if last is not None:
            print(f"[sweep] trial {last['trial_id']} {last['status']} "
                  f"{objective}={last['score']} by {last['worker']} in {last['duration_s']}s; "
                  f"best {best['score'] if best else None} (trial "
                  f"{best['trial_id'] if best else '-'}); {ended}/{oracle.max_trials} ended; "
                  f"table: {out_dir / 'results.csv'}", flush=True)

    return on_trial_end


def tune(
    recipe: str | Recipe,
    tuner: str = "random",
    *,
    max_trials: int = 10,
    epochs: int | None = None,
    directory: str | Path | None = None,
    seed: int = 0,
    data: str | Path | None = None,
    role: str | None = None,
    oracle: str | None = None,
    worker_id: str | None = None,
    worker_timeout: float = 300.0,
    heartbeat_seconds: float = 10.0,
    connect_timeout: float = 60.0,
    rpc_timeout: float = 3600.0,
    save_best: bool = True,
    baseline: bool = False,
    export: str | Path | None = None,
    verbose: int = 1,
    **options: Any,
) -> SweepResult:
    """Run (or resume) a hyperparameter sweep of ``recipe``.

    ``tuner``: "random" (default), "hyperband" or "bayesian".  ``epochs`` caps each trial
    (early stopping may end it sooner; default: the recipe's).  ``directory`` (default
    ``sweeps/RECIPE``) holds keras-tuner's project and the results; rerunning with the same
    directory resumes.  ``seed`` fixes the trials' hyperparameters and initial weights.
    ``options`` are the recipe's data options.

    ``role``: "local" (one process), "chief" (serves the oracle on ``oracle`` = "HOST:PORT",
    trains nothing) or "worker" (runs trials handed out by the chief, under ``worker_id``).
    ``None`` follows keras-tuner's environment variables when they are set
    (``KERASTUNER_ORACLE_IP``/``_PORT``/``KERASTUNER_TUNER_ID``), else "local".
    A worker restarted under the same id takes its unfinished trial back; a trial whose worker
    is silent for ``worker_timeout`` seconds is re-queued by the chief.  ``baseline`` (local)
    also trains the recipe's default hyperparameters under the same budget, for comparison;
    ``export`` (local) exports the best model for TF Serving into that directory through
    :func:`lstm_zoo.export.export`.
    """
    from lstm_zoo.tuning_oracle import TUNERS, make_oracle

    recipe = resolve_recipe(recipe)
    role, oracle, worker_id = _role_from_environment(role, oracle, worker_id)
    if export is not None and role != "local":
        raise SweepError("--export needs a local sweep (the best model lives on a worker); "
                         "retrain the best hyperparameters with lstm-zoo train and export that")
    if tuner not in TUNERS:
        raise SweepError(f"unknown tuner {tuner!r}; choose one of {', '.join(TUNERS)}")
    if role not in ROLES:
        raise SweepError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    directory = Path(directory or f"sweeps/{recipe.name}")
    config = recipe.train_config.replace(epochs=epochs)
    check_search_space(recipe)
    objective, direction = objective_for(config)

    import keras_tuner as kt

    kt_oracle = make_oracle(tuner, objective=kt.Objective(objective, direction),
                            max_trials=max_trials, epochs=config.epochs, seed=seed,
                            worker_timeout=worker_timeout)
    project_dir = directory / recipe.name
    if role != "worker":
        kt_oracle.on_trial_end = _progress_printer(project_dir, directory, objective, direction)
    if role != "local":
        from lstm_zoo.tuning_distributed import run_distributed

        return run_distributed(
            role, recipe=recipe, tuner=tuner, oracle=kt_oracle, config=config,
            directory=directory, seed=seed, data=data, address=oracle, worker_id=worker_id,
            heartbeat_seconds=heartbeat_seconds, connect_timeout=connect_timeout,
            rpc_timeout=rpc_timeout, verbose=verbose, options=options,
        )

    loaded = recipe.load(data, seed=seed, **options)
    hypermodel = make_hypermodel(recipe, loaded, config, seed)
    kt_tuner = make_tuner(tuner, kt_oracle, hypermodel, directory, recipe.name)
    kt_oracle.verbose = verbose
    started = time.perf_counter()
    kt_tuner.search(epochs=config.epochs, verbose=verbose)
    extra = {"recipe": recipe.name, "tuner": tuner, "seed": seed, "max_trials": max_trials,
             "epochs": config.epochs, "finished": True,
             "sweep_seconds": round(time.perf_counter() - started, 1)}
    if baseline:
        extra["baseline"] = train_defaults(recipe, loaded, config, seed, objective, direction)
    result = finish_sweep(recipe, directory, objective, direction, extra,
                          tuner=kt_tuner if save_best or export else None, data=loaded)
    if export is not None and result.best_model_path is not None:
        from lstm_zoo.export import export as export_model

        exported = export_model(recipe, export, model=result.best_model_path, data=loaded)
        print(f"[sweep] exported the best model to {exported.path}")
    return result


def _role_from_environment(role: str | None, oracle: str | None,
                           worker_id: str | None) -> tuple[str, str | None, str | None]:
    """Fill role / oracle address / worker id from keras-tuner's variables when not given."""
    env = os.environ
    if role is None:
        if "KERASTUNER_ORACLE_IP" in env:
            role = "chief" if "chief" in env.get("KERASTUNER_TUNER_ID", "") else "worker"
        else:
            role = "local"
    if role != "local" and oracle is None and "KERASTUNER_ORACLE_IP" in env:
        oracle = f"{env['KERASTUNER_ORACLE_IP']}:{env.get('KERASTUNER_ORACLE_PORT', '')}"
    if role == "worker" and worker_id is None:
        worker_id = env.get("KERASTUNER_TUNER_ID")
    return role, oracle, worker_id


def finish_sweep(recipe: Recipe, directory: Path, objective: str, direction: str,
                 extra: dict[str, Any], tuner: Any = None,
                 data: RecipeData | None = None) -> SweepResult:
    """Write the final table and plot; with a tuner and data, save and evaluate the best model."""
    from lstm_zoo.tuning_results import write_results

    project_dir = directory / recipe.name
    record = write_results(project_dir, directory, objective=objective, direction=direction,
                           extra=extra)
    best = record["best"]
    best_path = None
    if best is not None:
        best["recipe_hparams"] = recipe_hparams(recipe, project_dir, best["trial_id"])
        atomic_write_json(directory / "results.json", record)
        hp_flags = " ".join(f"--hparam {k}={json.dumps(v)}"
                            for k, v in best["recipe_hparams"].items())
        print(f"[sweep] best trial {best['trial_id']}: {objective}={best['score']} "
              f"{best['hyperparameters']}")
        print(f"[sweep] retrain it: lstm-zoo train {recipe.name} {hp_flags}")
        if tuner is not None and data is not None:
            best_path = save_best_model(recipe, tuner, data, directory / BEST_DIR, best)
    print(f"[sweep] wrote {directory / 'results.csv'}, {directory / 'results.json'}, "
          f"{directory / 'trials.png'}")
    return SweepResult(directory, record, best, best_path)


def recipe_hparams(recipe: Recipe, project_dir: Path, trial_id: str) -> dict[str, Any]:
    """The values ``search_space`` returns for a finished trial (what ``build_model`` and
    ``TrainConfig`` received; may differ from the raw hyperparameters, e.g. derived keys)."""
    from keras_tuner.src.engine.trial import Trial

    trial = Trial.load(str(project_dir / f"trial_{trial_id}" / "trial.json"))
    return draw_hyperparameters(recipe, trial.hyperparameters)


def save_best_model(recipe: Recipe, tuner: Any, data: RecipeData, out_dir: Path,
                    best: dict[str, Any]) -> Path:
    """Save the best trial's model (its best epoch) as ``model.keras`` and its test metrics."""
    from lstm_zoo.training import MODEL_FILE, versions

    model = tuner.get_best_models(1)[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / MODEL_FILE, suffix=".keras") as tmp:
        model.save(tmp)
    atomic_write_json(out_dir / "metrics.json", {
        "recipe": recipe.name,
        "model": recipe.default_model,
        "trial_id": best["trial_id"],
        "hyperparameters": best["hyperparameters"],
        "validation": best["metrics"],
        "data_info": data.info,
        "versions": versions(),
        "test": recipe.evaluate(model, data),
    })
    return out_dir / MODEL_FILE


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


__all__ = ["SweepResult", "check_search_space", "draw_hyperparameters", "make_hypermodel",
           "make_tuner", "objective_for", "trial_callbacks", "tune"]
