"""Issue 24 (hub, data and sweep items): bad input and faults found by a hostile test.

Each test names its item.  The hub tests build a hand-made hub (an index, a manifest and one
"weights" file; no TensorFlow) and serve it from a thread on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from pathlib import Path

import pytest

from lstm_zoo.hub import pretrained as hub
from lstm_zoo.hub.manifest import (
    INDEX_FILE,
    MANIFEST_FORMAT,
    MANIFEST_PATH,
    HubError,
    IntegrityError,
    build_index,
    file_table,
    read_manifest,
    verify_version_dir,
)

WEIGHTS = "variables/variables.data-00000-of-00001"


# ---- a hand-made hub ---------------------------------------------------------------------------
def _make_hub(root: Path, weights: bytes = bytes(range(256)) * 40) -> Path:
    """``root`` as a hub holding ``toy/1`` (one weights file, a manifest, the index)."""
    version_dir = root / "toy" / "1"
    (version_dir / WEIGHTS).parent.mkdir(parents=True)
    (version_dir / WEIGHTS).write_bytes(weights)
    (version_dir / "saved_model.pb").write_bytes(b"pb")
    manifest = {"format": MANIFEST_FORMAT, "name": "toy", "version": "1",
                "files": file_table(version_dir)}
    (version_dir / MANIFEST_PATH).parent.mkdir(parents=True, exist_ok=True)
    (version_dir / MANIFEST_PATH).write_text(json.dumps(manifest))
    (root / INDEX_FILE).write_text(json.dumps(build_index(root)))
    return root


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def html_hub(tmp_path):
    """A hub over HTTP whose server answers the weights file with an HTML page (status 200),
    as a login wall or a misconfigured proxy does; every other file is served as published."""
    root = _make_hub(tmp_path / "hub")
    page = b"<!DOCTYPE html><html><body>Please sign in to continue.</body></html>\n" * 1

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path.endswith(WEIGHTS.rsplit("/", 1)[1]):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---- 24.9 -------------------------------------------------------------------------------------
def test_unlisted_symlinked_folder_in_a_version_is_refused(tmp_path):
    """24.9: a symlinked folder (to /etc) the manifest does not list made verification pass."""
    root = _make_hub(tmp_path / "hub")
    version_dir = root / "toy" / "1"
    manifest = read_manifest(version_dir)
    verify_version_dir(version_dir, manifest)  # the clean version passes
    (version_dir / "assets").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(IntegrityError, match=r"assets: is a symbolic link .*/etc"):
        verify_version_dir(version_dir, manifest)
    with pytest.raises(IntegrityError, match="symbolic link"):
        hub.pull("toy", hub=root)


def test_symlinked_listed_file_and_unlisted_folder_are_refused(tmp_path):
    """24.9: a listed file replaced by a link, or an unlisted folder with files, is refused."""
    root = _make_hub(tmp_path / "hub")
    version_dir = root / "toy" / "1"
    manifest = read_manifest(version_dir)
    real = tmp_path / "elsewhere.pb"
    real.write_bytes(b"pb")  # the same bytes: only the link gives it away
    (version_dir / "saved_model.pb").unlink()
    (version_dir / "saved_model.pb").symlink_to(real)
    with pytest.raises(IntegrityError, match="saved_model.pb: is a symbolic link"):
        verify_version_dir(version_dir, manifest)
    (version_dir / "saved_model.pb").unlink()
    (version_dir / "saved_model.pb").write_bytes(b"pb")
    (version_dir / "extra").mkdir()
    (version_dir / "extra" / "payload.so").write_bytes(b"x")
    with pytest.raises(IntegrityError, match=r"not listed in the manifest: extra/"):
        verify_version_dir(version_dir, manifest)


# ---- 24.14 ------------------------------------------------------------------------------------
def test_html_page_served_for_a_weights_file_is_named_and_not_resumed(html_hub, tmp_path):
    """24.14: an HTML page with status 200 was reported as a cut connection ("run the pull
    again to resume"); it is the wrong content, and pulling again cannot help."""
    from lstm_zoo.hub.download import WrongContentError

    cache = tmp_path / "cache"
    with pytest.raises(WrongContentError) as caught:
        hub.pull("toy", hub=html_hub, cache_dir=cache)
    message = str(caught.value)
    assert "returned something else" in message
    assert "text/html" in message and "10240-byte file" in message
    assert "resume" not in message
    leftovers = [p for p in cache.rglob("*") if p.is_file()
                 and p.name not in ("HUB_URL",) and not p.name.endswith(".lock")]
    assert leftovers == []  # nothing of the page was kept


# ---- 24.15 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("location", ["ftp://127.0.0.1/x", "s3://bucket/saved_models"])
def test_unsupported_url_scheme_is_named(location, tmp_path, monkeypatch):
    """24.15: an ftp:// hub was taken for a folder "ftp:/127.0.0.1/x" without an index."""
    with pytest.raises(HubError) as caught:
        hub.pull("toy", hub=location, cache_dir=tmp_path)
    message = str(caught.value)
    assert "unsupported URL scheme" in message and location.split(":")[0] + "://" in message
    assert all(s in message for s in ("http://", "https://", "file://"))
    assert "no index.json" not in message
    monkeypatch.setenv("LSTM_ZOO_HUB", location)
    with pytest.raises(HubError, match="unsupported URL scheme"):
        hub.available()
