"""Hyperparameter sweeps of any recipe with keras-tuner: local, or chief/worker across machines.

A recipe's search space becomes a keras-tuner ``HyperModel`` in :mod:`lstm_zoo.tuning.hypermodel`.

:func:`tune` runs the sweep and writes, next to keras-tuner's project folder, a results table
(``results.csv`` / ``results.json``: trial id, status, worker, hyperparameters, metrics,
duration), a plot (``trials.png``: objective per trial, best so far) and, for a local sweep,
the best model (``best/model.keras`` + ``best/metrics.json``, evaluated on the test split).
An interrupted sweep resumes from its directory (keras-tuner with ``overwrite=False``): finished
trials are kept, the interrupted one is rerun.  Distributed roles live in
:mod:`lstm_zoo.tuning.chief_worker`.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lstm_zoo.recipe import Recipe
from lstm_zoo.training.driver import resolve_recipe
from lstm_zoo.tuning.chief_worker import run_distributed
from lstm_zoo.tuning.choices import ROLES, TUNERS
from lstm_zoo.tuning.finish import SweepResult, finish_sweep
from lstm_zoo.tuning.hypermodel import (
    check_search_space,
    make_hypermodel,
    make_tuner,
    objective_for,
    train_defaults,
)
from lstm_zoo.tuning.oracle import SweepError, make_oracle
from lstm_zoo.tuning.results import write_results

LOCK_FILE = ".sweep.lock"  # in the sweep directory: who holds it (pid, host, role, oracle)


def _progress_printer(project_dir: Path, out_dir: Path, objective: str, direction: str):
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
    :func:`lstm_zoo.serving.savedmodel.export`.  A chief or local sweep holds ``directory``
    (:func:`sweep_lock`): a second one on the same directory is refused, naming the first.
    """
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
    # one chief or local sweep per directory; workers share it with their chief
    with contextlib.nullcontext() if role == "worker" else sweep_lock(directory, role, oracle):
        if role != "local":
            return run_distributed(
                role, recipe=recipe, tuner=tuner, oracle=kt_oracle, config=config,
                directory=directory, seed=seed, data=data, address=oracle, worker_id=worker_id,
                heartbeat_seconds=heartbeat_seconds, connect_timeout=connect_timeout,
                rpc_timeout=rpc_timeout, verbose=verbose, options=options,
            )
        return _local_sweep(recipe, tuner, kt_oracle, config, directory, seed=seed, data=data,
                            max_trials=max_trials, objective=objective, direction=direction,
                            save_best=save_best, baseline=baseline, export=export,
                            verbose=verbose, options=options)


def _local_sweep(recipe: Recipe, tuner: str, kt_oracle: Any, config: Any, directory: Path, *,
                 seed: int, data: str | Path | None, max_trials: int, objective: str,
                 direction: str, save_best: bool, baseline: bool, export: str | Path | None,
                 verbose: int, options: dict[str, Any]) -> SweepResult:
    """The local side of :func:`tune`: search in this process, then save the best model."""
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
                          tuner=kt_tuner if save_best or export else None, data=loaded,
                          data_source=data, options=options)
    if export is not None and result.best_model_path is not None:
        from lstm_zoo.serving.savedmodel import export as export_model

        exported = export_model(recipe, export, model=result.best_model_path, data=loaded)
        print(f"[sweep] exported the best model to {exported.path}")
    return result


@contextlib.contextmanager
def sweep_lock(directory: Path, role: str, address: str | None = None) -> Iterator[dict]:
    """Hold the sweep directory for this chief or local sweep; refuse when another holds it.

    Two chiefs on one directory both started, ran the same trials twice, and the one whose
    results.csv was written last won (and the first waited for trials the other had taken).
    The lock is an ``flock`` on ``LOCK_FILE`` (released when the process ends, however it
    ends; NFS emulates it with a POSIX lock across machines); the file names the holder (pid,
    host, role, oracle address, since when) for the refusal message.  Yields that record.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SweepError(
                f"the sweep directory {directory} is in use by {_lock_holder(path)}; two "
                "chiefs (or local sweeps) on one directory would run the same trials twice and "
                "overwrite each other's results: stop that one, or pass another --directory "
                "(workers join its chief with --role worker --oracle HOST:PORT)"
            ) from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "role": role,
                  "oracle": address,
                  "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        yield holder
    finally:
        os.close(fd)  # closing releases the lock


def _lock_holder(path: Path) -> str:
    """``"a chief (pid 12, host h, oracle 0.0.0.0:8000, since ...)"`` from the lock file."""
    try:
        holder = json.loads(path.read_text())
        details = [f"pid {holder['pid']}", f"host {holder['host']}"]
    except (OSError, ValueError, KeyError, TypeError):
        return "another sweep process (its lock file names no holder yet)"
    if holder.get("oracle"):
        details.append(f"oracle {holder['oracle']}")
    details.append(f"since {holder.get('since')}")
    return f"a {holder.get('role') or 'sweep'} process ({', '.join(details)})"


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
