"""Pulling: local folders verified in place, HTTP pulls through a local server into the cache,
tampering and truncation, offline mode, and loading the pulled model."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from lstm_zoo.hub import pretrained as hub
from lstm_zoo.hub.download import RemoteHub
from lstm_zoo.hub.manifest import KERAS_PATH, MANIFEST_PATH, HubError, IntegrityError

VARIABLES = "variables/variables.data-00000-of-00001"


def _flip_byte(path: Path, at: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _cache_files(cache: Path) -> list[str]:
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file()
                  and p.name not in ("HUB_URL",) and not p.name.endswith(".lock"))


# ---- local folders ---------------------------------------------------------------------------
def test_local_hub_is_verified_in_place(published_hub):
    path = hub.pull("tiny", hub=published_hub)
    assert path == published_hub / "tiny" / "2"
    assert hub.pull("tiny", version=1, hub=published_hub) == published_hub / "tiny" / "1"
    assert (path / "saved_model.pb").is_file() and (path / KERAS_PATH).is_file()


def test_local_hub_with_one_tampered_byte_raises(hub_copy):
    _flip_byte(hub_copy / "tiny" / "2" / VARIABLES)
    with pytest.raises(IntegrityError, match="sha256 .* differs"):
        hub.pull("tiny", hub=hub_copy)
    hub.pull("tiny", version=1, hub=hub_copy)  # the untouched version still pulls


def test_tampered_manifest_is_caught_by_the_index_hash(hub_copy):
    manifest = hub_copy / "tiny" / "1" / MANIFEST_PATH
    manifest.write_text(manifest.read_text().replace('"seed": 0', '"seed": 1'))
    with pytest.raises(IntegrityError, match="manifest sha256"):
        hub.pull("tiny", version=1, hub=hub_copy)


def test_env_var_selects_the_hub(published_hub, monkeypatch):
    monkeypatch.setenv("LSTM_ZOO_HUB", str(published_hub))
    assert hub.pull("tiny") == published_hub / "tiny" / "2"


def test_unknown_name_lists_what_is_published(published_hub):
    with pytest.raises(HubError, match="no pretrained model 'wether'.*tiny"):
        hub.pull("wether", hub=published_hub)


# ---- over HTTP ------------------------------------------------------------------------------
def test_http_pull_caches_a_verified_copy(hub_server, tmp_path):
    cache = tmp_path / "cache"
    path = hub.pull("tiny", hub=hub_server.url, cache_dir=cache)
    assert path.is_relative_to(cache) and path.name == "2"
    served = hub_server.root / "tiny" / "2"
    for rel in ("saved_model.pb", VARIABLES, KERAS_PATH, MANIFEST_PATH):
        assert (path / rel).read_bytes() == (served / rel).read_bytes()
    assert not list(cache.rglob("*.part")) and not list(cache.rglob(".*.partial"))
    # a second pull reads only the index and re-verifies the cached copy
    hub_server.log.clear()
    assert hub.pull("tiny", hub=hub_server.url, cache_dir=cache) == path
    assert [rel for rel, _ in hub_server.log] == ["index.json"]


def test_tampered_file_on_the_server_raises_and_leaves_a_clean_cache(hub_server, tmp_path):
    cache = tmp_path / "cache"
    _flip_byte(hub_server.root / "tiny" / "2" / VARIABLES, at=10)
    with pytest.raises(IntegrityError, match="nothing was cached"):
        hub.pull("tiny", hub=hub_server.url, cache_dir=cache)
    assert _cache_files(cache) == []  # no version dir, no staging, no .part
    assert not (cache / "hubs").exists() or not list((cache / "hubs").glob("*/tiny/2"))


def test_truncated_download_is_resumed_with_range(hub_server, tmp_path):
    rel = f"tiny/2/{KERAS_PATH}"
    size = (hub_server.root / rel).stat().st_size
    hub_server.truncate[rel] = size // 2
    path = hub.pull("tiny", hub=hub_server.url, cache_dir=tmp_path / "cache")
    requests = [r for r in hub_server.log if r[0] == rel]
    assert requests == [(rel, None), (rel, f"bytes={size // 2}-")]
    assert (path / KERAS_PATH).read_bytes() == (hub_server.root / rel).read_bytes()


def test_truncated_download_restarts_when_the_server_ignores_range(hub_server, tmp_path):
    rel = f"tiny/2/{VARIABLES}"
    hub_server.honour_range = False
    hub_server.truncate[rel] = 100
    path = hub.pull("tiny", hub=hub_server.url, cache_dir=tmp_path / "cache")
    assert [r for r in hub_server.log if r[0] == rel][1] == (rel, "bytes=100-")
    assert (path / VARIABLES).read_bytes() == (hub_server.root / rel).read_bytes()


def test_pull_interrupted_for_good_resumes_next_time(hub_server, tmp_path, monkeypatch):
    """Every attempt cut short: the pull fails, keeps its partial file, the next one resumes."""
    cache = tmp_path / "cache"
    rel = f"tiny/2/{KERAS_PATH}"
    size = (hub_server.root / rel).stat().st_size
    monkeypatch.setattr(hub, "RemoteHub", functools.partial(RemoteHub, attempts=1))
    hub_server.truncate[rel] = size // 3
    with pytest.raises(hub.HubError, match="run the pull again to resume"):
        hub.pull("tiny", hub=hub_server.url, cache_dir=cache)
    assert not list(cache.glob("hubs/*/tiny/2"))  # no cache entry yet ...
    assert len(list(cache.rglob("*.part"))) == 1  # ... only the partial file to resume
    path = hub.pull("tiny", hub=hub_server.url, cache_dir=cache)
    assert (rel, f"bytes={size // 3}-") in hub_server.log
    assert (path / KERAS_PATH).read_bytes() == (hub_server.root / rel).read_bytes()


def test_damaged_cache_entry_is_pulled_again(hub_server, tmp_path):
    cache = tmp_path / "cache"
    path = hub.pull("tiny", hub=hub_server.url, cache_dir=cache)
    _flip_byte(path / "saved_model.pb")
    assert hub.pull("tiny", hub=hub_server.url, cache_dir=cache) == path
    assert (path / "saved_model.pb").read_bytes() == (
        hub_server.root / "tiny" / "2" / "saved_model.pb").read_bytes()


def test_hostile_hub_with_escaping_paths_is_refused(hub_server, tmp_path):
    """A hub whose manifest (hash-consistent with its index) names a file outside its folder."""
    root = hub_server.root
    manifest_path = root / "tiny" / "2" / MANIFEST_PATH
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../../../escaped.txt"] = {"sha256": "0" * 64, "size": 3}
    manifest_path.write_text(json.dumps(manifest))
    index = json.loads((root / "index.json").read_text())
    index["models"]["tiny"]["versions"]["2"]["manifest_sha256"] = hashlib.sha256(
        manifest_path.read_bytes()).hexdigest()
    (root / "index.json").write_text(json.dumps(index))
    cache = tmp_path / "cache"
    with pytest.raises(HubError, match="escapes its folder"):
        hub.pull("tiny", hub=hub_server.url, cache_dir=cache)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert [r for r in hub_server.log if "escaped" in r[0]] == []


def test_offline_uses_only_the_cache(hub_server, tmp_path):
    cache = tmp_path / "cache"
    url = hub_server.url
    with pytest.raises(HubError, match="not in the cache"):
        hub.pull("tiny", hub=url, cache_dir=cache, offline=True)
    assert hub_server.log == []  # offline never touched the network
    path = hub.pull("tiny", version=1, hub=url, cache_dir=cache)
    hub_server.log.clear()
    assert hub.pull("tiny", hub=url, cache_dir=cache, offline=True) == path  # latest cached
    with pytest.raises(HubError, match="tiny/2 .* not in the cache"):
        hub.pull("tiny", version=2, hub=url, cache_dir=cache, offline=True)
    _flip_byte(path / KERAS_PATH)
    with pytest.raises(IntegrityError):
        hub.pull("tiny", version=1, hub=url, cache_dir=cache, offline=True)
    assert hub_server.log == []


def test_file_url_hub(published_hub, tmp_path):
    path = hub.pull("tiny", hub=published_hub.as_uri(), cache_dir=tmp_path / "cache")
    assert path.is_relative_to(tmp_path / "cache")


def test_xdg_cache_home_is_the_default_cache(hub_server, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    path = hub.pull("tiny", hub=hub_server.url)
    assert path.is_relative_to(tmp_path / "xdg" / "lstm_zoo")


# ---- loading --------------------------------------------------------------------------------
def test_load_pretrained_reproduces_the_manifest_metric(hub_server, tmp_path, tiny):
    """The pulled model, loaded in safe mode, gives the manifest's headline metric again."""
    for version in ("1", "2"):
        model = hub.load_pretrained("tiny", version, hub=hub_server.url,
                                    cache_dir=tmp_path / "cache")
        manifest = hub.read_manifest(hub.pull("tiny", version, hub=hub_server.url,
                                              cache_dir=tmp_path / "cache"))
        headline = manifest["metrics"]["headline"]
        assert tiny.mae(model) == pytest.approx(headline["value"], rel=1e-5)


def test_pulled_savedmodel_serves_the_same_predictions(published_hub, tiny):
    import tensorflow as tf

    path = hub.pull("tiny", hub=published_hub)
    keras_model = hub.load_pretrained("tiny", hub=published_hub)
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    x, _ = tiny.data()
    (served,) = serving(tf.constant(x)).values()
    np.testing.assert_allclose(served.numpy(), keras_model.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-5)


def test_top_level_lazy_api(published_hub):
    import lstm_zoo

    assert lstm_zoo.pull("tiny", hub=published_hub).name == "2"
    assert callable(lstm_zoo.load_pretrained)


def test_bad_leftover_in_staging_is_fetched_again(hub_server, tmp_path):
    """A file left complete-but-wrong by an earlier pull is not trusted: it is re-downloaded."""
    cache = tmp_path / "cache"
    hub.pull("tiny", version=1, hub=hub_server.url, cache_dir=cache)  # creates the hub folder
    staging = next(cache.glob("hubs/*")) / "tiny" / ".2.partial"
    leftover = staging / "saved_model.pb"
    leftover.parent.mkdir(parents=True)
    size = (hub_server.root / "tiny" / "2" / "saved_model.pb").stat().st_size
    leftover.write_bytes(b"\0" * size)
    path = hub.pull("tiny", hub=hub_server.url, cache_dir=cache)
    assert (path / "saved_model.pb").read_bytes() == (
        hub_server.root / "tiny" / "2" / "saved_model.pb").read_bytes()
    assert not staging.exists()


def test_unreachable_hub_and_missing_index_are_clear_errors(tmp_path, hub_server, monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    with pytest.raises(hub.HubError, match="failed after 3 attempts"):
        hub.pull("tiny", hub=closed, cache_dir=tmp_path / "cache")
    (hub_server.root / "index.json").unlink()
    with pytest.raises(hub.HubError, match="not found on the hub"):
        hub.pull("tiny", hub=hub_server.url, cache_dir=tmp_path / "cache")


def test_installation_without_saved_models_says_what_to_do(monkeypatch):
    monkeypatch.delenv("LSTM_ZOO_HUB", raising=False)
    monkeypatch.setattr(hub, "repo_saved_models", lambda: None)
    with pytest.raises(hub.HubError, match="wheel install .* LSTM_ZOO_HUB"):
        hub.pull("weather")


def test_name_version_tags(published_hub):
    assert hub.pull("tiny:1", hub=published_hub) == published_hub / "tiny" / "1"
    assert hub.pull("tiny:1", version=1, hub=published_hub) == published_hub / "tiny" / "1"
    with pytest.raises(HubError, match="conflicting versions"):
        hub.pull("tiny:1", version=2, hub=published_hub)


def test_a_checkout_in_the_current_directory_is_found(published_hub, tmp_path, monkeypatch):
    """A wheel install run from a checkout's root finds that checkout's saved_models/."""
    import shutil

    monkeypatch.delenv("LSTM_ZOO_HUB", raising=False)
    monkeypatch.setattr(hub, "SOURCE_ROOT", tmp_path / "site")  # as a wheel install: no checkout
    checkout = tmp_path / "checkout"
    shutil.copytree(published_hub, checkout / "saved_models")
    monkeypatch.chdir(checkout)
    assert hub.repo_saved_models() == checkout / "saved_models"
    assert hub.pull("tiny", version=1) == checkout / "saved_models" / "tiny" / "1"


def test_the_checkout_hub_is_found_from_any_directory(tmp_path, monkeypatch):
    """A source/editable install finds the checkout's saved_models/ wherever Python runs."""
    monkeypatch.chdir(tmp_path)
    found = hub.repo_saved_models()
    assert found == Path(__file__).resolve().parents[2] / "saved_models"
