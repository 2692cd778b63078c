"""A stack of ``lstm_zoo.layers.LSTM`` layers, shared by the architectures in this package.

Every variant switch of the layer is passed to each layer of the stack, so a builder (and a
sweep over it) can turn on layer norm, projection, peepholes ... with one argument.  All but
the last layer return sequences; the last returns sequences only if asked.
"""

from __future__ import annotations

from typing import Any


def lstm_stack(
    x: Any,
    *,
    units: int,
    depth: int,
    dropout: float = 0.0,
    recurrent_dropout: float = 0.0,
    layer_norm: bool = False,
    proj_units: int | None = None,
    use_peepholes: bool = False,
    zoneout_cell: float = 0.0,
    zoneout_hidden: float = 0.0,
    cell_clip: float | None = None,
    cifg: bool = False,
    implementation: str = "auto",
    return_sequences: bool = False,
) -> Any:
    """Apply ``depth`` LSTM layers named ``lstm_1`` ... ``lstm_<depth>`` to ``x``.

    ``proj_units`` of 0 or None means no projection.
    """
    from lstm_zoo.layers import LSTM

    for i in range(int(depth)):
        last = i == int(depth) - 1
        x = LSTM(
            int(units),
            return_sequences=return_sequences or not last,
            dropout=float(dropout),
            recurrent_dropout=float(recurrent_dropout),
            layer_norm=bool(layer_norm),
            proj_units=int(proj_units) if proj_units else None,
            use_peepholes=bool(use_peepholes),
            zoneout_cell=float(zoneout_cell),
            zoneout_hidden=float(zoneout_hidden),
            cell_clip=cell_clip,
            cifg=bool(cifg),
            implementation=implementation,
            name=f"lstm_{i + 1}",
        )(x)
    return x
