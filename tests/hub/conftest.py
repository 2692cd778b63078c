"""Fixtures for the hub tests: a tiny published hub, and a local HTTP server serving it.

The server is a thread running ``http.server`` on 127.0.0.1 with an ephemeral port.  Its
handler supports ``Range`` (so resumes can be tested), logs every request, and can be told to
cut a response short (``server.truncate[path] = n_bytes``) or to ignore ``Range``.
"""

from __future__ import annotations

import http.server
import shutil
import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

TINY_NAME = "tiny"
TINY_MODEL = "zz-hub-tiny"  # the registered model name the manifest records


def tiny_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, 5, 2)).astype("float32")
    return x, x.sum(axis=(1, 2))[:, None]


def tiny_model():
    """A small model using lstm_zoo's own LSTM, so loading needs its registered layers."""
    import keras

    from lstm_zoo.layers import LSTM

    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 2))
    outputs = keras.layers.Dense(1)(LSTM(4)(inputs))
    return keras.Model(inputs, outputs)


def tiny_mae(model) -> float:
    x, y = tiny_data()
    return float(np.abs(model.predict(x, verbose=0) - y).mean())


def tiny_card(model) -> dict:
    mae = tiny_mae(model)
    return {
        "model": TINY_MODEL,
        "recipe": None,
        "task": "testing",
        "metrics": {"split": "test", "test": {"mae": mae},
                    "headline": {"name": "mae", "value": mae, "higher_is_better": False}},
        "evaluate_command": "tiny_mae(load_pretrained('tiny')) in tests/hub/conftest.py",
        "train_command": "untrained tiny model built by tests/hub/conftest.py (seed 0)",
        "data": {"source": "random normal, seed 0", "provenance_and_licence": "generated"},
        "seed": 0,
        "versions": {"lstm_zoo": "test"},
    }


@pytest.fixture(scope="session")
def published_hub(tmp_path_factory) -> Path:
    """A hub folder with ``tiny`` versions 1 and 2, published once per session."""
    from lstm_zoo.hub.publish import publish

    hub_dir = tmp_path_factory.mktemp("hub") / "saved_models"
    model = tiny_model()
    publish(model, TINY_NAME, tiny_card(model), hub_dir=hub_dir)
    model.layers[-1].set_weights([w + 0.5 for w in model.layers[-1].get_weights()])
    publish(model, TINY_NAME, tiny_card(model), hub_dir=hub_dir)
    return hub_dir


@pytest.fixture
def hub_copy(published_hub, tmp_path) -> Path:
    """A private copy of the published hub that a test may damage."""
    target = tmp_path / "served"
    shutil.copytree(published_hub, target)
    return target


class _HubServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.log: list[tuple[str, str | None]] = []
        self.truncate: dict[str, int] = {}  # path -> bytes to send before hanging up (once)
        self.honour_range = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HubServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        rel = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        path = (self.server.root / rel).resolve()
        range_header = self.headers.get("Range")
        self.server.log.append((rel, range_header))
        if not path.is_relative_to(self.server.root.resolve()) or not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        if range_header and self.server.honour_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.server.truncate.pop(rel, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub_server(hub_copy):
    """An HTTP server on 127.0.0.1 serving ``hub_copy``; stopped after the test."""
    server = _HubServer(hub_copy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def tiny():
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    import types

    return types.SimpleNamespace(name=TINY_NAME, model_name=TINY_MODEL, data=tiny_data,
                                 build=tiny_model, mae=tiny_mae, card=tiny_card)
