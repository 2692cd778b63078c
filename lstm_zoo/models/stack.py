"""A stack of ``lstm_zoo.layers.LSTM`` layers, and the LSTM options every builder passes on.

The LSTM variant switches (peepholes, layer norm, projection, zoneout, cell clipping, CIFG)
and ``implementation`` are declared once, by the layer; a builder takes them as
``**lstm_options`` and, decorated with :func:`accepts_lstm_options`, shows them in its signature
so the registry (``lstm-zoo info``, ``get_model``) and sweeps see every one with its default.
All but the last layer of a stack return sequences; the last returns sequences only if asked.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from lstm_zoo.layers import LSTM
from lstm_zoo.layers.cell import VARIANTS

#: What a builder passes through to every LSTM layer: the cell's variants and the path choice.
LSTM_OPTIONS = (*VARIANTS, "implementation")


def lstm_option_parameters() -> list[inspect.Parameter]:
    """:data:`LSTM_OPTIONS` as keyword-only parameters with the layer's own defaults."""
    params = inspect.signature(LSTM).parameters
    return [params[name].replace(kind=inspect.Parameter.KEYWORD_ONLY) for name in LSTM_OPTIONS]


def accepts_lstm_options(builder: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``builder(..., **lstm_options)`` a signature that lists :data:`LSTM_OPTIONS`.

    Calls are checked against that signature, so a misspelt option is a ``TypeError`` naming
    it rather than an argument silently ignored.
    """
    signature = inspect.signature(builder)
    params = list(signature.parameters.values())
    if not params or params[-1].kind is not inspect.Parameter.VAR_KEYWORD:
        raise TypeError(f"{builder.__qualname__} must end with **lstm_options")
    taken = {p.name for p in params}
    extra = [p for p in lstm_option_parameters() if p.name not in taken]
    full = signature.replace(parameters=[*params[:-1], *extra])

    @functools.wraps(builder)
    def checked(*args: Any, **kwargs: Any) -> Any:
        full.bind(*args, **kwargs)  # TypeError for an unknown option
        return builder(*args, **kwargs)

    checked.__signature__ = full  # type: ignore[attr-defined]
    return checked


def lstm_layer_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as LSTM keyword arguments: only :data:`LSTM_OPTIONS`, and a projection of 0
    (the value sweeps and the CLI use for "none") as None."""
    unknown = sorted(set(options) - set(LSTM_OPTIONS))
    if unknown:
        raise TypeError(f"unknown LSTM option(s) {', '.join(unknown)}; "
                        f"known: {', '.join(LSTM_OPTIONS)}")
    defaults = {p.name: p.default for p in lstm_option_parameters()}
    out = {}
    for name, value in options.items():
        default = defaults[name]
        if name == "proj_units":
            value = int(value) if value else None
        elif isinstance(default, bool):
            value = bool(value)
        elif value is not None and (isinstance(default, float) or name == "cell_clip"):
            value = float(value)
        out[name] = value
    return out


def lstm_switch_space(hp: Any, proj_units: tuple[int, ...] = (0, 8)) -> dict[str, Any]:
    """The LSTM switches a sweep searches by default: layer norm, a projection (0: none) and
    peepholes, drawn from a ``keras_tuner.HyperParameters`` in that order."""
    return {
        "layer_norm": hp.Boolean("layer_norm"),
        "proj_units": hp.Choice("proj_units", list(proj_units)),
        "use_peepholes": hp.Boolean("use_peepholes"),
    }


def lstm_stack(
    x: Any,
    *,
    units: int,
    depth: int,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    return_sequences: bool = False,
    **lstm_options: Any,
) -> Any:
    """Apply ``depth`` LSTM layers named ``lstm_1`` ... ``lstm_<depth>`` to ``x``;
    ``lstm_options`` (see :data:`LSTM_OPTIONS`) go to every layer."""
    options = lstm_layer_options(lstm_options)
    for i in range(int(depth)):
        last = i == int(depth) - 1
        x = LSTM(
            int(units),
            return_sequences=return_sequences or not last,
            dropout=float(dropout),
            recurrent_dropout=float(recurrent_dropout),
            name=f"lstm_{i + 1}",
            **options,
        )(x)
    return x
