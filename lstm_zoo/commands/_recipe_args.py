"""Commands that take a RECIPE and that recipe's own options (``train``, ``evaluate`` ...).

The top-level parser only knows the command name; the rest of the line is parsed here, once
the recipe is known, by a parser holding the command's common options plus the options the
recipe adds in ``Recipe.add_arguments``.  So ``lstm-zoo train weather --help`` shows
``--time-col`` and friends, and a typo in a recipe option is still an error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

AddCommon = Callable[[argparse.ArgumentParser], None]
Run = Callable[[Any, argparse.Namespace, dict[str, Any]], int | None]


def add_recipe_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    add_common: AddCommon,
    run: Run,
) -> None:
    """Add command ``name``: ``lstm-zoo NAME RECIPE [common options] [recipe options]``."""
    shell = subparsers.add_parser(name, help=help, add_help=False, description=description)
    shell.set_defaults(
        accepts_extra=True,
        handler=lambda args: _dispatch(name, description, add_common, run, args.extra),
    )


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """``--data`` and ``--seed``, which every command that loads a recipe's data takes."""
    parser.add_argument("--data", help="a data file or folder (default: the embedded data)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def _full_parser(
    name: str, description: str, add_common: AddCommon, add_help: bool = True
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"lstm-zoo {name}", description=description, add_help=add_help
    )
    parser.add_argument("recipe", nargs="?", help="recipe name (lstm-zoo train --help lists them)")
    add_common(parser)
    return parser


def _dispatch(name: str, description: str, add_common: AddCommon, run: Run, argv: list[str]) -> int:
    from lstm_zoo.registry import get_recipe, list_recipes

    probe = _full_parser(name, description, add_common, add_help=False)
    probe.add_argument("-h", "--help", action="store_true", dest="_help")
    for action in probe._actions:  # "--help" must work before required options are given,
        action.required = False  # and a bad value (--epochs 0) is reported by the real parse
        action.type = action.choices = None
    # first pass: find the recipe name (and whether help was asked for)
    known, _ = _parse_known_quietly(probe, argv)
    if known is None or known.recipe is None:
        parser = _full_parser(name, description, add_common)
        parser.epilog = "recipes: " + (", ".join(list_recipes()) or "(none registered)")
        if known is not None and known._help:
            parser.print_help()
            raise SystemExit(0)
        parser.error("a RECIPE is required; choose from: " + ", ".join(list_recipes()))
    recipe = get_recipe(known.recipe)
    parser = _full_parser(name, description, add_common)
    group = parser.add_argument_group(f"options of recipe {recipe.name!r}")
    before = {a.dest for a in parser._actions}
    recipe.add_arguments(group)  # type: ignore[arg-type]
    recipe_dests = {a.dest for a in parser._actions} - before
    args = parser.parse_args(argv)
    options = {dest: getattr(args, dest) for dest in recipe_dests}
    return int(run(recipe, args, options) or 0)


def _parse_known_quietly(parser: argparse.ArgumentParser, argv: list[str]):
    stderr = sys.stderr
    try:
        sys.stderr = open("/dev/null", "w")  # noqa: SIM115 - restored below
        return parser.parse_known_args(argv)
    except SystemExit:
        return None, argv
    finally:
        sys.stderr.close()
        sys.stderr = stderr


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer of 1 or more (``--epochs 0`` trained nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 or more), got {value}")
    return value


def parse_hparams(pairs: list[str] | None) -> dict[str, Any]:
    """``["units=64", "lr_schedule=cosine"]`` -> ``{"units": 64, "lr_schedule": "cosine"}``.

    Values are read as JSON where they parse (numbers, booleans, lists), else kept as strings.
    """
    import json

    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--hparam expects KEY=VALUE, got {pair!r}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return values
