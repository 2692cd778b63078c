"""``TF_CONFIG``: the cluster description every data-parallel process reads, checked once.

The rest of :mod:`lstm_zoo.training.distributed` raises :class:`DistributedConfigError` from
here, so the loop, its input and its losses share one error type without importing each other.
"""

from __future__ import annotations

import json
import os
from typing import Any

from lstm_zoo.errors import LstmZooError


class DistributedConfigError(LstmZooError, ValueError):
    """``TF_CONFIG`` is missing or does not describe this process."""


def read_tf_config() -> dict[str, Any]:
    """``TF_CONFIG`` parsed and checked: a ``cluster`` and this process's ``task``."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise DistributedConfigError(
            "--distributed needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}} (see docs/distributed.md)'
        )
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        members = cluster[task["type"]]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DistributedConfigError(f"TF_CONFIG is not valid ({exc!r}): {raw}") from None
    if not 0 <= index < len(members):
        raise DistributedConfigError(
            f"TF_CONFIG task index {index} is outside cluster[{task['type']!r}] "
            f"({len(members)} members)"
        )
    return config


def is_chief(config: dict[str, Any]) -> bool:
    """The process that writes the run's outputs."""
    task = config["task"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and int(task["index"]) == 0 and "chief" not in config["cluster"]
