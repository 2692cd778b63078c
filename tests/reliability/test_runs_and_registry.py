"""Issue 24 (reliability): the plugin registry, training run directories, model files, and
bad training settings, attacked with clashing plugins, reruns, kills, full disks and typos."""

from __future__ import annotations

import dataclasses
import os
import stat
import types
import warnings

import pytest

from lstm_zoo import registry

# ---------------------------------------------------------------------------------------------
# 24.1: built-in plugins load first and keep their names


@dataclasses.dataclass
class _FakeEntryPoint:
    """An entry point of distribution ``dist`` whose ``load()`` returns ``target``."""

    name: str
    value: str
    dist: types.SimpleNamespace
    target: object
    group: str = registry.PLUGIN_GROUP

    def load(self):
        return self.target


def _recipe_class(module: str):
    """A registrable recipe class called ``clash-recipe``, defined in ``module``."""
    cls = type("ClashRecipe", (), {"name": "clash-recipe", "task": "testing",
                                    "description": f"from {module}", "__module__": module})
    return cls


def _plugin(name: str, dist: str, module: str) -> _FakeEntryPoint:
    cls = _recipe_class(module)

    def register():
        registry.register_recipe(cls)
        registry.register_model("clash-model", task="testing", description=module)(
            lambda: None)

    return _FakeEntryPoint(name, f"{module}:register", types.SimpleNamespace(name=dist),
                           register)


@pytest.fixture
def empty_registry(monkeypatch):
    """A registry with nothing loaded yet, restored afterwards."""
    monkeypatch.setattr(registry, "_models", {})
    monkeypatch.setattr(registry, "_recipes", {})
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(registry, "_attempted_plugins", set())


@pytest.mark.parametrize("third_party_name", ["aab_dup", "zzz_dup"])
def test_builtin_plugin_wins_a_name_clash_whatever_the_entry_point_order(
        empty_registry, monkeypatch, third_party_name):
    """24.1: a third-party plugin registering a built-in's names is refused, with both origins
    named, whether its entry point sorts before (``aab_dup``) or after (``zzz_dup``) it."""
    builtin = _plugin("weather", "lstm_zoo", "lstm_zoo.recipes.fake_weather")
    intruder = _plugin(third_party_name, "AAB.Dup", "aab_dup_module")
    monkeypatch.setattr(registry.importlib.metadata, "entry_points",
                        lambda group: [intruder, builtin] if group == registry.PLUGIN_GROUP
                        else [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry.load_plugins()
    assert registry.recipe_entry("clash-recipe").description == (
        "from lstm_zoo.recipes.fake_weather")
    assert "of lstm-zoo" in registry.recipe_entry("clash-recipe").origin
    assert registry.model_info("clash-model")["description"] == "lstm_zoo.recipes.fake_weather"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert f"plugin {third_party_name!r} of aab-dup" in messages[0]
    assert "lstm_zoo.recipes.fake_weather:ClashRecipe (plugin 'weather' of lstm-zoo)" in messages[0]
    assert f"aab_dup_module:ClashRecipe (plugin {third_party_name!r} of aab-dup)" in messages[0]


# ---------------------------------------------------------------------------------------------
# 24.20: atomic writes honour the umask


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_atomic_writes_get_the_mode_the_umask_gives(tmp_path, umask):
    """24.20: files and folders written atomically got 0600/0700 (``mkstemp``/``mkdtemp``)
    whatever the umask; now they get 0666/0777 minus the umask, like ``open``/``mkdir``."""
    from lstm_zoo.files import atomic_directory, atomic_path, atomic_write_json, current_umask

    assert current_umask() == umask
    written = atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    with atomic_path(tmp_path / "model.keras", suffix=".keras") as tmp:
        tmp.write_bytes(b"PK")
    with atomic_directory(tmp_path / "export") as folder:
        (folder / "saved_model.pb").write_bytes(b"")
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "model.keras").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "export").stat().st_mode) == 0o777 & ~umask


# ---------------------------------------------------------------------------------------------
# 24.16: a file that is not a saved model


@pytest.mark.parametrize("name, expected", [
    ("model.keras", "is not a Keras archive: a .keras model is a zip file"),
    ("run/model.keras", "is not a Keras archive: a .keras model is a zip file"),
    ("model.h5", "is not a Keras HDF5 model"),
    ("zipped.keras", "is a zip file but not a Keras archive"),
    ("model.txt", "is not a Keras model file: expected a .keras archive"),
])
def test_text_file_named_like_a_model_is_not_reported_missing(tmp_path, name, expected):
    """24.16: a text file named ``.keras`` was reported as "File not found" (it exists), one
    named ``.h5`` as "file signature not found"; now the error says it is no Keras model."""
    import zipfile

    from lstm_zoo.errors import ModelFileError
    from lstm_zoo.training.driver import load_model

    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    if name.startswith("zipped"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not a model")
    else:
        path.write_text("just some text\n")
    given = path.parent if name.startswith("run/") else path
    with pytest.raises(ModelFileError, match=expected) as err:
        load_model(given)
    assert str(path) in str(err.value)
    assert "not found" not in str(err.value).lower()


def test_run_folder_without_a_model_is_named(tmp_path):
    """24.16: a folder without model.keras is named as not being a finished run."""
    from lstm_zoo.training.driver import load_model

    with pytest.raises(FileNotFoundError, match="without model.keras: not a finished training"):
        load_model(tmp_path)
