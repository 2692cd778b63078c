"""A sweep's results table (CSV + JSON) and plot, read from keras-tuner's project directory.

Everything is read back from the files keras-tuner writes (``trial_*/trial.json``) and from the
oracle's saved state (``oracle.json``, which holds who ran each trial and when; see
:mod:`lstm_zoo.tuning.oracle`), so the table can be (re)built by any process, at any time,
while the sweep runs or after it ended, and it is the same for local and distributed sweeps.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lstm_zoo.files import atomic_write_json, atomic_write_text

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
PLOT_FILE = "trials.png"


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_trials(project_dir: str | Path) -> list[dict[str, Any]]:
    """One row per trial (sorted by trial id): id, status, worker, hyperparameters, metrics,
    score, duration and error message."""
    from keras_tuner.engine.trial import Trial

    project_dir = Path(project_dir)
    extra: dict[str, Any] = {}
    oracle_file = project_dir / "oracle.json"
    if oracle_file.exists():
        extra = json.loads(oracle_file.read_text()).get("lstm_zoo", {})
    rows = []
    for trial_file in sorted(project_dir.glob("trial_*/trial.json")):
        trial = Trial.load(str(trial_file))
        trial_id = trial.trial_id
        metrics = {}
        for name in trial.metrics.metrics:
            metrics[name] = _finite(trial.metrics.get_last_value(name))
        started = extra.get("started_at", {}).get(trial_id)
        ended = extra.get("ended_at", {}).get(trial_id)
        message = (trial.message or "").strip().splitlines()
        rows.append(
            {
                "trial_id": trial_id,
                "status": trial.status,
                "worker": extra.get("ran_by", {}).get(trial_id),
                "hyperparameters": dict(trial.hyperparameters.values),
                "metrics": metrics,
                "score": _finite(trial.score),
                "best_step": trial.best_step,
                "started": _iso(started),
                "ended": _iso(ended),
                "duration_s": round(ended - started, 1) if started and ended else None,
                "requeues": extra.get("requeues", {}).get(trial_id, 0),
                "message": message[-1] if message else None,
            }
        )
    rows.sort(key=lambda r: (len(r["trial_id"]), r["trial_id"]))
    return rows


def best_row(rows: list[dict[str, Any]], direction: str = "min") -> dict[str, Any] | None:
    """The COMPLETED trial with the best score (None if none completed)."""
    done = [r for r in rows if r["status"] == "COMPLETED" and r["score"] is not None]
    if not done:
        return None
    pick = min if direction == "min" else max
    return pick(done, key=lambda r: r["score"])


def write_results(
    project_dir: str | Path,
    out_dir: str | Path,
    *,
    objective: str,
    direction: str = "min",
    extra: dict[str, Any] | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """Write ``results.csv``, ``results.json`` and (``plot``) ``trials.png`` into ``out_dir``.

    Returns the JSON record: objective, counts per status, the best trial and every row.
    """
    out_dir = Path(out_dir)
    rows = read_trials(project_dir)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    record = {
        "objective": objective,
        "direction": direction,
        "trials": len(rows),
        "status_counts": counts,
        "best": best_row(rows, direction),
        **(extra or {}),
        "rows": rows,
    }
    atomic_write_json(out_dir / RESULTS_JSON, record)
    atomic_write_text(out_dir / RESULTS_CSV, _csv_text(rows))
    if plot:
        plot_trials(rows, out_dir / PLOT_FILE, objective=objective, direction=direction)
    return record


def _csv_text(rows: list[dict[str, Any]]) -> str:
    hp_names = sorted({k for r in rows for k in r["hyperparameters"]})
    metric_names = sorted({k for r in rows for k in r["metrics"]})
    fixed = ["trial_id", "status", "worker", "score", "best_step", "duration_s", "started",
             "ended", "requeues"]
    header = fixed + [f"hp:{n}" for n in hp_names] + [f"metric:{n}" for n in metric_names]
    header.append("message")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for r in rows:
        writer.writerow(
            [r[k] for k in fixed]
            + [r["hyperparameters"].get(n) for n in hp_names]
            + [r["metrics"].get(n) for n in metric_names]
            + [r["message"]]
        )
    return buffer.getvalue()


def plot_trials(
    rows: list[dict[str, Any]], target: Path, *, objective: str, direction: str = "min"
) -> Path | None:
    """The objective of each completed trial (in the order trials ended) and the best so far."""
    from lstm_zoo.plots import figure, save_figure

    done = [r for r in rows if r["status"] == "COMPLETED" and r["score"] is not None]
    if not done:
        return None
    done.sort(key=lambda r: (r["ended"] or "", r["trial_id"]))
    scores = [r["score"] for r in done]
    best, best_so_far = None, []
    for s in scores:
        best = s if best is None else (min(best, s) if direction == "min" else max(best, s))
        best_so_far.append(best)
    plt = figure()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    x = list(range(1, len(done) + 1))
    ax.plot(x, scores, "o", label=f"trial {objective}")
    ax.step(x, best_so_far, where="post", label="best so far", color="tab:red")
    for xi, r in zip(x, done):
        ax.annotate(r["trial_id"], (xi, r["score"]), textcoords="offset points", xytext=(3, 3),
                    fontsize=7)
    ax.set_xlabel("trial (in the order it ended)")
    ax.set_ylabel(objective)
    ax.set_title(f"sweep: {objective} per trial ({len(done)} completed of {len(rows)})")
    ax.legend()
    return save_figure(fig, target)
