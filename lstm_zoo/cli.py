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
import contextlib
import importlib
import importlib.abc
import importlib.util
import logging
import os
import pkgutil
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

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


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block (C++ code writes there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _SilentTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` with stderr closed, and only if a command imports
    it: commands that never touch TensorFlow (``pull``) do not pay for its import."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one import only; the real finders do the finding
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def silenced(module: Any) -> None:
                with _stderr_silenced():
                    exec_module(module)

            spec.loader.exec_module = silenced  # type: ignore[method-assign]
        return spec


def quiet_tensorflow() -> None:
    """Keep TensorFlow quiet in this process: no start-up chatter, no INFO/WARNING lines.

    TensorFlow's C++ side prints INFO lines (oneDNN, "Could not find cuda drivers") before its
    log level is read, so its import, whenever a command makes it, runs with stderr closed;
    ``TF_CPP_MIN_LOG_LEVEL=3`` then hides the later C++ lines (among them the E-level "failed
    call to cuInit" of a machine without a GPU: real failures still surface as Python
    exceptions), and the Python loggers of TensorFlow, absl and Keras are set to ERROR.
    ``lstm-zoo --debug`` skips all of this.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _SilentTensorFlowImport())
    for name in ("tensorflow", "absl", "keras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    # Keras' note on loading a .keras file whose optimizer state was left out: inference and
    # fine-tuning build a fresh optimizer, so there is nothing for the user to act on
    warnings.filterwarnings("ignore", message=r"Skipping variable loading for optimizer")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 on success)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    if not debug and not _asks_for_help(extra):
        quiet_tensorflow()
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


def _asks_for_help(extra: Sequence[str]) -> bool:
    return "-h" in extra or "--help" in extra


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
