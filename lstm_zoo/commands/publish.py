"""``lstm-zoo publish RECIPE --run DIR``: publish a finished training run into the hub."""

from __future__ import annotations

import argparse
from typing import Any

from lstm_zoo.commands._recipe_args import add_recipe_command


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``publish`` command."""
    add_recipe_command(
        subparsers,
        "publish",
        help="publish a finished training run (model, TF Serving export, manifest)",
        description="Publish the model of a finished `lstm-zoo train` run into saved_models/ "
        "(or --publish-dir): the TF Serving export, the .keras file and a manifest whose test "
        "metrics are evaluated again from the saved model. Pass the recipe options the run "
        "was trained with, so the same data splits are rebuilt.",
        add_common=_publish_options,
        run=_publish,
    )


def _publish_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True,
                        help="the run directory (holds model.keras and metrics.json)")
    parser.add_argument("--data", help="where the run's data is now (default: the path the "
                        "run recorded); the same data, e.g. a path relative to the checkout")
    parser.add_argument("--publish-dir", help="hub folder to publish into (default: saved_models/)")
    parser.add_argument("--publish-version", type=int, help="version number (default: next free)")


def _publish(recipe: Any, args: argparse.Namespace, options: dict[str, Any]) -> int:
    from lstm_zoo.hub.publish import publish_finished_run

    path = publish_finished_run(recipe, args.run, options=options, data=args.data,
                                hub_dir=args.publish_dir,
                                version=args.publish_version)
    print(f"published {path}")
    return 0
