"""The end of a sweep: the final results table and plot, the best trial's model saved and
evaluated, and the :class:`SweepResult` a caller gets back."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lstm_zoo.files import atomic_path, atomic_write_json
from lstm_zoo.recipe import Recipe, RecipeData, recipe_option_args
from lstm_zoo.training.driver import MODEL_FILE, versions
from lstm_zoo.tuning.hypermodel import recipe_hparams
from lstm_zoo.tuning.results import write_results

BEST_DIR = "best"


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
    def plot(self) -> Path:
        return self.directory / "trials.png"


def retrain_command(recipe_name: str, hparams: Mapping[str, Any], *, seed: int,
                    epochs: int | None, data: str | os.PathLike | None,
                    options: Mapping[str, Any] | None) -> str:
    """The ``lstm-zoo train`` line that retrains a sweep's best trial: its hyperparameters on
    the sweep's data (``--data``), recipe options (``--time-col`` ...), seed and epoch budget.

    Without the data and options the printed line silently trained on the recipe's embedded
    data instead of the swept file.
    """
    parts = ["lstm-zoo", "train", recipe_name]
    for key, value in hparams.items():
        parts += ["--hparam", f"{key}={json.dumps(value)}"]
    parts += ["--seed", str(seed)]
    if epochs is not None:
        parts += ["--epochs", str(epochs)]
    if data is not None:
        parts += ["--data", os.fspath(data)]
    parts += recipe_option_args(options)
    return shlex.join(parts)


def finish_sweep(recipe: Recipe, directory: Path, objective: str, direction: str,
                 extra: dict[str, Any], tuner: Any = None,
                 data: RecipeData | None = None, *,
                 data_source: str | os.PathLike | None = None,
                 options: Mapping[str, Any] | None = None) -> SweepResult:
    """Write the final table and plot; with a tuner and data, save and evaluate the best model.

    ``data_source`` (the ``--data`` file or folder) and ``options`` (the recipe options) are
    what the sweep loaded; they go into the printed retrain line (with ``extra``'s seed and
    epochs) and into ``results.json``.
    """
    extra = {**extra, "data": None if data_source is None else os.fspath(data_source),
             "options": dict(options or {})}
    project_dir = directory / recipe.name
    record = write_results(project_dir, directory, objective=objective, direction=direction,
                           extra=extra)
    best = record["best"]
    best_path = None
    if best is not None:
        best["recipe_hparams"] = recipe_hparams(recipe, project_dir, best["trial_id"])
        best["retrain_command"] = retrain_command(
            recipe.name, best["recipe_hparams"], seed=extra.get("seed", 0),
            epochs=extra.get("epochs"), data=data_source, options=options)
        atomic_write_json(directory / "results.json", record)
        print(f"[sweep] best trial {best['trial_id']}: {objective}={best['score']} "
              f"{best['hyperparameters']}")
        print(f"[sweep] retrain it: {best['retrain_command']}")
        if tuner is not None and data is not None:
            best_path = save_best_model(recipe, tuner, data, directory / BEST_DIR, best)
    print(f"[sweep] wrote {directory / 'results.csv'}, {directory / 'results.json'}, "
          f"{directory / 'trials.png'}")
    return SweepResult(directory, record, best, best_path)


def save_best_model(recipe: Recipe, tuner: Any, data: RecipeData, out_dir: Path,
                    best: dict[str, Any]) -> Path:
    """Save the best trial's model (its best epoch) as ``model.keras`` and its test metrics."""
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
