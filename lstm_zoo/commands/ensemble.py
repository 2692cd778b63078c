"""``lstm-zoo ensemble RECIPE --runs A B ... --out DIR``: combine finished runs into one model."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``ensemble`` command."""
    p = subparsers.add_parser(
        "ensemble",
        help="combine finished training runs of a recipe into one ensemble model",
        description="Combine the models of finished `lstm-zoo train` runs of RECIPE (the same "
        "command with different --seed, or differing in hyperparameters and training-only "
        "options) into one model that combines their outputs as the recipe says (the mean; "
        "class logits: mean log-probabilities; speech: the members' CTC logits stacked and "
        "fused at decoding), evaluate it on the first run's data next to each "
        "member, and write a run directory (model.keras, metrics.json, plots) that "
        "`lstm-zoo export` and `lstm-zoo publish --run` take like any run.",
    )
    p.add_argument("recipe", help="recipe name")
    p.add_argument("--runs", nargs="+", required=True, metavar="RUN_DIR",
                   help="two or more finished run directories of the recipe")
    p.add_argument("--out", required=True, help="output run directory")
    p.add_argument("--data", help="where the runs' data is now (default: as they recorded)")
    p.set_defaults(handler=_ensemble)


def _ensemble(args: argparse.Namespace) -> int:
    import json

    from lstm_zoo.training.ensembling import ensemble_runs

    result = ensemble_runs(args.recipe, args.runs, out_dir=args.out, data=args.data)
    print(json.dumps({"test": result.metrics["test"], "members": [
        {k: v for k, v in m.items() if k == "run" or k.startswith("test_")}
        for m in result.metrics["members"]]}, indent=2, default=str))
    print(f"wrote {result.out_dir}")
    return 0
