"""Publishing pretrained models into a hub folder (by default the repository's ``saved_models/``).

A published version is a TF Serving SavedModel directory ``HUB/NAME/VERSION/`` that also holds
``assets.extra/model.keras`` (for Python users and fine-tuning) and
``assets.extra/manifest.json`` (name, version, sha256 and size of every file, test metrics with
the command that reproduces them, data provenance and licence, training configuration and
seed, library versions).  ``HUB/index.json`` is regenerated from the manifests afterwards.
TF Serving ignores ``index.json`` and the hidden staging folders, so ``HUB/NAME`` stays a valid
``model_base_path`` throughout.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from lstm_zoo.files import atomic_write_json
from lstm_zoo.hub.manifest import (
    INDEX_FILE,
    KERAS_PATH,
    MANIFEST_FORMAT,
    MANIFEST_PATH,
    HubError,
    build_index,
    check_name,
    check_version,
    file_table,
    read_manifest,
    verify_version_dir,
)
from lstm_zoo.hub.pretrained import SOURCE_ROOT, repo_saved_models
from lstm_zoo.recipe import recipe_option_args
from lstm_zoo.serving.layout import next_version

MAX_MODEL_BYTES = 25_000_000  # one published version (25 MB, as the hub's limits are stated)
MAX_HUB_BYTES = 100_000_000  # all of saved_models/ (100 MB)
REQUIRED_CARD_KEYS = ("model", "metrics", "evaluate_command", "train_command", "data", "seed",
                      "versions")

STAGING_PREFIX = ".staging-"  # hidden: TF Serving, the index and size limits skip it

ExportFn = Callable[[Any, Path, str, str], Path]
"""``export_fn(model, base_dir, name, version) -> base_dir/name/version`` (a SavedModel)."""


def keras_export(model: Any, base_dir: Path, name: str, version: str) -> Path:
    """Write ``base_dir/name/version`` with Keras' own TF SavedModel export (``serve``)."""
    target = base_dir / name / version
    model.export(str(target), format="tf_saved_model", verbose=False)
    return target


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*")
               if p.is_file() and not any(part.startswith(".") for part in
                                          p.relative_to(folder).parts))


def default_hub_dir(hub_dir: str | os.PathLike | None = None) -> Path:
    """``hub_dir``, else the repository's ``saved_models/`` (a source checkout is required)."""
    if hub_dir is not None:
        return Path(hub_dir)
    found = repo_saved_models()
    if found is not None:
        return found
    candidate = SOURCE_ROOT / "saved_models"
    if (candidate.parent / "pyproject.toml").is_file():
        return candidate
    raise HubError("no saved_models/ folder beside this installation (not a source checkout); "
                   "pass hub_dir / --publish-dir")


def rebuild_index(hub_dir: str | os.PathLike) -> Path:
    """Regenerate ``hub_dir/index.json`` from the manifests found there (atomically)."""
    hub_dir = Path(hub_dir)
    path = atomic_write_json(hub_dir / INDEX_FILE, build_index(hub_dir))
    path.chmod(0o644)  # world-readable whatever the umask: a web server or TF Serving reads it
    return path


def publish(
    model: Any,
    name: str,
    card: Mapping[str, Any],
    *,
    hub_dir: str | os.PathLike | None = None,
    version: str | int | None = None,
    export_fn: ExportFn | None = None,
    max_model_bytes: int = MAX_MODEL_BYTES,
    max_hub_bytes: int = MAX_HUB_BYTES,
) -> Path:
    """Publish ``model`` as ``hub_dir/name/version`` (TF Serving layout) and refresh the index.

    ``card`` describes the model and must hold ``model`` (registered name), ``metrics``
    (``{"test": ..., "headline": {"name", "value", "higher_is_better"}}``), the
    ``evaluate_command`` that reproduces them, the ``train_command``, ``data`` (source,
    provenance, licence), ``seed`` and ``versions``; ``training`` and ``task`` are recorded too.
    The version directory is assembled in a hidden staging folder and renamed into place, so
    TF Serving (watching ``hub_dir/name``) never sees a partial version.  Size limits: one
    version <= ``max_model_bytes``, the whole hub <= ``max_hub_bytes``.
    """
    check_name(name)
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    metrics = card.get("metrics")
    headline = metrics.get("headline") if isinstance(metrics, Mapping) else None
    if missing or not isinstance(headline, Mapping) or "value" not in headline:
        raise HubError(f"cannot publish {name!r}: the card lacks {missing or ['metrics.headline']}"
                       " (every published model records its metrics, commands, data and seed)")
    hub_dir = default_hub_dir(hub_dir).resolve()  # exporters may verify from another cwd
    hub_dir.mkdir(parents=True, exist_ok=True)
    with _hub_locked(hub_dir):  # one publisher at a time: versions and the index stay consistent
        return _publish_locked(model, name, card, hub_dir, version, export_fn, max_model_bytes,
                               max_hub_bytes)


@contextlib.contextmanager
def _hub_locked(hub_dir: Path) -> Iterator[None]:
    """An exclusive lock on the hub folder itself (no lock file left in ``saved_models/``)."""
    fd = os.open(hub_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def _optimizer_state_left_out(model: Any) -> Iterator[None]:
    """While saving the published ``.keras`` file, give ``model`` a fresh, unbuilt copy of its
    optimizer: the file keeps the compile settings (optimizer config, loss) for fine-tuning but
    not the optimizer's moments, which are twice the size of the weights (Adam) and of no use
    to a new training run."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "built", False):
        yield
        return
    model.optimizer = optimizer.__class__.from_config(optimizer.get_config())
    try:
        yield
    finally:
        model.optimizer = optimizer


def _publish_locked(model: Any, name: str, card: Mapping[str, Any], hub_dir: Path,
                    version: str | int | None, export_fn: ExportFn | None,
                    max_model_bytes: int, max_hub_bytes: int) -> Path:
    version = check_version(version if version is not None else str(next_version(Path(hub_dir) / check_name(name))))
    target = hub_dir / name / version
    if target.exists():
        raise FileExistsError(f"{target} already exists; published versions are immutable, "
                              "publish a new version instead")
    for leftover in hub_dir.glob(f"{STAGING_PREFIX}*"):  # a killed publisher's; we hold the lock
        shutil.rmtree(leftover, ignore_errors=True)
    staging_base = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{name}-{version}-", dir=hub_dir))
    try:
        version_dir = (export_fn or keras_export)(model, staging_base, name, version)
        if Path(version_dir) != staging_base / name / version:
            raise HubError(f"export wrote {version_dir}, expected {staging_base / name / version}")
        keras_file = version_dir / KERAS_PATH
        keras_file.parent.mkdir(parents=True, exist_ok=True)
        with _optimizer_state_left_out(model):
            model.save(str(keras_file))
        manifest = {
            "format": MANIFEST_FORMAT,
            "name": name,
            "version": version,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "keras_file": KERAS_PATH,
            "serving": "TF Serving SavedModel: serve with model_base_path=<hub>/" + name,
            **{k: v for k, v in card.items() if k not in ("format", "name", "version", "files")},
            "files": file_table(version_dir),
        }
        atomic_write_json(version_dir / MANIFEST_PATH, manifest).chmod(0o644)  # servable
        size = _tree_bytes(version_dir)
        if size > max_model_bytes:
            raise HubError(f"{name}/{version} is {size / 1e6:.1f} MB; the limit per published "
                           f"model is {max_model_bytes / 1e6:.1f} MB")
        total = _tree_bytes(hub_dir) + size  # staging is hidden, so not counted twice
        if total > max_hub_bytes:
            raise HubError(f"publishing {name}/{version} would make {hub_dir} {total / 1e6:.1f} MB;"
                           f" the limit is {max_hub_bytes / 1e6:.1f} MB")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(version_dir, target)
    finally:
        shutil.rmtree(staging_base, ignore_errors=True)
    rebuild_index(hub_dir)
    verify_version_dir(target, read_manifest(target))
    return target


def headline_from(metrics: Mapping[str, Any], key: str, higher_is_better: bool) -> dict[str, Any]:
    """``{"name", "value", "higher_is_better"}`` for metric ``key`` (dots walk nested dicts)."""
    value: Any = metrics
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise HubError(f"headline metric {key!r} not in the test metrics "
                           f"(have: {', '.join(map(str, metrics))})")
        value = value[part]
    return {"name": key, "value": float(value), "higher_is_better": bool(higher_is_better)}




def evaluate_command(recipe_name: str, name: str, version: str, seed: int,
                     data: str | os.PathLike | None, options: Mapping[str, Any] | None) -> str:
    """The shell line that pulls ``name:version`` and re-computes its test metrics."""
    parts = ["lstm-zoo", "evaluate", recipe_name, "--seed", str(seed)]
    if data is not None:
        parts += ["--data", os.fspath(data)]
    parts += recipe_option_args(options)
    pulled = f'"$(lstm-zoo pull {shlex.quote(name)} --version {version} | tail -n 1)/{KERAS_PATH}"'
    return shlex.join(parts[:3]) + f" --model {pulled} " + shlex.join(parts[3:])


def default_export(recipe: Any, data: Any = None) -> ExportFn:
    """The export issue's :func:`lstm_zoo.serving.savedmodel.export` (the recipe's serving signature,
    warmup requests from ``data``, verified in a TensorFlow-only process) when the recipe has
    a serving contract; Keras' own SavedModel export of the model's call otherwise."""

    def export_with_recipe(model: Any, base_dir: Path, name: str, version: str) -> Path:
        if recipe is None or recipe.serving_contract(model) is None:
            return keras_export(model, base_dir, name, version)
        from lstm_zoo.serving.savedmodel import export

        result = export(model, base_dir, name, int(version), recipe=recipe, data=data,
                        verify=True)
        return Path(result.path)

    return export_with_recipe


def train_command_line(recipe_name: str, args: Any, options: Mapping[str, Any] | None) -> str:
    """The ``lstm-zoo train ... --publish`` line that reproduces a run, from parsed arguments."""
    parts = ["lstm-zoo", "train", recipe_name, "--seed", str(args.seed)]
    for flag, value in (("--data", args.data), ("--epochs", args.epochs),
                        ("--batch-size", args.batch_size), ("--learning-rate", args.learning_rate)):
        if value is not None:
            parts += [flag, str(value)]
    for pair in args.hparam or []:
        parts += ["--hparam", pair]
    parts += recipe_option_args(options)
    if args.out:
        parts += ["--out", str(args.out)]
    parts.append("--publish")
    if args.publish_version is not None:
        parts += ["--publish-version", str(args.publish_version)]
    return shlex.join(parts)


def source_revision() -> dict[str, Any] | None:
    """The git commit of the checkout this package runs from, and its uncommitted files at
    publish time (so a manifest names the code that trained the model); None outside git."""
    import subprocess

    root = SOURCE_ROOT
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True, timeout=30).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no"], check=True, capture_output=True,
                                text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "uncommitted_changes": sorted(
        line[3:] for line in status.splitlines() if line.strip())}


def publish_run(
    recipe: Any,
    result: Any,
    *,
    train_command: str,
    data: str | os.PathLike | None = None,
    options: Mapping[str, Any] | None = None,
    name: str | None = None,
    hub_dir: str | os.PathLike | None = None,
    version: str | int | None = None,
    export_fn: ExportFn | None = None,
) -> Path:
    """Publish a finished :func:`lstm_zoo.training.driver.train` run (``result``) of ``recipe``.

    The manifest records the run's test metrics and the recipe's headline metric, the
    ``train_command`` that produced it, the evaluation command that reproduces the metrics,
    the data source/provenance/licence, the training configuration, seed and versions.
    """
    name = check_name(name or recipe.name)
    hub = default_hub_dir(hub_dir)
    version = check_version(version if version is not None else str(next_version(Path(hub) / check_name(name))))
    record = result.metrics
    card = {
        "model": record.get("model", recipe.default_model),
        "recipe": recipe.name,
        "task": recipe.task,
        "description": recipe.description,
        "metrics": {
            "split": "test",
            "test": record["test"],
            "headline": headline_from(record["test"], recipe.headline_metric,
                                      recipe.headline_higher_is_better),
        },
        "evaluate_command": evaluate_command(recipe.name, name, version, record["seed"], data,
                                             options),
        "train_command": train_command,
        "data": {
            "source": record.get("data"),
            "provenance_and_licence": recipe.data_provenance or "(not stated by the recipe)",
            "info": record.get("data_info", {}),
        },
        "training": {
            "config": record.get("train_config"),
            "hparams": record.get("hparams"),
            "options": dict(options or {}),
            "train_seconds": record.get("train_seconds"),
            **({"ensemble": {**record["ensemble"], "members": record.get("members")}}
               if record.get("ensemble") else {}),
        },
        "seed": record["seed"],
        "versions": record["versions"],
        "source": source_revision(),
    }
    return publish(result.model, name, card, hub_dir=hub, version=version,
                   export_fn=export_fn or default_export(recipe, result.data))


def finished_run_train_command(recipe: Any, run_dir: str | os.PathLike, record: Mapping[str, Any],
                               options: Mapping[str, Any] | None) -> str:
    """The ``lstm-zoo train`` line that reproduces a finished run, rebuilt from its
    ``metrics.json`` record: seed, data, the training settings that differ from the recipe's
    defaults and the model hyperparameters (as ``--hparam``), and the recipe options.  For an
    ensemble run (``lstm-zoo ensemble``): each member's line, then the ensemble line."""
    import dataclasses
    import json

    if record.get("members"):  # an ensemble run: every member's command, then the combination
        members = [finished_run_train_command(recipe, m["run"], m, m.get("options", options))
                   for m in record["members"]]
        combine = ["lstm-zoo", "ensemble", recipe.name, "--runs",
                   *(os.fspath(m["run"]) for m in record["members"]), "--out", os.fspath(run_dir)]
        return " && ".join([*members, shlex.join(combine)])
    parts = ["lstm-zoo", "train", recipe.name, "--seed", str(record["seed"])]
    if record.get("data") not in (None, "embedded default"):
        parts += ["--data", str(record["data"])]
    config = dict(record.get("train_config") or {})
    defaults = dataclasses.asdict(recipe.train_config)
    if "epochs" in config:
        parts += ["--epochs", str(config.pop("epochs"))]
    changed = {k: v for k, v in config.items() if defaults.get(k) != v}
    for key, value in [*sorted(changed.items()), *sorted((record.get("hparams") or {}).items())]:
        parts += ["--hparam", f"{key}={json.dumps(value)}"]
    parts += recipe_option_args(options)
    parts += ["--out", os.fspath(run_dir)]
    return shlex.join(parts)


def publish_finished_run(
    recipe: Any,
    run_dir: str | os.PathLike,
    *,
    options: Mapping[str, Any] | None = None,
    data: str | os.PathLike | None = None,
    name: str | None = None,
    hub_dir: str | os.PathLike | None = None,
    version: str | int | None = None,
) -> Path:
    """Publish the model of a finished ``lstm-zoo train`` run in ``run_dir`` (its
    ``model.keras``, loaded in safe mode, and ``metrics.json``).

    The test metrics are computed again from the saved model on the run's data (same seed and
    recipe options: those recorded in ``metrics.json``; ``options`` only for runs recorded
    before options were), so the manifest holds what evaluation of the published file gives,
    not what the run remembered.  ``data`` names the run's data where it is now (e.g. a path
    relative to the checkout, for the recorded commands) instead of the path in the record.
    The recorded train command is rebuilt from the run's record; training again with it
    trains the same configuration.
    """
    import json
    import types

    from lstm_zoo.training.driver import (
        METRICS_FILE,
        MODEL_FILE,
        load_model,
        resolve_recipe,
    )

    recipe = resolve_recipe(recipe)
    run = Path(run_dir)
    metrics_file, model_file = run / METRICS_FILE, run / MODEL_FILE
    for path in (metrics_file, model_file):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: {run} is not a finished training "
                                    f"run (expected {MODEL_FILE} and {METRICS_FILE})")
    record = json.loads(metrics_file.read_text())
    if record.get("recipe") != recipe.name:
        raise ValueError(f"{run} is a run of recipe {record.get('recipe')!r}, not {recipe.name!r}")
    if data is None:
        data = None if record.get("data") in (None, "embedded default") else record["data"]
    else:
        record = {**record, "data": os.fspath(data)}
        if record.get("members"):  # an ensemble's members were trained on the same data
            record["members"] = [{**m, "data": os.fspath(data)} for m in record["members"]]
    if "options" in record:
        options = record["options"]
    model = load_model(model_file)
    loaded = recipe.load(data, seed=int(record["seed"]), **dict(options or {}))
    record = {**record, "test": recipe.evaluate(model, loaded)}
    result = types.SimpleNamespace(model=model, metrics=record, data=loaded)
    command = (finished_run_train_command(recipe, run, record, options)
               + f"  # then: lstm-zoo publish {recipe.name} --run {shlex.quote(os.fspath(run))}"
               + "".join(f" {shlex.quote(a)}" for a in recipe_option_args(options)))
    return publish_run(recipe, result, train_command=command, data=data, options=options,
                       name=name, hub_dir=hub_dir, version=version)
