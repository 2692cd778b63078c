"""examples/plugin_recipe: the third-party recipe package installs, registers and trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin_recipe"


@pytest.mark.slow
def test_example_plugin_installs_and_trains(tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), str(EXAMPLE)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "3"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lstm_zoo", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)

    listed = cli("list", "sine*")
    assert listed.returncode == 0 and "sine-lstm" in listed.stdout, listed.stderr[-2000:]
    out = tmp_path / "run"
    trained = cli("train", "sine", "--epochs", "1", "--points", "400", "--out", str(out))
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["mae"] > 0 and metrics["test"]["persistence_mae"] > 0
    refused = cli("train", "sine", "--epochs", "1", "--points", "10", "--out", str(tmp_path / "x"))
    assert refused.returncode == 1 and "--points must be at least 120" in refused.stderr
