"""Combine finished training runs of one recipe into an ensemble run (``lstm-zoo ensemble``).

The members are runs of ``lstm-zoo train`` with the same recipe, data and recipe options (in
practice: the same command with different ``--seed``); they may differ in hyperparameters and
in the options a recipe lists as ``training_only_options`` (augmentation and the like).  The
result is a run directory like any other - ``model.keras``, ``metrics.json`` (test metrics of
the ensemble next to the baselines, and each member's record), plots - so ``lstm-zoo export``
and ``lstm-zoo publish --run`` take it as they take a trained run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lstm_zoo.files import atomic_path, atomic_write_json
from lstm_zoo.recipe import Recipe
from lstm_zoo.training.driver import (
    METRICS_FILE,
    MODEL_FILE,
    TrainResult,
    load_model,
    resolve_recipe,
    versions,
)

#: What a member's record keeps in the ensemble's ``metrics.json``.
MEMBER_KEYS = ("seed", "data", "train_config", "hparams", "options", "train_seconds")


def read_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``metrics.json`` record of a finished run (raises if ``run_dir`` is not one)."""
    run = Path(run_dir)
    for path in (run / METRICS_FILE, run / MODEL_FILE):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: {run} is not a finished training "
                                    f"run (expected {MODEL_FILE} and {METRICS_FILE})")
    return json.loads((run / METRICS_FILE).read_text())


def _compared(recipe: Recipe, key: str, record: dict[str, Any]) -> Any:
    """What of a run's ``data`` or ``options`` must match across an ensemble's members:
    everything but the recipe's training-only options."""
    value = record.get(key)
    if key == "options" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in recipe.training_only_options}
    return value


def ensemble_runs(
    recipe: str | Recipe,
    run_dirs: Sequence[str | os.PathLike],
    *,
    out_dir: str | os.PathLike,
    data: str | os.PathLike | None = None,
    plots: bool = True,
) -> TrainResult:
    """Combine the models of ``run_dirs`` (see :func:`lstm_zoo.models.ensemble.build_ensemble`,
    combined as ``recipe.ensemble_combine`` says) and evaluate the ensemble on the recipe's
    data, rebuilt with the first member's seed and options.

    ``data``: where the runs' data is now (default: the path the first run recorded).
    Raises ``ValueError`` when the recipe cannot ensemble its models or the runs differ in
    recipe, data or options (their test sets would not be the same task).
    """
    from lstm_zoo.models.ensemble import build_ensemble
    from lstm_zoo.models.ensemble import members as _members_of

    recipe = resolve_recipe(recipe)
    if recipe.ensemble_combine is None:
        raise ValueError(f"recipe {recipe.name!r} does not combine its models into ensembles")
    if len(run_dirs) < 2:
        raise ValueError(f"an ensemble needs at least 2 runs, got {len(run_dirs)}")
    records = [read_run(run) for run in run_dirs]
    for run, record in zip(run_dirs, records):
        if record.get("recipe") != recipe.name:
            raise ValueError(f"{run} is a run of recipe {record.get('recipe')!r}, "
                             f"not {recipe.name!r}")
        if "members" in record:
            raise ValueError(f"{run} is an ensemble already; combine the runs it was built from")
    first = records[0]
    for key in ("data", "options"):
        differing = [str(run) for run, r in zip(run_dirs, records)
                     if _compared(recipe, key, r) != _compared(recipe, key, first)]
        if differing:
            raise ValueError(f"the runs differ in {key}: {', '.join(differing)} vs "
                             f"{run_dirs[0]} ({_compared(recipe, key, first)!r}); members must "
                             "share the recipe's data and the options that shape its "
                             "validation and test data")
    if data is None:
        data = None if first.get("data") in (None, "embedded default") else first["data"]
    options = dict(first.get("options") or {})
    seed = int(first["seed"])

    model = build_ensemble([load_model(run) for run in run_dirs], recipe.ensemble_combine,
                           name=f"{recipe.name}_ensemble")
    recipe.compile(model, recipe.train_config)  # recipes that call model.evaluate need it
    loaded = recipe.load(data, seed=seed, **options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / MODEL_FILE, suffix=".keras") as tmp:
        model.save(tmp)
    metrics = recipe.evaluate(model, loaded)
    headline = recipe.headline_metric
    member_scores = [recipe.evaluate(member, loaded).get(headline)
                     for member in _members_of(model)] if headline else []
    record = {
        "recipe": recipe.name,
        "model": first.get("model", recipe.default_model),
        "data": os.fspath(data) if data is not None else "embedded default",
        "data_info": loaded.info,
        "seed": seed,
        "train_config": first.get("train_config"),
        "hparams": first.get("hparams"),
        "options": options,
        "train_seconds": round(sum(float(r.get("train_seconds") or 0) for r in records), 1),
        "ensemble": {"combine": recipe.ensemble_combine, "size": len(records)},
        # each member's headline metric on the ensemble's own test data, for comparison
        "members": [{"run": os.fspath(run), **{k: r.get(k) for k in MEMBER_KEYS},
                     "test_" + str(headline): score}
                    for run, r, score in zip(run_dirs, records, member_scores or
                                             [None] * len(records))],
        "versions": versions(),
        "test": metrics,
    }
    atomic_write_json(out / METRICS_FILE, record)
    if plots:
        recipe.plot(model, loaded, out)
    config = recipe.train_config.replace(**dict(first.get("train_config") or {}))
    return TrainResult(model, record, out, loaded, config, dict(first.get("hparams") or {}))
