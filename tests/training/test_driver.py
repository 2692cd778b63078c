"""The generic train/evaluate driver on a toy recipe: outputs, resume after a crash, CLI."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest

from lstm_zoo import registry
from lstm_zoo.recipe import Recipe, RecipeData, TrainConfig
from lstm_zoo.training.driver import evaluate, train


class _Crash(RuntimeError):
    pass


class _CrashAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.crash_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.crash_epoch:
            raise _Crash(f"simulated crash at epoch {epoch}")


class ToyRecipe(Recipe):
    """Predict the sum of a short random sequence."""

    name = "toy-driver"
    task = "testing"
    description = "toy"
    default_model = "toy-driver-model"
    train_config = TrainConfig(epochs=2, batch_size=16, patience=10)
    training_only_options = frozenset({"label_noise"})
    crash_at: int | None = None

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=64)
        parser.add_argument("--label-noise", type=float, default=0.0)

    def load(self, data=None, *, seed=0, rows=64, label_noise=0.0, **options):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(rows, 5, 1)).astype("float32")
        y = x.sum(axis=(1, 2))[:, None]
        third = rows // 3
        noisy = y[:third] + label_noise * rng.normal(size=(third, 1)).astype("float32")
        return RecipeData(
            train=(x[:third], noisy),
            val=(x[third : 2 * third], y[third : 2 * third]),
            test=(x[2 * third :], y[2 * third :]),
            info={"rows": rows},
        )

    def build_model(self, data, units: int = 4):
        inputs = keras.Input((5, 1))
        hidden = keras.layers.Dense(units)(keras.layers.Flatten()(inputs))
        outputs = keras.layers.Dense(1)(hidden)
        return keras.Model(inputs, outputs)

    def fit(self, model, data, config, callbacks, verbose="auto"):
        if self.crash_at is not None:
            callbacks = [*callbacks, _CrashAtEpoch(self.crash_at)]
        return super().fit(model, data, config, callbacks, verbose=0)

    def evaluate(self, model, data):
        x, y = data.test
        mae = float(np.abs(model.predict(x, verbose=0) - y).mean())
        return {"mae": mae, "baseline_mae": float(np.abs(y - y.mean()).mean())}


@pytest.fixture
def toy_registered():
    registry.load_plugins()
    registry.register_recipe(ToyRecipe)
    yield
    registry._recipes.pop("toy-driver", None)


def _epochs_logged(out_dir):
    with (out_dir / "history.csv").open() as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def test_train_writes_model_metrics_and_plots(tmp_path):
    result = train(ToyRecipe(), out_dir=tmp_path, epochs=2, verbose=0)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test"]["mae"] == pytest.approx(result.metrics["test"]["mae"])
    assert metrics["train_config"]["epochs"] == 2 and metrics["seed"] == 0
    assert (tmp_path / "model.keras").stat().st_size > 0
    assert (tmp_path / "training_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert _epochs_logged(tmp_path) == [0, 1]
    again = evaluate(ToyRecipe(), tmp_path / "model.keras")
    assert again["test"]["mae"] == pytest.approx(metrics["test"]["mae"], rel=1e-5)


def test_killed_run_resumes_from_last_epoch(tmp_path):
    crashing = ToyRecipe()
    crashing.crash_at = 2
    with pytest.raises(_Crash):
        train(crashing, out_dir=tmp_path, epochs=4, verbose=0)
    assert not (tmp_path / "metrics.json").exists()
    assert _epochs_logged(tmp_path) == [0, 1]
    train(ToyRecipe(), out_dir=tmp_path, epochs=4, verbose=0)
    assert _epochs_logged(tmp_path) == [0, 1, 2, 3]  # resumed at epoch 2, nothing redone


def test_unknown_training_setting_is_clear(tmp_path):
    with pytest.raises(TypeError, match="not_a_setting"):
        train(ToyRecipe(), out_dir=tmp_path, hparams={"not_a_setting": 1}, verbose=0)


def test_cli_train_and_evaluate_with_recipe_option(tmp_path, toy_registered, capsys):
    from lstm_zoo.cli import main

    assert main(["train", "toy-driver", "--out", str(tmp_path), "--epochs", "1", "--rows", "48"]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["data_info"] == {"rows": 48}
    capsys.readouterr()
    assert main(["evaluate", "toy-driver", "--model", str(tmp_path), "--rows", "48"]) == 0
    assert "mae" in json.loads(capsys.readouterr().out)
    with pytest.raises(SystemExit):
        main(["train", "toy-driver", "--no-such-option", "1"])


def test_ema_momentum_trains_with_an_average_of_the_weights(tmp_path):
    """``ema_momentum``: Keras' optimizer keeps a moving average of the weights and swaps it in
    when fit ends, so the saved model holds the average (differs from the last step's)."""
    recipe = ToyRecipe()
    data = recipe.load(rows=96)
    plain_model, ema_model = recipe.build_model(data), recipe.build_model(data)
    ema_model.set_weights(plain_model.get_weights())
    recipe.compile(plain_model, TrainConfig(learning_rate=0.05))
    recipe.compile(ema_model, TrainConfig(learning_rate=0.05, ema_momentum=0.9))
    assert ema_model.optimizer.use_ema and ema_model.optimizer.ema_momentum == 0.9
    assert not plain_model.optimizer.use_ema
    for model in (plain_model, ema_model):
        keras.utils.set_random_seed(0)
        model.fit(*data.train, epochs=3, batch_size=8, shuffle=False, verbose=0)
    averages = [v for v in ema_model.optimizer.variables if "average" in v.path]
    assert averages  # one moving average per trainable weight
    # same data, seed and steps: only the final swap-in of the average makes them differ
    assert not np.allclose(plain_model.get_weights()[0], ema_model.get_weights()[0])
    result = train(recipe, out_dir=tmp_path / "run", hparams={"ema_momentum": 0.9})
    assert result.metrics["train_config"]["ema_momentum"] == 0.9


class _BatchCounter(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.per_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.per_epoch[-1] += 1


def test_steps_per_epoch_gives_every_epoch_that_many_batches():
    """21 training rows in batches of 16 are 2 batches a pass; with steps_per_epoch=3 Keras
    alone ran 3, 1, 3 batches (the iterator ran out mid-epoch); the recipe repeats its data."""
    recipe = ToyRecipe()
    data = recipe.load(rows=64)
    model = recipe.build_model(data)
    config = recipe.train_config.replace(epochs=3, steps_per_epoch=3)
    recipe.compile(model, config)
    counter = _BatchCounter()
    recipe.fit(model, data, config, [counter])
    assert counter.per_epoch == [3, 3, 3]


def test_ensemble_of_runs_evaluates_records_and_rebuilds_its_commands(tmp_path, toy_registered):
    from lstm_zoo.cli import main
    from lstm_zoo.hub.publish import finished_run_train_command
    from lstm_zoo.training.driver import load_model
    from lstm_zoo.training.ensembling import ensemble_runs

    runs = [tmp_path / f"seed{seed}" for seed in (0, 1)]
    for seed, run in zip((0, 1), runs):
        train(ToyRecipe(), out_dir=run, seed=seed, epochs=2, verbose=0, rows=64)
    out = tmp_path / "ensemble"
    result = ensemble_runs("toy-driver", runs, out_dir=out)
    record = json.loads((out / "metrics.json").read_text())
    assert record["ensemble"] == {"combine": "mean", "size": 2}
    assert [m["seed"] for m in record["members"]] == [0, 1]
    model = load_model(out)  # safe mode
    x, y = ToyRecipe().load(rows=64).test
    members = [load_model(run) for run in runs]
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)
    assert record["test"]["mae"] == pytest.approx(float(np.abs(expected - y).mean()), rel=1e-4)
    assert result.metrics == record
    command = finished_run_train_command(ToyRecipe(), out, record, {"rows": 64})
    assert command.count("lstm-zoo train toy-driver") == 2 and "--seed 1" in command
    assert command.endswith(f"lstm-zoo ensemble toy-driver --runs {runs[0]} {runs[1]} --out {out}")

    train(ToyRecipe(), out_dir=tmp_path / "other", seed=2, epochs=1, verbose=0, rows=32)
    with pytest.raises(ValueError, match="differ in options"):
        ensemble_runs("toy-driver", [runs[0], tmp_path / "other"], out_dir=tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="not a finished training run"):
        ensemble_runs("toy-driver", [runs[0], tmp_path / "missing"], out_dir=tmp_path / "bad")
    # members may differ in training-only options; each keeps its own in the rebuilt commands
    train(ToyRecipe(), out_dir=tmp_path / "noisy", seed=3, epochs=1, verbose=0, rows=64,
          label_noise=0.5)
    mixed = ensemble_runs("toy-driver", [runs[0], tmp_path / "noisy"], out_dir=tmp_path / "mixed")
    assert [m["options"].get("label_noise") for m in mixed.metrics["members"]] == [None, 0.5]
    lines = finished_run_train_command(ToyRecipe(), tmp_path / "mixed", mixed.metrics,
                                       mixed.metrics["options"]).split(" && ")
    assert "--label-noise" not in lines[0] and "--label-noise 0.5" in lines[1]
    assert main(["ensemble", "toy-driver", "--runs", str(runs[0]), str(runs[1]),
                 "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "model.keras").is_file()
