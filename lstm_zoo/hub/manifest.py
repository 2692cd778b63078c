"""Manifests and the hub index: what a published model holds, and how a pull checks it.

A *hub* is nothing but a folder laid out like the repository's ``saved_models/``, served as
static files (any web server, an object store, ``python -m http.server``) or read from disk::

    saved_models/
      index.json                        names, versions, headline metrics, manifest paths
      weather/                          a TF Serving base path (it only looks at numeric dirs)
        1/                              a TF Serving SavedModel version ...
          saved_model.pb
          variables/...
          assets.extra/
            model.keras                 ... plus what Python users fine-tune
            manifest.json               ... and the manifest: sha256 of every other file

The chain of trust: ``index.json`` is the root; it holds the sha256 of each manifest; each
manifest holds the sha256 and size of every file of its version.  Nothing read from a file is
used before its hash is checked, and every path read from an index or manifest is checked to
stay inside its folder before it becomes a local path.

This module is standard library only (no TensorFlow), so listing and verifying stay fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from lstm_zoo.errors import LstmZooError

INDEX_FILE = "index.json"
MANIFEST_PATH = "assets.extra/manifest.json"  # inside a version directory
KERAS_PATH = "assets.extra/model.keras"  # inside a version directory
INDEX_FORMAT = "lstm_zoo.index/1"
MANIFEST_FORMAT = "lstm_zoo.manifest/1"

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_VERSION_RE = re.compile(r"^[0-9]{1,18}$")  # TF Serving versions are positive integers
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class HubError(LstmZooError):
    """A hub, index or manifest that cannot be used (missing, malformed, unknown name)."""


class IntegrityError(HubError, ValueError):
    """A file whose sha256 or size differs from what its manifest (or the index) says."""


# ---- names, versions and paths ------------------------------------------------------------
def check_name(name: str) -> str:
    """A pretrained name (``weather``): lowercase letters, digits, ``.``, ``_``, ``-``."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise HubError(
            f"invalid pretrained name {name!r}: expected lowercase letters, digits, '.', '_' "
            "or '-' (e.g. 'weather')"
        )
    return name


def check_version(version: str | int) -> str:
    """A version as TF Serving wants it: a positive integer, returned as a string."""
    text = str(version)
    if not _VERSION_RE.match(text) or int(text) <= 0:
        raise HubError(f"invalid version {version!r}: expected a positive integer such as 1")
    return str(int(text))


def safe_relative_path(path: str, where: str) -> PurePosixPath:
    """``path`` as a relative POSIX path that cannot leave its folder.

    Refuses absolute paths, ``..``, empty or ``.`` parts, backslashes and drive letters:
    an index or manifest (possibly from a hostile hub) never names a file outside its folder.
    """
    if not isinstance(path, str) or not path:
        raise HubError(f"{where}: file path must be a non-empty string, got {path!r}")
    pure = PurePosixPath(path)
    bad = (
        pure.is_absolute()
        or "\\" in path
        or "\x00" in path
        or (len(path) > 1 and path[1] == ":")
        or any(part in ("", ".", "..") for part in path.split("/"))
    )
    if bad:
        raise HubError(f"{where}: refusing file path {path!r} that escapes its folder")
    return pure


# ---- hashing --------------------------------------------------------------------------------
def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_table(version_dir: Path) -> dict[str, dict[str, Any]]:
    """``{relative posix path: {"sha256", "size"}}`` of every file under ``version_dir``,
    except the manifest itself (which cannot hold its own hash; the index holds it)."""
    table: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in version_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(version_dir).as_posix()
        if rel == MANIFEST_PATH:
            continue
        table[rel] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return table


# ---- manifests ------------------------------------------------------------------------------
def _load_document(data: bytes, where: str, kind: str, described: str, fmt: str) -> dict:
    """JSON bytes -> dict, refusing anything that is not JSON or not of format ``fmt``."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HubError(f"{where}: {kind} is not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != fmt:
        raise HubError(f"{where}: not {described} (expected format {fmt!r})")
    return document


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """Parse and validate manifest bytes (already hash-checked by the caller)."""
    manifest = _load_document(data, where, "manifest", "an lstm_zoo manifest", MANIFEST_FORMAT)
    check_name(manifest.get("name", ""))
    check_version(manifest.get("version", ""))
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise HubError(f"{where}: manifest lists no files")
    for rel, meta in files.items():
        safe_relative_path(rel, where)
        if rel == MANIFEST_PATH:
            raise HubError(f"{where}: manifest lists itself")
        if (
            not isinstance(meta, dict)
            or not _SHA_RE.match(str(meta.get("sha256", "")))
            or not isinstance(meta.get("size"), int)
            or meta["size"] < 0
        ):
            raise HubError(f"{where}: entry {rel!r} needs a hex 'sha256' and an integer 'size'")
    return manifest


def read_manifest(version_dir: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``assets.extra/manifest.json`` of a version directory.

    Parsing checks the format, not the hashes: call it on a version that was verified (pulled,
    or just published), or pass the result to :func:`verify_version_dir`.
    """
    path = Path(version_dir) / MANIFEST_PATH
    return parse_manifest(path.read_bytes(), str(path))


def verify_version_dir(version_dir: Path, manifest: Mapping[str, Any], strict: bool = True) -> None:
    """Check every file of ``manifest`` under ``version_dir``: present, right size, right sha256.

    Symbolic links are always refused (anywhere in the version folder, or the folder itself):
    a link can point outside the hub (``/etc``) and nothing the manifest hashes vouches for
    where it leads.  ``strict`` also refuses files and folders the manifest does not list
    (something TF Serving or Keras could pick up that nobody vouched for).  The tree is
    checked before any listed file is read.  Raises :class:`IntegrityError` naming the entry.
    """
    files: Mapping[str, Mapping[str, Any]] = manifest["files"]
    unlisted = _check_tree(Path(version_dir), set(files) | {MANIFEST_PATH})
    if strict and unlisted:
        raise IntegrityError(
            f"{version_dir}: not listed in the manifest: {', '.join(unlisted[:5])}"
            f"{f' and {len(unlisted) - 5} more' if len(unlisted) > 5 else ''} (a published "
            "version holds exactly the files its manifest lists)"
        )
    for rel, meta in files.items():
        path = version_dir / rel
        if not path.is_file():
            raise IntegrityError(f"{path}: missing (listed in the manifest of {version_dir})")
        size = path.stat().st_size
        if size != meta["size"]:
            raise IntegrityError(
                f"{path}: size {size} bytes differs from the manifest's {meta['size']}"
            )
        digest = sha256_file(path)
        if digest != meta["sha256"]:
            raise IntegrityError(
                f"{path}: sha256 {digest} differs from the manifest's {meta['sha256']} "
                "(the file is corrupt or was tampered with)"
            )


def _check_tree(version_dir: Path, listed: set[str]) -> list[str]:
    """Walk ``version_dir`` without following links: raise on any symlink or special file;
    return the relative paths (folders with a trailing ``/``) that ``listed`` does not cover.

    A folder is covered when a listed file lies inside it.  An empty real folder is let
    through: it holds nothing to vouch for, and exports leave one (an empty SavedModel
    ``assets/``) that a git checkout or a pull does not even recreate.
    """
    if version_dir.is_symlink():
        raise IntegrityError(f"{version_dir}: is a symbolic link; a published version must be "
                             "a real folder")
    folders = {str(parent) for rel in listed for parent in PurePosixPath(rel).parents}
    unlisted: list[str] = []
    for root, dirs, names in os.walk(version_dir, followlinks=False):
        for name in sorted([*dirs, *names]):
            path = Path(root) / name
            rel = path.relative_to(version_dir).as_posix()
            if path.is_symlink():
                raise IntegrityError(
                    f"{path}: is a symbolic link (to {os.readlink(path)!r}); refusing it "
                    "(a hub version may hold only real files and folders)"
                )
            if path.is_dir():
                if rel not in folders and any(path.iterdir()):
                    unlisted.append(rel + "/")
            elif not path.is_file():
                raise IntegrityError(f"{path}: not a regular file or folder; refusing it")
            elif rel not in listed:
                unlisted.append(rel)
    return sorted(unlisted)


# ---- the index ------------------------------------------------------------------------------
def headline_of(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """The manifest's headline metric (``{"name", "value", "higher_is_better"}``) or None."""
    headline = manifest.get("metrics", {}).get("headline")
    return dict(headline) if isinstance(headline, Mapping) else None


def build_index(hub_dir: Path) -> dict[str, Any]:
    """The index of every published version under ``hub_dir`` (scanning manifests).

    Each entry holds the manifest's path and sha256 (the link in the chain of trust), the
    registered model name, task, headline metric and total size.
    """
    models: dict[str, Any] = {}
    for manifest_path in sorted(hub_dir.glob(f"*/*/{MANIFEST_PATH}")):
        version_dir = manifest_path.parents[1]
        name, version = version_dir.parent.name, version_dir.name
        if name.startswith(".") or not _VERSION_RE.match(version):
            continue
        data = manifest_path.read_bytes()
        manifest = parse_manifest(data, str(manifest_path))
        if (manifest["name"], manifest["version"]) != (name, check_version(version)):
            raise HubError(
                f"{manifest_path}: says {manifest['name']}/{manifest['version']} but lives in "
                f"{name}/{version}"
            )
        entry = models.setdefault(name, {"latest": None, "versions": {}})
        entry["versions"][manifest["version"]] = {
            "path": f"{name}/{manifest['version']}",
            "manifest": f"{name}/{manifest['version']}/{MANIFEST_PATH}",
            "manifest_sha256": sha256_bytes(data),
            "manifest_size": len(data),
            "model": manifest.get("model"),
            "task": manifest.get("task"),
            "headline": headline_of(manifest),
            "size_bytes": sum(m["size"] for m in manifest["files"].values()) + len(data),
            "created": manifest.get("created"),
        }
    for entry in models.values():
        entry["versions"] = dict(sorted(entry["versions"].items(), key=lambda kv: int(kv[0])))
        entry["latest"] = max(entry["versions"], key=int)
    return {"format": INDEX_FORMAT, "models": dict(sorted(models.items()))}


def parse_index(data: bytes, where: str) -> dict[str, Any]:
    """Parse and validate an index; every name, version and path in it is checked."""
    index = _load_document(data, where, "index", "an lstm_zoo hub index", INDEX_FORMAT)
    models = index.get("models")
    if not isinstance(models, dict):
        raise HubError(f"{where}: index has no 'models' mapping")
    for name, entry in models.items():
        check_name(name)
        versions = entry.get("versions") if isinstance(entry, dict) else None
        if not isinstance(versions, dict) or not versions:
            raise HubError(f"{where}: model {name!r} lists no versions")
        for version, meta in versions.items():
            check_version(version)
            expected = f"{name}/{version}/{MANIFEST_PATH}"
            if not isinstance(meta, dict) or meta.get("manifest") != expected:
                raise HubError(f"{where}: {name}/{version} must name its manifest {expected!r}")
            if not _SHA_RE.match(str(meta.get("manifest_sha256", ""))):
                raise HubError(f"{where}: {name}/{version} has no valid manifest_sha256")
    return index


def resolve_version(index: Mapping[str, Any], name: str, version: str | int = "latest") -> str:
    """The concrete version for ``name`` (``"latest"``: the highest published)."""
    check_name(name)
    models = index["models"]
    if name not in models:
        known = ", ".join(sorted(models)) or "(none published)"
        raise HubError(f"no pretrained model {name!r} in this hub; published: {known}")
    versions = models[name]["versions"]
    if str(version) == "latest":
        return max(versions, key=int)
    version = check_version(version)
    if version not in versions:
        raise HubError(
            f"pretrained {name!r} has no version {version}; published: "
            f"{', '.join(sorted(versions, key=int))}"
        )
    return version


def index_rows(index: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """One flat row per published version (for listings)."""
    for name, entry in index["models"].items():
        for version, meta in entry["versions"].items():
            yield {"name": name, "version": version, "latest": version == entry.get("latest"),
                   **{k: meta.get(k) for k in ("model", "task", "headline", "size_bytes")}}
