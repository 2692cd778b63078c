"""The models published in this repository's ``saved_models/``: each pulls and verifies offline,
fits the size limits, is a TF Serving version directory, and reproduces its manifest metric."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_zoo.hub import pretrained as hub
from lstm_zoo.hub.manifest import INDEX_FILE, KERAS_PATH
from lstm_zoo.hub.publish import MAX_HUB_BYTES, MAX_MODEL_BYTES

REPO_HUB = Path(__file__).resolve().parents[2] / "saved_models"


def _published() -> list[tuple[str, str]]:
    if not (REPO_HUB / INDEX_FILE).is_file():
        return []
    index = json.loads((REPO_HUB / INDEX_FILE).read_text())
    return [(name, version) for name, entry in index["models"].items()
            for version in entry["versions"]]


PUBLISHED = _published()
pytestmark = pytest.mark.skipif(not PUBLISHED, reason="nothing published in saved_models/ yet")


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(("name", "version"), PUBLISHED)
def test_published_model_pulls_verified_and_fits_the_limits(name, version, monkeypatch):
    monkeypatch.delenv("LSTM_ZOO_HUB", raising=False)
    path = hub.pull(name, version, offline=True)  # the default source: the repo's saved_models
    assert path == REPO_HUB / name / version
    assert (path / "saved_model.pb").is_file() and (path / KERAS_PATH).is_file()
    assert _size(path) <= MAX_MODEL_BYTES
    manifest = hub.read_manifest(path)
    for key in ("evaluate_command", "train_command", "data", "seed", "versions"):
        assert manifest[key] not in (None, "", {}), key


@pytest.mark.parametrize(("name", "version"), PUBLISHED)
def test_published_savedmodel_serves_the_recorded_signature(name, version):
    """TF Serving's view: the version directory loads as a SavedModel whose serving_default
    signature has the inputs and outputs its export manifest records."""
    import tensorflow as tf

    path = REPO_HUB / name / version
    recorded = json.loads((path / "assets.extra" / "lstm_zoo.json").read_text())["signature"]
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    assert set(signature.structured_input_signature[1]) == set(recorded["inputs"])
    assert set(signature.structured_outputs) == set(recorded["outputs"])


def test_saved_models_fits_the_total_limit():
    assert _size(REPO_HUB) <= MAX_HUB_BYTES


def test_cli_pull_on_this_checkout_prints_a_verified_path():
    name = PUBLISHED[0][0]
    env = {k: v for k, v in __import__("os").environ.items() if k != "LSTM_ZOO_HUB"}
    result = subprocess.run([sys.executable, "-m", "lstm_zoo", "pull", name, "--offline"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert Path(last).is_dir() and Path(last).parent == REPO_HUB / name


def _data_argument(manifest: dict, request) -> str | None:
    """The ``--data`` the model was trained with, relocated onto the shared data folder (the
    ``shared_data`` fixture skips when it is absent); None for the recipe's embedded data."""
    source = manifest["data"]["source"]
    if source in (None, "embedded default"):
        return None
    marker = "shared/data/"
    if marker not in source:
        pytest.skip(f"training data {source} is not in the shared data folder")
    return str(request.getfixturevalue("shared_data") / source.split(marker, 1)[1])


@pytest.mark.slow
@pytest.mark.parametrize(("name", "version"), PUBLISHED)
def test_published_model_reproduces_its_manifest_metric(name, version, request):
    """Evaluate the pulled .keras file exactly as the manifest's evaluate_command does."""
    from lstm_zoo.training.driver import evaluate

    path = hub.pull(name, version, hub=REPO_HUB)
    manifest = hub.read_manifest(path)
    headline = manifest["metrics"]["headline"]
    record = evaluate(manifest["recipe"], path / KERAS_PATH,
                      _data_argument(manifest, request), seed=manifest["seed"], plots=False,
                      **manifest["training"]["options"])
    value = record["test"]
    for part in headline["name"].split("."):
        value = value[part]
    assert value == pytest.approx(headline["value"], rel=1e-4, abs=1e-6)


def test_every_published_model_loads_in_a_fresh_process():
    """``load_pretrained`` in a new interpreter: recipe-defined layers must be found without
    the caller having touched the registry first (they register when plugins load)."""
    names = sorted({name for name, _ in PUBLISHED})
    script = (
        "import sys, lstm_zoo\n"
        "for name in sys.argv[1:]:\n"
        "    model = lstm_zoo.load_pretrained(name, offline=True)\n"
        "    print(name, model.count_params())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *names], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = [line.split()[0] for line in result.stdout.splitlines()]
    assert loaded == names


@pytest.mark.skipif("translation" not in {name for name, _ in PUBLISHED},
                    reason="no translation model published")
def test_pretrained_translation_translates_an_english_sentence():
    """The issue's bar: ``load_pretrained("translation")`` turns English into German text."""
    from lstm_zoo.recipes.translation import translate

    import lstm_zoo

    model = lstm_zoo.load_pretrained("translation", offline=True)
    german = translate(model, ["A man is riding a bike.", "Two dogs play in the snow."],
                       beam_size=5)
    assert len(german) == 2 and all(isinstance(s, str) and s for s in german)
    words = " ".join(german).lower().split()
    assert {"mann", "hunde"} & {w.strip(".,") for w in words}, german
