"""``lstm-zoo train``: train a recipe's model, evaluate it, and optionally export or publish it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lstm_zoo.commands._recipe_args import (
    add_data_options,
    add_recipe_command,
    parse_hparams,
    positive_int,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command."""
    add_recipe_command(
        subparsers,
        "train",
        help="train and evaluate a recipe's model",
        description="Train a recipe's default model, evaluate it next to the naive baselines, "
        "and write model.keras, metrics.json and PNG plots into --out (switched in together). "
        "A killed run resumes from its last epoch when restarted with the same settings and "
        "--out; a finished run in --out is kept unless --overwrite.",
        add_common=_train_options,
        run=_train,
    )



def _train_options(parser: argparse.ArgumentParser) -> None:
    add_data_options(parser)
    parser.add_argument("--out", default=None, help="output directory (default: runs/RECIPE)")
    parser.add_argument("--epochs", type=positive_int,
                        help="maximum epochs (early stopping may end sooner)")
    parser.add_argument("--batch-size", type=positive_int, help="batch size")
    parser.add_argument("--learning-rate", type=float, help="initial learning rate")
    parser.add_argument(
        "--hparam",
        action="append",
        metavar="KEY=VALUE",
        help="a model or training hyperparameter (repeatable), e.g. --hparam units=64",
    )
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume", action="store_true",
        help="continue the interrupted run in --out (refused if there is none, or if its "
        "settings differ); without --resume or --no-resume an interrupted run there continues "
        "if its settings match and is refused if they do not",
    )
    resume.add_argument(
        "--no-resume", action="store_true",
        help="start over, discarding an interrupted run in --out",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace the run in --out (finished or not) as a whole; without it a finished "
        "run there is refused",
    )
    parser.add_argument(
        "--export",
        metavar="DIR",
        help="after training, export the model for TF Serving into DIR/RECIPE/VERSION "
        "(portable CPU/GPU SavedModel, verified in a TensorFlow-only process)",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help="after training, publish the model as a pretrained version (TF Serving "
        "SavedModel + model.keras + manifest) into saved_models/RECIPE/VERSION",
    )
    parser.add_argument("--publish-dir", help="hub folder to publish into (default: saved_models/)")
    parser.add_argument("--publish-version", type=int, help="version number (default: next free)")
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training across the processes/machines named in TF_CONFIG "
        "(MultiWorkerMirroredStrategy, custom loop; --batch-size is per worker; see "
        "docs/distributed.md)",
    )


def _train(recipe: Any, args: argparse.Namespace, options: dict[str, Any]) -> int:
    from lstm_zoo.training.driver import train

    hparams = parse_hparams(args.hparam)
    if args.batch_size is not None:
        hparams["batch_size"] = args.batch_size
    if args.learning_rate is not None:
        hparams["learning_rate"] = args.learning_rate
    out_dir = args.out or f"runs/{recipe.name}"
    if args.distributed:
        if args.export or args.publish:
            raise ValueError("--distributed does not combine with --export/--publish; export "
                             "the chief's model.keras afterwards with lstm-zoo export")
        if args.resume or args.no_resume or args.overwrite:
            raise ValueError("--distributed does not take --resume/--no-resume/--overwrite: "
                             "its workers resume from their backups on their own (see "
                             "docs/distributed.md)")
        from lstm_zoo.training.distributed.loop import train_distributed

        record = train_distributed(recipe, args.data, out_dir=out_dir, seed=args.seed,
                                   epochs=args.epochs, hparams=hparams, **options)
        print(json.dumps(record.get("test", {"history": record["history"][-1:]}), indent=2,
                         default=str))
        return 0
    result = train(
        recipe,
        args.data,
        out_dir=out_dir,
        seed=args.seed,
        epochs=args.epochs,
        hparams=hparams,
        resume=True if args.resume else False if args.no_resume else None,
        overwrite=args.overwrite,
        **options,
    )
    print(json.dumps(result.metrics["test"], indent=2, default=str))
    print(f"wrote {result.out_dir}")
    if args.export:
        from lstm_zoo.serving.savedmodel import export

        exported = export(result.model, args.export, recipe=recipe, data=result.data, verify=True)
        print(f"exported {exported.path} (serve: tensorflow_model_server --model_name="
              f"{exported.name} --model_base_path={exported.model_base_path.resolve()})")
    if args.publish:
        from lstm_zoo.hub.publish import publish_run, train_command_line

        command = train_command_line(recipe.name, args, options)
        path = publish_run(recipe, result, train_command=command, data=args.data,
                           options=options, hub_dir=args.publish_dir,
                           version=args.publish_version)
        print(f"published {path}")
    return 0
