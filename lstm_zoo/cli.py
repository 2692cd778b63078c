"""The ``lstm-zoo`` command line: thin, it only parses arguments and calls the Python API.

Each subcommand lives in its own module under :mod:`lstm_zoo.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` (a function taking the
parsed namespace and returning an exit code or None).  Commands whose options depend on a
recipe (``train``, ``evaluate``, ``tune`` ...) set ``accepts_extra=True`` and parse the rest of
the line themselves with :mod:`lstm_zoo.commands._recipe_args`.  New commands slot in by adding a module;
this file never changes for them.  Command modules import TensorFlow lazily, inside their
handlers, so ``lstm-zoo --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

import lstm_zoo.commands as _commands


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every command module's subparser attached."""
    parser = argparse.ArgumentParser(
        prog="lstm-zoo",
        description="lstm_zoo: LSTM models, recipes, sweeps and TF Serving exports.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks and TensorFlow logs"
    )
    from lstm_zoo._version import __version__

    parser.add_argument("--version", action="version", version=f"lstm-zoo {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_commands.__name__}.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 on success)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        code = handler(args)
    except KeyboardInterrupt:
        print("lstm-zoo: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line, unless --debug
        if args.debug:
            raise
        message = str(exc) or type(exc).__name__
        from lstm_zoo.errors import LstmZooError

        if not isinstance(exc, LstmZooError | FileNotFoundError | PermissionError):
            message = f"{type(exc).__name__}: {message}"
        message = " ".join(message.split())  # one line, whatever the exception held
        print(f"lstm-zoo {args.command}: error: {message}", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
