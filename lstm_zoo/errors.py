"""Exceptions that lstm_zoo raises for problems a user can fix.

The CLI prints these as one clear line (no traceback unless ``--debug``); Python users can catch
``LstmZooError`` to handle all of them at once.  Each subclass also derives from the built-in
exception a user would expect (``KeyError`` for an unknown name, ``ValueError`` for bad input),
so generic ``except ValueError`` code keeps working.
"""

from __future__ import annotations


class LstmZooError(Exception):
    """Base class of every user-facing lstm_zoo error."""


class UnknownNameError(LstmZooError, KeyError):
    """A model, recipe or pretrained name that is not registered."""

    def __str__(self) -> str:  # KeyError would otherwise print the message in quotes
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(LstmZooError, ValueError):
    """A name registered twice."""


class DataError(LstmZooError, ValueError):
    """Input data that cannot be used: missing columns, bad values, too short, empty ..."""


class ConfigError(LstmZooError, ValueError):
    """A training setting, hyperparameter or option value that cannot be used (non-positive
    epochs, ``units=abc`` ...)."""


class ModelFileError(LstmZooError, ValueError):
    """A file given as a saved model that is not one (a text file named ``model.keras`` ...)."""


class OutputError(LstmZooError, OSError):
    """An output folder or file that cannot be written: a file where a folder is expected, a
    finished run in the way, a full disk ..."""


EXCERPT_CHARS = 60  # how much of a quoted value an error message shows


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` for an error message, shortened to about ``limit`` characters.

    A cell of a data file can be megabytes long; echoing it whole buried the message (52 MB of
    stderr for one bad cell).  A long string shows its first ``limit`` characters, an ellipsis
    and its full length; any other long repr is cut the same way.
    """
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    text = repr(value)
    if len(text) > limit:
        return f"{text[:limit]}... ({len(text):,} characters)"
    return text
