"""Fixtures for sweep tests: the tiny recipe, free loopback ports, child processes that are
always killed, and helpers to read a sweep's files while it runs."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TINY_SCRIPT = HERE / "tiny_recipe.py"


def _load_tiny():
    spec = importlib.util.spec_from_file_location("lstm_zoo_tests_tiny_recipe", TINY_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny = _load_tiny()


@pytest.fixture
def tiny_module():
    return tiny


@pytest.fixture
def tiny_registered():
    """Register the tiny recipe under ``tiny-sweep`` with a factory returning one instance."""
    from lstm_zoo import registry

    registry.load_plugins()
    instance = tiny.TinyRecipe()
    registry.register_recipe(tiny.TinyRecipe, factory=lambda: instance)
    yield instance
    registry._recipes.pop(tiny.NAME, None)


@pytest.fixture(autouse=True)
def _no_keras_tuner_env(monkeypatch):
    """Distributed code sets KERASTUNER_* in os.environ; undo it after each test."""
    for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(key, raising=False)


def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Procs:
    """Child processes of one test; every one still alive is killed at the end."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1",
                    "CUDA_VISIBLE_DEVICES": ""}
        for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
            self.env.pop(key, None)

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None,
              script: Path = TINY_SCRIPT) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "ab")  # noqa: SIM115 - closed with the proc
        proc = subprocess.Popen([sys.executable, str(script), *args], stdout=log,
                                stderr=subprocess.STDOUT, env={**self.env, **(env or {})},
                                cwd=self.tmp_path)
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def wait(self, name: str, timeout: float) -> int:
        try:
            return self.procs[name].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} did not finish within {timeout}s; log:\n{self.log(name)}")

    def log(self, name: str) -> str:
        text = (self.tmp_path / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-40:])

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass


@pytest.fixture
def procs(tmp_path):
    group = Procs(tmp_path)
    try:
        yield group
    finally:
        group.close()


def oracle_state(project_dir: Path) -> dict:
    """The chief's saved oracle state, or {} while it is absent or being rewritten."""
    try:
        return json.loads((project_dir / "oracle.json").read_text())
    except (OSError, ValueError):
        return {}


def wait_until(predicate, timeout: float, what: str, procs: Procs | None = None,
               interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    logs = ""
    if procs is not None:
        logs = "\n".join(f"--- {n}:\n{procs.log(n)}" for n in procs.procs)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{logs}")


@pytest.fixture
def helpers():
    """free_port / oracle_state / wait_until for test modules (importlib mode: no imports)."""
    return types.SimpleNamespace(free_port=free_port, oracle_state=oracle_state,
                                 wait_until=wait_until)
