"""``lstm-zoo train`` and ``lstm-zoo evaluate``: run a recipe end to end."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lstm_zoo.commands._recipe_args import add_recipe_command, parse_hparams


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``evaluate`` commands."""
    add_recipe_command(
        subparsers,
        "train",
        help="train and evaluate a recipe's model",
        description="Train a recipe's default model, evaluate it next to the naive baselines, "
        "and write model.keras, metrics.json and PNG plots into --out. A killed run "
        "resumes from its last epoch when restarted with the same --out.",
        add_common=_train_options,
        run=_train,
    )
    add_recipe_command(
        subparsers,
        "evaluate",
        help="evaluate a trained model on a recipe's test split",
        description="Evaluate a trained model (.keras file or run directory) on the recipe's "
        "test split next to its baselines; prints the metrics as JSON.",
        add_common=_evaluate_options,
        run=_evaluate,
    )


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="a data file or folder (default: the embedded data)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def _train_options(parser: argparse.ArgumentParser) -> None:
    _data_options(parser)
    parser.add_argument("--out", default=None, help="output directory (default: runs/RECIPE)")
    parser.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    parser.add_argument("--batch-size", type=int, help="batch size")
    parser.add_argument("--learning-rate", type=float, help="initial learning rate")
    parser.add_argument(
        "--hparam",
        action="append",
        metavar="KEY=VALUE",
        help="a model or training hyperparameter (repeatable), e.g. --hparam units=64",
    )
    parser.add_argument(
        "--no-resume", action="store_true", help="start over even if --out holds a backup"
    )


def _evaluate_options(parser: argparse.ArgumentParser) -> None:
    _data_options(parser)
    parser.add_argument("--model", required=True, help="a .keras file or a training run directory")
    parser.add_argument("--out", help="also write metrics.json and plots into this directory")


def _train(recipe: Any, args: argparse.Namespace, options: dict[str, Any]) -> int:
    from lstm_zoo.training import train

    hparams = parse_hparams(args.hparam)
    if args.batch_size is not None:
        hparams["batch_size"] = args.batch_size
    if args.learning_rate is not None:
        hparams["learning_rate"] = args.learning_rate
    out_dir = args.out or f"runs/{recipe.name}"
    result = train(
        recipe,
        args.data,
        out_dir=out_dir,
        seed=args.seed,
        epochs=args.epochs,
        hparams=hparams,
        resume=not args.no_resume,
        **options,
    )
    print(json.dumps(result.metrics["test"], indent=2, default=str))
    print(f"wrote {result.out_dir}")
    return 0


def _evaluate(recipe: Any, args: argparse.Namespace, options: dict[str, Any]) -> int:
    from lstm_zoo.training import evaluate

    record = evaluate(recipe, args.model, args.data, out_dir=args.out, seed=args.seed, **options)
    print(json.dumps(record["test"], indent=2, default=str))
    return 0
