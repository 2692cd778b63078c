"""Shared fixtures for the LSTM layer tests: tiny shapes, fixed seeds, float32 tolerance."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.RandomState(1234)
