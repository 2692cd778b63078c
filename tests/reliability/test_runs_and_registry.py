"""Issue 24 (reliability): the plugin registry, training run directories, model files, and
bad training settings, attacked with clashing plugins, reruns, kills, full disks and typos."""

from __future__ import annotations

import csv
import dataclasses
import errno
import json
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
    from lstm_zoo.files import (
        atomic_directory,
        atomic_path,
        atomic_write_json,
        current_umask,
    )

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


# ---------------------------------------------------------------------------------------------
# a toy recipe for the training items: a few rows, a Dense model, seconds per run


class _Killed(RuntimeError):
    pass


def _toy_recipe_class():
    import keras
    import numpy as np

    from lstm_zoo.recipe import Recipe, RecipeData, TrainConfig

    class KillAt(keras.callbacks.Callback):
        def __init__(self, epoch):
            super().__init__()
            self.kill_epoch = epoch

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == self.kill_epoch:
                raise _Killed(f"killed at epoch {epoch}")

    class ToyRecipe(Recipe):
        """Predict the sum of a short random sequence."""

        name = "toy-reliability"
        task = "testing"
        description = "toy"
        default_model = "toy-reliability-model"  # not registered: build_model is its own
        train_config = TrainConfig(epochs=2, batch_size=16, patience=10)
        kill_at: int | None = None
        loads = 0

        def load(self, data=None, *, seed=0, rows=48):
            type(self).loads += 1
            rng = np.random.default_rng(seed)
            x = rng.normal(size=(rows, 5, 1)).astype("float32")
            y = x.sum(axis=(1, 2))[:, None]
            third = rows // 3
            return RecipeData(train=(x[:third], y[:third]),
                              val=(x[third:2 * third], y[third:2 * third]),
                              test=(x[2 * third:], y[2 * third:]), info={"rows": rows})

        def build_model(self, data, units: int = 4):
            inputs = keras.Input((5, 1))
            hidden = keras.layers.Dense(units)(keras.layers.Flatten()(inputs))
            return keras.Model(inputs, keras.layers.Dense(1)(hidden))

        def fit(self, model, data, config, callbacks, verbose="auto"):
            if self.kill_at is not None:
                callbacks = [*callbacks, KillAt(self.kill_at)]
            return super().fit(model, data, config, callbacks, verbose=0)

        def evaluate(self, model, data):
            x, y = data.test
            return {"mae": float(np.abs(model.predict(x, verbose=0) - y).mean())}

    return ToyRecipe


@pytest.fixture
def toy():
    """A fresh toy recipe class (its ``loads`` counter at 0)."""
    return _toy_recipe_class()


@pytest.fixture
def toy_registered(toy):
    registry.load_plugins()
    registry.register_recipe(toy)
    yield toy
    registry._recipes.pop(toy.name, None)


# ---------------------------------------------------------------------------------------------
# 24.18: a hyperparameter of the wrong type


@pytest.mark.parametrize("hparams, expected", [
    ({"units": "abc"}, ("hyperparameter 'units' of model 'toy-reliability-model' must be an "
                        "integer, got 'abc'")),
    ({"learning_rate": "fast"}, "training setting 'learning_rate' must be a number, got 'fast'"),
    ({"epochs": 1.5}, "training setting 'epochs' must be an integer, got 1.5"),
])
def test_hparam_of_the_wrong_type_is_named_with_its_type(tmp_path, toy, hparams, expected):
    """24.18: ``--hparam units=abc`` failed deep in the model with "invalid literal for int()
    with base 10"; now the hyperparameter and the expected type are named, before any data is
    loaded or anything written."""
    from lstm_zoo.errors import ConfigError
    from lstm_zoo.training.driver import train

    with pytest.raises(ConfigError, match=expected):
        train(toy(), out_dir=tmp_path / "run", hparams=hparams, verbose=0)
    assert toy.loads == 0 and not (tmp_path / "run").exists()


def test_cli_hparam_of_the_wrong_type(tmp_path, capsys):
    """24.18: the CLI names the hyperparameter of a built-in recipe's registered model."""
    from lstm_zoo.cli import main

    assert main(["train", "weather", "--hparam", "units=abc", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "hyperparameter 'units' of model 'weather-lstm' must be an integer, got 'abc'" in err
    assert "invalid literal" not in err


# ---------------------------------------------------------------------------------------------
# 24.3: a run directory is always one consistent run


def _epochs(out_dir):
    with (out_dir / "history.csv").open() as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def _seed_of(out_dir):
    return json.loads((out_dir / "metrics.json").read_text())["seed"]


def _train(recipe, out_dir, **kwargs):
    from lstm_zoo.training.driver import train

    kwargs.setdefault("epochs", 2)
    return train(recipe, out_dir=out_dir, verbose=0, plots=kwargs.pop("plots", False), **kwargs)


def test_finished_run_is_refused_unless_overwrite_which_replaces_it_whole(tmp_path, toy):
    """24.3: rerunning a finished run into the same --out appended epochs 0, 1 to its
    history (0-9 then 0, 1); now it is refused, and ``overwrite`` replaces the run whole."""
    from lstm_zoo.errors import OutputError

    out = tmp_path / "run"
    _train(toy(), out, plots=True)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OutputError, match=r"holds a finished run .* pass --overwrite"):
        _train(toy(), out, seed=1)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    _train(toy(), out, seed=1, epochs=3, overwrite=True)
    assert _seed_of(out) == 1 and _epochs(out) == [0, 1, 2]
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "metrics.json",
                                                      "model.keras", "run.json"]  # no old plots
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging or old folder left
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["config"]["seed"] == 1


def test_kill_while_finishing_never_mixes_two_runs(tmp_path, toy, monkeypatch):
    """24.3: killing an overwriting rerun right after model.keras was replaced left seed 1's
    model beside seed 0's metrics.json and plots; now the artefacts are switched in together,
    so the folder holds one run (here the interrupted seed-1 run), and started again it
    finishes without logging an epoch twice."""
    from lstm_zoo.training import driver

    out = tmp_path / "run"
    _train(toy(), out)
    real_write = driver.atomic_write_json

    def killed_after_the_model(path, obj):
        assert (path.parent / "model.keras").exists()  # the new model is already written
        raise _Killed("killed while writing metrics.json")

    monkeypatch.setattr(driver, "atomic_write_json", killed_after_the_model)
    with pytest.raises(_Killed):
        _train(toy(), out, seed=1, overwrite=True)
    assert not (out / "model.keras").exists() and not (out / "metrics.json").exists()
    assert json.loads((out / "run.json").read_text())["config"]["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    monkeypatch.setattr(driver, "atomic_write_json", real_write)
    _train(toy(), out, seed=1)
    assert _seed_of(out) == 1 and _epochs(out) == [0, 1]


def test_interrupted_run_resumes_only_with_the_same_configuration(tmp_path, toy):
    """24.3: an interrupted run continues from its last epoch with the same settings (also
    with ``resume=True``); with different settings it is refused, naming what differs;
    ``resume=False`` starts over."""
    from lstm_zoo.errors import OutputError

    out = tmp_path / "run"
    killed = toy()
    killed.kill_at = 2
    with pytest.raises(_Killed):
        _train(killed, out, epochs=4)
    assert _epochs(out) == [0, 1]
    with pytest.raises(OutputError, match=r"differs in seed 0 -> 1, train_config.epochs 4 -> 5"):
        _train(toy(), out, epochs=5, seed=1)
    with pytest.raises(OutputError, match=r"hparams.units None -> 8"):
        _train(toy(), out, epochs=4, hparams={"units": 8})
    assert _epochs(out) == [0, 1]  # the refusals changed nothing
    _train(toy(), out, epochs=4, resume=True)
    assert _epochs(out) == [0, 1, 2, 3]  # resumed at epoch 2

    with pytest.raises(_Killed):
        _train(killed, tmp_path / "again", epochs=4)
    _train(toy(), tmp_path / "again", epochs=3, seed=1, resume=False)
    assert _seed_of(tmp_path / "again") == 1 and _epochs(tmp_path / "again") == [0, 1, 2]


def test_resume_insists_on_an_interrupted_run(tmp_path, toy):
    """24.3: ``resume=True`` with nothing to continue, or together with ``overwrite``, is
    refused rather than silently training from scratch."""
    from lstm_zoo.errors import ConfigError, OutputError

    with pytest.raises(OutputError, match="holds no interrupted run to continue"):
        _train(toy(), tmp_path / "new", resume=True)
    with pytest.raises(ConfigError, match="give one"):
        _train(toy(), tmp_path / "new", resume=True, overwrite=True)
    assert toy.loads == 0


def test_history_row_written_before_its_backup_is_not_logged_twice(tmp_path, toy):
    """24.3: the CSV row of an epoch is written before that epoch's backup, so a kill between
    the two logged the epoch twice on resume; the history is cut back to the backup."""
    out = tmp_path / "run"
    killed = toy()
    killed.kill_at = 2
    with pytest.raises(_Killed):
        _train(killed, out, epochs=4)
    with (out / "history.csv").open("a") as handle:  # epoch 2 logged, its backup never made
        handle.write("2,0.5,0.001,0.5\n")
    _train(toy(), out, epochs=4)
    assert _epochs(out) == [0, 1, 2, 3]


@pytest.mark.parametrize("content", ["notes.txt", "folder"])
def test_folder_of_other_files_is_not_taken_over(tmp_path, toy, content):
    """24.3: a run owns its folder (it is replaced as a whole), so --out holding other files
    is refused instead of losing them."""
    from lstm_zoo.errors import OutputError

    out = tmp_path / "mine"
    (out / content).mkdir(parents=True) if content == "folder" else None
    if content == "notes.txt":
        out.mkdir()
        (out / content).write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match=f"not an lstm_zoo training run .e.g. {content}"):
            _train(toy(), out, overwrite=overwrite)
    assert (out / content).exists()


def test_current_folder_is_refused(tmp_path, toy, monkeypatch):
    """24.3: --out . would be renamed away under the working folder."""
    from lstm_zoo.errors import OutputError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="current folder"):
        _train(toy(), ".")


def test_cli_refuses_a_finished_run_and_overwrites_on_request(tmp_path, toy_registered, capsys):
    """24.3: the same through ``lstm-zoo train``: --overwrite replaces, --resume insists."""
    from lstm_zoo.cli import main

    out = str(tmp_path / "run")
    base = ["train", "toy-reliability", "--out", out, "--epochs", "1"]
    assert main(base) == 0
    assert main([*base, "--seed", "1"]) == 1
    assert "holds a finished run" in capsys.readouterr().err
    assert main([*base, "--seed", "1", "--overwrite"]) == 0
    assert _seed_of(tmp_path / "run") == 1
    assert main([*base, "--resume"]) == 1
    assert "finished run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--resume", "--no-resume"])


# ---------------------------------------------------------------------------------------------
# 24.6: non-positive epochs


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"epochs": -1}, {"hparams": {"epochs": 0}},
                                    {"hparams": {"batch_size": 0}}])
def test_non_positive_epochs_are_refused(tmp_path, toy, kwargs):
    """24.6: ``epochs=0``/``-1`` trained nothing and saved an untrained model recording
    ``"epochs": -1``; now refused before anything is loaded or written."""
    from lstm_zoo.errors import ConfigError
    from lstm_zoo.training.driver import train

    with pytest.raises(ConfigError, match="must be a positive integer"):
        train(toy(), out_dir=tmp_path / "run", verbose=0, **kwargs)
    assert toy.loads == 0 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag, value", [("--epochs", "0"), ("--epochs", "-1"),
                                         ("--batch-size", "0")])
def test_cli_non_positive_epochs_are_refused(tmp_path, toy_registered, capsys, flag, value):
    """24.6: ``lstm-zoo train --epochs 0`` exited 0; now it is a usage error (exit 2)."""
    from lstm_zoo.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "toy-reliability", "--out", str(tmp_path / "run"), flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}: must be a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# 24.19: --out that is a file, a full disk


@pytest.mark.parametrize("out", ["file", "file/run"])
def test_out_that_is_a_file_is_named(tmp_path, toy, out):
    """24.19: --out naming a file (or a path below one) raised a bare FileExistsError."""
    from lstm_zoo.errors import OutputError

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputError, match=r"--out .*file.* not a folder: give the path of a"):
        _train(toy(), tmp_path / out)
    assert (tmp_path / "file").read_text() == "not a folder"


def test_full_disk_names_the_file_and_what_to_do(tmp_path, toy, monkeypatch):
    """24.19: a full disk surfaced as ``OSError: [Errno 28]`` naming no file; now the file
    being written is named (as the user will see it, not the staging folder) with what to do,
    and the folder is left a resumable run."""
    import keras

    from lstm_zoo.errors import OutputError

    def disk_full(self, filepath, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    out = tmp_path / "run"
    monkeypatch.setattr(keras.Model, "save", disk_full)
    with pytest.raises(OutputError) as err:
        _train(toy(), out)
    message = str(err.value)
    assert f"cannot write {out / 'model.keras'}: No space left on device" in message
    assert "free space on that disk or choose an --out on another disk" in message
    assert isinstance(err.value, OSError) and not (out / "model.keras").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    monkeypatch.undo()
    _train(toy(), out)
    assert _epochs(out) == [0, 1]


# ---------------------------------------------------------------------------------------------
# 24.20, end to end: a training run's artefacts


def test_run_artefacts_honour_the_umask(tmp_path, toy):
    """24.20: model.keras, metrics.json and the plots were written 0600 under umask 022."""
    old = os.umask(0o022)
    try:
        _train(toy(), tmp_path / "run", plots=True)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "run").iterdir()}
    assert modes == {"model.keras": 0o644, "metrics.json": 0o644, "history.csv": 0o644,
                     "run.json": 0o644, "training_curves.png": 0o644}
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755
