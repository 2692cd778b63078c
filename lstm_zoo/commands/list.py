"""``lstm-zoo list``: the registered models, with their published versions."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``list`` command."""
    p = subparsers.add_parser(
        "list",
        help="list registered models",
        description="List registered models (shell-style PATTERN, e.g. 'weather*').",
    )
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard (default: *)")
    p.add_argument("--task", help="only models of this task (e.g. forecasting)")
    p.add_argument(
        "--pretrained", action="store_true", help="only models with a published pretrained version"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=_list)



def _list(args: argparse.Namespace) -> int:
    from lstm_zoo import registry

    names = registry.list_models(args.pattern, task=args.task, pretrained=args.pretrained or None)
    rows = [registry.model_info(n) for n in names]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print("no models match")
        return 0
    width = max(len(r["name"]) for r in rows)
    task_width = max(len(r["task"]) for r in rows)
    headlines = _headlines() if any(r["pretrained"] for r in rows) else {}
    for r in rows:
        tags = [f"{t} {headlines[t]}" if t in headlines else t for t in r["pretrained"]]
        pretrained = f"  [pretrained: {', '.join(tags)}]" if tags else ""
        print(f"{r['name']:<{width}}  {r['task']:<{task_width}}  {r['description']}{pretrained}")
    return 0


def _headlines() -> dict[str, str]:
    """``{"weather:1": "mae=1.23 (lower is better)"}`` from the published index."""
    from lstm_zoo.hub import pretrained as hub

    return {tag: hub.format_headline(h) for tag, h in hub.published_headlines().items()}
