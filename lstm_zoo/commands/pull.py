"""``lstm-zoo pull``: a verified local copy of a pretrained model; its path is the last line."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pull`` command."""
    p = subparsers.add_parser(
        "pull",
        help="pull a pretrained model (verified) and print its local path",
        description="Pull pretrained model NAME from the hub (default: $LSTM_ZOO_HUB, else the "
        "repository's saved_models/), verify the sha256 of every file against its manifest and "
        "print the local version directory (a TF Serving SavedModel with "
        "assets.extra/model.keras and assets.extra/manifest.json) as the last line. "
        "--list shows what the hub publishes.",
    )
    p.add_argument("name", nargs="?", help="pretrained name, e.g. weather (or weather:1)")
    p.add_argument("--version", default="latest", help="version number (default: latest)")
    p.add_argument("--hub", help="hub folder or base URL (http://, https://, file://)")
    p.add_argument("--cache-dir", help="cache folder (default: $XDG_CACHE_HOME/lstm_zoo)")
    p.add_argument("--offline", action="store_true", help="never use the network; cache only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on downloads")
    p.add_argument("--list", action="store_true", help="list the hub's published models")
    p.set_defaults(handler=_pull)


def _pull(args: argparse.Namespace) -> int:
    from lstm_zoo.hub import pretrained as hub

    if args.list:
        if args.offline and args.hub and "://" in args.hub:
            raise hub.HubError("--list reads the hub's index.json; it cannot be used --offline "
                               "with a URL hub")
        for row in hub.available(args.hub):
            latest = "  (latest)" if row["latest"] else ""
            print(f"{row['name']}:{row['version']}  {row['model']}  "
                  f"{hub.format_headline(row['headline'])}  "
                  f"{(row['size_bytes'] or 0) / 1e6:.1f} MB{latest}")
        return 0
    if not args.name:
        raise hub.HubError("a pretrained NAME is required (lstm-zoo pull --list shows them)")
    path = hub.pull(args.name, args.version, args.hub, args.cache_dir, offline=args.offline,
                    progress=not args.no_progress)
    print(hub.describe(path))
    print(path)
    return 0
