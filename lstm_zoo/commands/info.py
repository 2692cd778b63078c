"""``lstm-zoo info``: one registered model's metadata."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` command."""
    p = subparsers.add_parser(
        "info", help="show a model's metadata", description="Show a registered model's metadata."
    )
    p.add_argument("name", help="registered model name")
    p.set_defaults(handler=_info)


def _info(args: argparse.Namespace) -> int:
    from lstm_zoo import registry

    print(json.dumps(registry.model_info(args.name), indent=2, default=str))
    return 0
