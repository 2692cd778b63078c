"""Where exports live: ``BASE/NAME/VERSION`` folders, their manifest, and ``models.config``.

TF Serving watches ``BASE/NAME`` and serves the highest numeric version; non-numeric entries
(hidden temporary folders of exports in progress, converted ``1.onnx`` files) are ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lstm_zoo.errors import LstmZooError
from lstm_zoo.files import atomic_write_text
from lstm_zoo.serving.warmup import EXTRA_DIR

MANIFEST_FILE = "lstm_zoo.json"
MODELS_CONFIG_FILE = "models.config"


class ExportError(LstmZooError, ValueError):
    """An export that cannot be written: no contract, existing version, unwritable folder ..."""


# ---- versions ------------------------------------------------------------------------------
def list_versions(model_dir: str | Path) -> list[int]:
    """The numeric version subdirectories of ``BASE/NAME``, ascending (as TF Serving sees them)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: str | Path) -> int:
    """One more than the highest existing version, or 1."""
    versions = list_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def target_dir(base_dir: Path, name: str, version: int | None, force: bool) -> tuple[Path, int]:
    """``(BASE/NAME/VERSION, VERSION)`` for a new export; refuses an existing version unless
    ``force`` and an unwritable base, with a message saying what to do instead."""
    model_dir = base_dir / name
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"cannot create export folder {model_dir}: {exc.strerror or exc}; "
            "choose a writable --out directory"
        ) from None
    if not os.access(model_dir, os.W_OK):
        raise ExportError(f"export folder {model_dir} is not writable; choose another --out")
    if version is None:
        version = next_version(model_dir)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ExportError(f"version must be a positive integer, got {version!r}")
    target = model_dir / str(version)
    if target.exists() and not force:
        raise ExportError(
            f"version {version} of {name!r} already exists at {target}; pass --force "
            f"(force=True) to overwrite it, or leave out --version to write version "
            f"{next_version(model_dir)}"
        )
    return target, version


def read_export_manifest(version_dir: str | Path) -> dict[str, Any]:
    """The ``assets.extra/lstm_zoo.json`` export manifest of one exported version (what
    :func:`lstm_zoo.serving.export` recorded; a published version's hub manifest is read by
    :func:`lstm_zoo.hub.manifest.read_manifest`)."""
    return json.loads((Path(version_dir) / EXTRA_DIR / MANIFEST_FILE).read_text())


def servable_models(base_dir: str | Path) -> dict[str, list[int]]:
    """``{name: versions}`` for every ``BASE/NAME`` holding a numeric version with a SavedModel."""
    base_dir = Path(base_dir)
    found = {}
    model_dirs = sorted(p for p in base_dir.iterdir() if p.is_dir()) if base_dir.is_dir() else []
    for model_dir in model_dirs:
        versions = [v for v in list_versions(model_dir)
                    if (model_dir / str(v) / "saved_model.pb").is_file()]
        if versions:
            found[model_dir.name] = versions
    return found


def write_models_config(base_dir: str | Path, path: str | Path | None = None) -> Path:
    """Write a TF Serving ``models.config`` serving every model under ``base_dir``.

    Use with ``tensorflow_model_server --model_config_file=BASE/models.config``; each model's
    ``base_path`` is absolute.  Built with the official ``ModelServerConfig`` proto.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    base_dir = Path(base_dir).resolve()
    models = servable_models(base_dir)
    if not models:
        raise ExportError(f"no exported models (NAME/VERSION/saved_model.pb) under {base_dir}")
    config = model_server_config_pb2.ModelServerConfig()
    for model_name in models:
        entry = config.model_config_list.config.add()
        entry.name = model_name
        entry.base_path = str(base_dir / model_name)
        entry.model_platform = "tensorflow"
    target = Path(path) if path is not None else base_dir / MODELS_CONFIG_FILE
    return atomic_write_text(target, text_format.MessageToString(config))
