"""Pretrained models: pull a verified copy from a hub, load it, publish new versions.

Sources, in order: the ``hub`` argument, the ``LSTM_ZOO_HUB`` environment variable, then the
repository's own ``saved_models/`` (found beside the package in a source or editable install,
so ``lstm_zoo.pull("weather")`` works offline on a fresh clone).  A hub is a local folder or a
base URL (``http(s)://``, ``file://``) serving a copy of ``saved_models/`` as static files; see
:mod:`lstm_zoo.hub.manifest` for the layout and the chain of trust (index -> manifest -> files).

* A local folder is verified in place and its version directory is returned.
* A URL is pulled into the cache (``$XDG_CACHE_HOME/lstm_zoo`` or ``~/.cache/lstm_zoo``), one
  folder per hub; files are downloaded into a hidden staging folder, each verified, and the
  finished version is renamed into place, so the cache never holds a half-pulled version.
* ``offline=True`` never touches the network: it verifies and returns the cached copy.

Every file is checked against its manifest's sha256 before anything is loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lstm_zoo.hub.download import RemoteHub, check_scheme, is_url
from lstm_zoo.hub.manifest import (
    INDEX_FILE,
    KERAS_PATH,
    MANIFEST_PATH,
    HubError,
    IntegrityError,
    check_name,
    check_version,
    parse_index,
    parse_manifest,
    read_manifest,
    resolve_version,
    sha256_bytes,
    sha256_file,
    verify_version_dir,
)

HUB_ENV = "LSTM_ZOO_HUB"

__all__ = [
    "HubError",
    "IntegrityError",
    "available",
    "cache_root",
    "load_pretrained",
    "pull",
    "repo_saved_models",
]


# ---- where things are -----------------------------------------------------------------------
#: The folder holding the ``lstm_zoo`` package: a checkout's root in a source or editable install.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def repo_saved_models() -> Path | None:
    """The repository's ``saved_models/``: beside the package (source/editable installs), else
    in the current directory (a checkout whose package was ``pip install .``-ed as a wheel)."""
    for candidate in (SOURCE_ROOT / "saved_models",
                      Path.cwd() / "saved_models"):
        if (candidate / INDEX_FILE).is_file():
            return candidate
    return None


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The pull cache: ``cache_dir``, else ``$XDG_CACHE_HOME/lstm_zoo``, else ``~/.cache/lstm_zoo``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lstm_zoo"


def _resolve_hub(hub: str | os.PathLike | None) -> Path | RemoteHub:
    location = hub if hub is not None else os.environ.get(HUB_ENV) or None
    if location is None:
        found = repo_saved_models()
        if found is None:
            raise HubError(
                "no pretrained models here: this installation has no saved_models/ folder (a "
                f"wheel install does not ship it) and neither has the current directory; pass "
                f"hub=URL, set {HUB_ENV}, or run from a source checkout"
            )
        return found
    check_scheme(str(location))
    if is_url(str(location)):
        return RemoteHub(str(location))
    path = Path(location).expanduser()
    if not (path / INDEX_FILE).is_file():
        raise HubError(f"hub folder {path} has no {INDEX_FILE} (expected a saved_models/ copy)")
    return path


def _read_local_index(hub_dir: Path) -> dict[str, Any]:
    path = hub_dir / INDEX_FILE
    return parse_index(path.read_bytes(), str(path))


def _checked_manifest(data: bytes, meta: Mapping[str, Any], where: str, name: str,
                      version: str) -> dict[str, Any]:
    """Parse manifest bytes only after their sha256 matches the index entry."""
    digest = sha256_bytes(data)
    if digest != meta["manifest_sha256"]:
        raise IntegrityError(
            f"{where}: manifest sha256 {digest} differs from the index's "
            f"{meta['manifest_sha256']} (corrupt or tampered)"
        )
    manifest = parse_manifest(data, where)
    if (manifest["name"], manifest["version"]) != (name, version):
        raise HubError(f"{where}: manifest is for {manifest['name']}/{manifest['version']}, "
                       f"expected {name}/{version}")
    return manifest


# ---- pull -----------------------------------------------------------------------------------
def pull(
    name: str,
    version: str | int = "latest",
    hub: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    offline: bool = False,
    progress: bool = False,
) -> Path:
    """A verified local copy of pretrained ``name`` (its TF Serving version directory).

    ``name`` may carry its version as listings show it (``"weather:1"``).

    The directory holds the SavedModel, ``assets.extra/model.keras`` (for Keras/fine-tuning)
    and ``assets.extra/manifest.json``.  Raises :class:`IntegrityError` if any file differs
    from its manifest (a bad download is deleted, never cached) and :class:`HubError` for an
    unknown name/version or an unusable hub.
    """
    name, version = split_tag(name, version)
    source = _resolve_hub(hub)
    if isinstance(source, Path):
        index = _read_local_index(source)
        version = resolve_version(index, name, version)
        meta = index["models"][name]["versions"][version]
        manifest_file = source / meta["manifest"]
        manifest = _checked_manifest(manifest_file.read_bytes(), meta, str(manifest_file),
                                     name, version)
        version_dir = source / name / version
        verify_version_dir(version_dir, manifest)
        return version_dir
    return _pull_remote(source, name, version, cache_root(cache_dir), offline, progress)


def split_tag(name: str, version: str | int = "latest") -> tuple[str, str | int]:
    """``"weather:1"`` -> ``("weather", "1")`` (the tags listings show); plain names pass."""
    if isinstance(name, str) and ":" in name:
        name, _, tagged = name.partition(":")
        if str(version) not in ("latest", tagged):
            raise HubError(f"conflicting versions: {name}:{tagged} and version={version!r}")
        version = tagged
    return check_name(name), version


def _hub_cache(source: RemoteHub, root: Path) -> Path:
    key = hashlib.sha256(source.base_url.encode()).hexdigest()[:16]
    folder = root / "hubs" / key
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "HUB_URL"
    if not marker.exists():
        marker.write_text(source.base_url + "\n", encoding="utf-8")
    return folder


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock so two processes never pull the same version at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _cached_versions(model_dir: Path) -> list[str]:
    if not model_dir.is_dir():
        return []
    return sorted((p.name for p in model_dir.iterdir()
                   if p.is_dir() and p.name.isdigit() and (p / MANIFEST_PATH).is_file()), key=int)


def _pull_remote(source: RemoteHub, name: str, version: str | int, root: Path, offline: bool,
                 progress: bool) -> Path:
    hub_cache = _hub_cache(source, root)
    model_dir = hub_cache / name
    if offline:
        cached = _cached_versions(model_dir)
        if str(version) == "latest":
            if not cached:
                raise HubError(f"{name!r} from {source.base_url} is not in the cache {hub_cache} "
                               "and --offline forbids downloading it")
            version = cached[-1]
        version = check_version(version)
        target = model_dir / version
        if version not in cached:
            raise HubError(f"{name}/{version} from {source.base_url} is not in the cache "
                           f"{hub_cache} and --offline forbids downloading it")
        verify_version_dir(target, read_manifest(target))
        return target

    index = parse_index(source.read_bytes(INDEX_FILE), source.url(INDEX_FILE))
    version = resolve_version(index, name, version)
    meta = index["models"][name]["versions"][version]
    target = model_dir / version
    with _locked(model_dir / f".{version}.lock"):
        if target.is_dir():
            try:
                data = (target / MANIFEST_PATH).read_bytes()
                manifest = _checked_manifest(data, meta, str(target / MANIFEST_PATH), name,
                                             version)
                verify_version_dir(target, manifest)
                return target
            except (OSError, HubError) as exc:
                print(f"lstm_zoo: cached {target} is stale or damaged ({exc}); pulling it again",
                      file=sys.stderr)
                shutil.rmtree(target)
        staging = model_dir / f".{version}.partial"
        data = source.read_bytes(meta["manifest"])
        manifest = _checked_manifest(data, meta, source.url(meta["manifest"]), name, version)
        try:
            for rel, info in manifest["files"].items():
                dest = staging / rel
                if dest.is_file():  # fetched by an earlier, interrupted pull
                    if (dest.stat().st_size == info["size"]
                            and sha256_file(dest) == info["sha256"]):
                        continue
                    dest.unlink()
                source.fetch_file(f"{name}/{version}/{rel}", dest, info["sha256"], info["size"],
                                  progress=progress)
            (staging / MANIFEST_PATH).parent.mkdir(parents=True, exist_ok=True)
            (staging / MANIFEST_PATH).write_bytes(data)
            listed = {staging / rel for rel in manifest["files"]} | {staging / MANIFEST_PATH}
            for leftover in [p for p in staging.rglob("*") if p.is_file() and p not in listed]:
                leftover.unlink()  # partial files, or files of an older manifest
            verify_version_dir(staging, manifest)
        except IntegrityError:
            shutil.rmtree(staging, ignore_errors=True)  # nothing unverified survives
            raise
        os.replace(staging, target)
    return target


def load_pretrained(
    name: str,
    version: str | int = "latest",
    hub: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    offline: bool = False,
    progress: bool = False,
) -> Any:
    """Pull ``name`` (verified) and load its ``.keras`` file in safe mode: a ``keras.Model``."""
    from lstm_zoo.training.driver import load_model

    path = pull(name, version, hub, cache_dir, offline=offline, progress=progress)
    return load_model(path / KERAS_PATH)


def available(hub: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per published version of ``hub`` (default source when None): name, version,
    model, task, headline metric, size.  Reads only the index."""
    from lstm_zoo.hub.manifest import index_rows

    source = _resolve_hub(hub)
    if isinstance(source, Path):
        index = _read_local_index(source)
    else:
        index = parse_index(source.read_bytes(INDEX_FILE), source.url(INDEX_FILE))
    return list(index_rows(index))


# ---- registry hook --------------------------------------------------------------------------
_provider_cache: dict[str, Any] = {}


def _local_index_for_listing() -> dict[str, Any] | None:
    """The index of the default source if it is a local folder (listing never uses network)."""
    env = os.environ.get(HUB_ENV)
    hub_dir = Path(env) if env and not is_url(env) else repo_saved_models()
    if hub_dir is None or not (hub_dir / INDEX_FILE).is_file():
        return None
    path = hub_dir / INDEX_FILE
    key = (str(path), path.stat().st_mtime_ns)
    if _provider_cache.get("key") != key:
        _provider_cache.update(key=key, index=_read_local_index(hub_dir))
    return _provider_cache["index"]


def pretrained_for_model(model_name: str) -> list[str]:
    """Published ``NAME:VERSION`` tags whose manifest names registered model ``model_name``."""
    index = _local_index_for_listing()
    if index is None:
        return []
    return [f"{name}:{version}" for name, entry in index["models"].items()
            for version, meta in entry["versions"].items() if meta.get("model") == model_name]


def published_headlines() -> dict[str, dict[str, Any] | None]:
    """``{"NAME:VERSION": headline metric}`` of the local default hub (no network)."""
    index = _local_index_for_listing()
    if index is None:
        return {}
    return {f"{name}:{version}": meta.get("headline") for name, entry in index["models"].items()
            for version, meta in entry["versions"].items()}


def install_pretrained_provider() -> None:
    """Tell the registry about published versions (loaded through the plugin entry point)."""
    from lstm_zoo.registry import register_pretrained_provider

    register_pretrained_provider(pretrained_for_model)


def format_headline(headline: Mapping[str, Any] | None) -> str:
    """``mae=1.234 (lower is better)`` for listings."""
    if not headline:
        return "(no headline metric)"
    better = "higher" if headline.get("higher_is_better") else "lower"
    return f"{headline['name']}={headline['value']:.4g} ({better} is better)"


def describe(version_dir: Path) -> str:
    """A short human summary of a pulled version (for the CLI)."""
    manifest = read_manifest(version_dir)
    return (f"{manifest['name']}:{manifest['version']}  model={manifest.get('model')}  "
            f"{format_headline(manifest.get('metrics', {}).get('headline'))}")

