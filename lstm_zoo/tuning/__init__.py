"""Hyperparameter sweeps with keras-tuner, on one machine or many.

:mod:`.sweep` runs a sweep (:func:`tune`); :mod:`.hypermodel` turns a recipe into a keras-tuner
``HyperModel`` and tuner; :mod:`.oracle` adds retries and re-queues to keras-tuner's oracles;
:mod:`.chief_worker` runs the chief/worker protocol; :mod:`.results` writes the results table;
:mod:`.finish` saves the best model; :mod:`.choices` names the tuners and roles.

``tune`` and ``SweepResult`` load on first use, so ``lstm_zoo.tuning.choices`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"tune": "lstm_zoo.tuning.sweep", "SweepResult": "lstm_zoo.tuning.finish"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lstm_zoo.tuning' has no attribute {name!r}")


__all__ = ["SweepResult", "tune"]
