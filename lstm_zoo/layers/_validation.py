"""Argument checks shared by the cell and the layer: one clear message per bad value."""

from __future__ import annotations

import numbers
from typing import Any

IMPLEMENTATIONS = ("auto", "cudnn", "fused", "generic")


def check_positive_int(name: str, value: Any) -> int:
    """``value`` must be an int > 0 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


def check_optional_positive_int(name: str, value: Any) -> int | None:
    """``None`` or an int > 0."""
    return None if value is None else check_positive_int(name, value)


def check_optional_positive_float(name: str, value: Any) -> float | None:
    """``None`` or a number > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"`{name}` must be None or a positive number, got {value!r}.")
    return float(value)


def check_rate(name: str, value: Any, upper_inclusive: bool = True) -> float:
    """A probability in [0, 1] (or [0, 1) when ``upper_inclusive`` is False)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    ok = ok and 0.0 <= value and (value <= 1.0 if upper_inclusive else value < 1.0)
    if not ok:
        interval = "[0, 1]" if upper_inclusive else "[0, 1)"
        raise ValueError(f"`{name}` must be a float in {interval}, got {value!r}.")
    return float(value)


def check_bool(name: str, value: Any) -> bool:
    """A real bool (catches e.g. ``use_peepholes="no"``)."""
    if type(value).__name__ not in ("bool", "bool_"):  # Python or NumPy bool
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


def check_implementation(value: Any) -> str:
    """One of ``IMPLEMENTATIONS``."""
    if value not in IMPLEMENTATIONS:
        raise ValueError(
            f"`implementation` must be one of {', '.join(map(repr, IMPLEMENTATIONS))}, "
            f"got {value!r}."
        )
    return value
