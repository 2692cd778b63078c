"""The end of a sweep: the final results table and plot, the best trial's model saved and
evaluated, and the :class:`SweepResult` a caller gets back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from lstm_zoo.files import atomic_path, atomic_write_json
from lstm_zoo.recipe import Recipe, RecipeData
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


def finish_sweep(recipe: Recipe, directory: Path, objective: str, direction: str,
                 extra: dict[str, Any], tuner: Any = None,
                 data: RecipeData | None = None) -> SweepResult:
    """Write the final table and plot; with a tuner and data, save and evaluate the best model."""
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
