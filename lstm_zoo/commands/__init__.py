"""One module per ``lstm-zoo`` subcommand; each defines ``register(subparsers)``.

A command module adds its parser with ``subparsers.add_parser(...)`` and sets
``handler=`` through ``parser.set_defaults``.  It must not import TensorFlow at module level.
"""
