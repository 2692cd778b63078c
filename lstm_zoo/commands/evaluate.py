"""``lstm-zoo evaluate``: a trained model on a recipe's test split, next to its baselines."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lstm_zoo.commands._recipe_args import add_data_options, add_recipe_command


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    add_recipe_command(
        subparsers,
        "evaluate",
        help="evaluate a trained model on a recipe's test split",
        description="Evaluate a trained model (.keras file or run directory) on the recipe's "
        "test split next to its baselines; prints the metrics as JSON.",
        add_common=_evaluate_options,
        run=_evaluate,
    )


def _evaluate_options(parser: argparse.ArgumentParser) -> None:
    add_data_options(parser)
    parser.add_argument("--model", required=True, help="a .keras file or a training run directory")
    parser.add_argument("--out", help="also write metrics.json and plots into this directory")


def _evaluate(recipe: Any, args: argparse.Namespace, options: dict[str, Any]) -> int:
    from lstm_zoo.training.driver import evaluate

    record = evaluate(recipe, args.model, args.data, out_dir=args.out, seed=args.seed, **options)
    print(json.dumps(record["test"], indent=2, default=str))
    return 0
