"""``lstm-zoo tune``: a keras-tuner sweep of a recipe, local or chief/worker across machines."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lstm_zoo.commands._recipe_args import add_recipe_command
from lstm_zoo.tuning.choices import TUNERS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tune`` command."""
    add_recipe_command(
        subparsers,
        "tune",
        help="hyperparameter sweep of a recipe (keras-tuner; local or distributed)",
        description="Sweep the recipe's search space with keras-tuner. Writes results.csv, "
        "results.json (trial id, status, worker, hyperparameters, metrics, duration), "
        "trials.png and, for a local sweep, best/model.keras into --directory. Rerunning "
        "with the same --directory resumes an interrupted sweep. Distributed: start one "
        "'--role chief --oracle HOST:PORT' and any number of '--role worker --oracle "
        "HOST:PORT --worker-id ID' (restart a worker under the same ID).",
        add_common=_tune_options,
        run=_tune,
    )


def _tune_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="a data file or folder (default: the embedded data)")
    # no argparse choices: a bad value would hide behind "a RECIPE is required" in the
    # recipe-finding first pass; lstm_zoo.tuning.sweep.tune names the valid values instead
    parser.add_argument("--tuner", default="random",
                        help=f"search algorithm: {', '.join(TUNERS)} (default: random)")
    parser.add_argument("--max-trials", type=int, default=10, help="number of trials (default 10)")
    parser.add_argument("--epochs", type=int,
                        help="maximum epochs per trial (default: the recipe's; early stopping "
                        "may end a trial sooner)")
    parser.add_argument("--directory", help="sweep directory (default: sweeps/RECIPE)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed: the same seed draws the same trial hyperparameters")
    parser.add_argument("--baseline", action="store_true",
                        help="also train the recipe's default hyperparameters (local sweeps)")
    parser.add_argument("--export", metavar="DIR",
                        help="export the best model for TF Serving into DIR (local sweeps)")
    parser.add_argument("--quiet", action="store_true", help="no per-trial tables")
    dist = parser.add_argument_group("distributed sweeps (keras-tuner chief/worker)")
    dist.add_argument("--role", default=None,
                      help="local (default), chief (serves the oracle) or worker (runs trials)")
    dist.add_argument("--oracle", metavar="HOST:PORT",
                      help="the chief's address (chief: where to listen, e.g. 0.0.0.0:8000)")
    dist.add_argument("--worker-id", help="a worker's stable id; restart it under the same id")
    dist.add_argument("--worker-timeout", type=float, default=300.0,
                      help="chief: re-queue a trial whose worker is silent this long "
                      "(seconds, default 300)")
    dist.add_argument("--heartbeat", type=float, default=10.0,
                      help="worker: seconds between heartbeats to the chief (default 10)")
    dist.add_argument("--connect-timeout", type=float, default=60.0,
                      help="worker: give up if the chief is unreachable this long at start "
                      "(seconds, default 60)")
    dist.add_argument("--rpc-timeout", type=float, default=3600.0,
                      help="worker: wait this long for a restarting chief (default 3600)")


def _tune(recipe: Any, args: argparse.Namespace, options: dict[str, Any]) -> int:
    from lstm_zoo.tuning.sweep import tune

    result = tune(
        recipe,
        args.tuner,
        max_trials=args.max_trials,
        epochs=args.epochs,
        directory=args.directory,
        seed=args.seed,
        data=args.data,
        role=args.role,
        oracle=args.oracle,
        worker_id=args.worker_id,
        worker_timeout=args.worker_timeout,
        heartbeat_seconds=args.heartbeat,
        connect_timeout=args.connect_timeout,
        rpc_timeout=args.rpc_timeout,
        baseline=args.baseline,
        export=args.export,
        verbose=0 if args.quiet else 1,
        **options,
    )
    if result.best is not None:
        print(json.dumps({k: result.best[k] for k in ("trial_id", "score", "hyperparameters")},
                         default=str))
    return 0
