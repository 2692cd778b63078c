"""Shared fixtures: quiet TensorFlow, the optional shared data folder, seeded runs."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path | None:
    env = os.environ.get("LSTM_ZOO_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repo (or ``$LSTM_ZOO_SHARED_DATA``); skips when absent."""
    found = _shared_data_dir()
    if found is None:
        pytest.skip("shared data folder ../shared/data not present (fresh clone)")
    return found


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
