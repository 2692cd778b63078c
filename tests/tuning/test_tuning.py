"""Local sweeps: table + plot, resume after an interruption, seeds, bad input."""

from __future__ import annotations

import csv
import json

import keras_tuner as kt
import pytest

from lstm_zoo import cli
from lstm_zoo.tuning.oracle import make_oracle
from lstm_zoo.tuning.results import read_trials
from lstm_zoo.tuning.hypermodel import check_search_space
from lstm_zoo.tuning.sweep import tune


def test_sweep_interrupted_after_one_trial_resumes_without_redoing_it(
    tiny_registered, tiny_module, tmp_path, capsys
):
    recipe = tiny_registered
    directory = tmp_path / "sweep"
    recipe.interrupt_on_fit_call = 2  # Ctrl-C while the second trial starts training
    with pytest.raises(tiny_module.Interrupted):
        tune(recipe, "random", max_trials=3, epochs=2, directory=directory, seed=7, verbose=0)
    first = json.loads((directory / "results.json").read_text())  # written after trial 0
    assert [r["status"] for r in first["rows"]] == ["COMPLETED"]
    rows = read_trials(directory / "tiny-sweep")
    assert [r["status"] for r in rows] == ["COMPLETED", "RUNNING"]
    done = first["rows"][0]

    recipe.fit_calls, recipe.interrupt_on_fit_call = 0, None
    code = cli.main(["tune", "tiny-sweep", "--max-trials", "3", "--epochs", "2",
                     "--directory", str(directory), "--seed", "7", "--quiet"])
    assert code == 0
    assert recipe.fit_calls == 2  # the interrupted trial and the last one, not trial 0 again
    out = capsys.readouterr().out
    assert "[sweep] trial" in out and "best trial" in out  # progress is printed as it runs

    record = json.loads((directory / "results.json").read_text())
    assert record["finished"] and record["status_counts"] == {"COMPLETED": 3}
    rows = record["rows"]
    assert [r["trial_id"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["hyperparameters"] == done["hyperparameters"]
    assert rows[0]["ended"] == done["ended"]  # not rerun
    for row in rows:
        assert row["worker"] == "tuner0" and row["duration_s"] > 0
        assert set(row["hyperparameters"]) == {"units", "learning_rate", "batch_size"}
        assert row["metrics"]["val_loss"] == pytest.approx(row["score"])
    assert record["best"]["score"] == min(r["score"] for r in rows)
    assert record["best"]["recipe_hparams"] == record["best"]["hyperparameters"]
    assert "retrain it: lstm-zoo train tiny-sweep --hparam units=" in out

    with (directory / "results.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 3 and {"trial_id", "status", "duration_s", "hp:units",
                                "metric:val_loss"} <= set(table[0])
    assert (directory / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = json.loads((directory / "best" / "metrics.json").read_text())
    assert best["trial_id"] == record["best"]["trial_id"] and "mae" in best["test"]
    assert (directory / "best" / "model.keras").stat().st_size > 0


def _draw(tuner: str, seed: int, recipe, directory, trials: int = 4) -> list[dict]:
    oracle = make_oracle(tuner, objective=kt.Objective("val_loss", "min"), max_trials=trials,
                         epochs=2, seed=seed)
    oracle._set_project_dir(str(directory), f"{tuner}-{seed}")
    hp = kt.HyperParameters()
    recipe.search_space(hp)
    oracle.update_space(hp)
    drawn = []
    for i in range(trials):
        trial = oracle.create_trial("tuner0")
        drawn.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"val_loss": float(i % 3)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return drawn


@pytest.mark.parametrize("tuner", ["random", "bayesian"])
def test_same_seed_draws_same_hyperparameters(tiny_module, tmp_path, tuner):
    recipe = tiny_module.TinyRecipe()
    first = _draw(tuner, 3, recipe, tmp_path / "a")
    assert first == _draw(tuner, 3, recipe, tmp_path / "b")
    assert first != _draw(tuner, 4, recipe, tmp_path / "c")
    assert len({json.dumps(v, sort_keys=True) for v in first}) == len(first)


def test_unknown_tuner_is_a_clear_error(tiny_module, tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown tuner 'grid'; choose one of random"):
        tune(tiny_module.TinyRecipe(), "grid", directory=tmp_path)
    assert cli.main(["tune", "weather", "--tuner", "grid"]) == 1
    assert "lstm-zoo tune: error: unknown tuner 'grid'" in capsys.readouterr().err


def test_empty_search_space_is_a_clear_error(tiny_module, tmp_path):
    recipe = tiny_module.TinyRecipe()
    recipe.space = "empty"
    with pytest.raises(ValueError, match="tiny-sweep' has an empty search space"):
        tune(recipe, "random", directory=tmp_path)
    assert not (tmp_path / "tiny-sweep").exists()


def test_bad_sweep_arguments(tiny_module, tmp_path):
    recipe = tiny_module.TinyRecipe()
    with pytest.raises(ValueError, match="max_trials must be a positive integer"):
        tune(recipe, max_trials=0, directory=tmp_path)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        tune(recipe, seed=-1, directory=tmp_path)
    with pytest.raises(ValueError, match="unknown role 'boss'"):
        tune(recipe, role="boss", directory=tmp_path)


def test_search_space_of_the_default_protocol_is_usable(tiny_module):
    values = check_search_space(tiny_module.TinyRecipe())
    assert values == {"units": 2, "learning_rate": 1e-3, "batch_size": 8}  # hp defaults


def test_retrain_values_are_what_search_space_returns(tiny_module, tmp_path):
    """Derived keys (weather's proj_units from a 'projection' switch) are retrained as such."""
    from lstm_zoo.tuning.hypermodel import recipe_hparams

    class Derived(tiny_module.TinyRecipe):
        def search_space(self, hp):
            units = hp.Int("units", 2, 8, step=2)
            return {"units": units, "proj_units": units // 2 if hp.Boolean("projection") else None}

    recipe = Derived()
    drawn = _draw("random", 2, recipe, tmp_path, trials=2)
    for trial_id, raw in zip(("0", "1"), drawn):
        values = recipe_hparams(recipe, tmp_path / "random-2", trial_id)
        assert set(values) == {"units", "proj_units"} and values["units"] == raw["units"]
        assert values["proj_units"] == (raw["units"] // 2 if raw["projection"] else None)
