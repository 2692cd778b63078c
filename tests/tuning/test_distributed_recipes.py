"""``lstm-zoo train RECIPE --distributed`` beyond single-loss arrays, two processes on
127.0.0.1: a two-output recipe with loss weights and sample weights (two workers end with
identical weights, equal to one worker trained on the global batch), and translation, a
``tf.data`` recipe with a token-averaged loss (identical weights on both workers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent / "tiny_distributed_recipe.py"


def _start(procs, helpers, workers: int, args: list[str], name: str) -> list[str]:
    ports = [helpers.free_port() for _ in range(workers)]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    for index in range(workers):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.start(f"{name}{index}", args, {"TF_CONFIG": tf_config}, script=SCRIPT)
    return [f"{name}{index}" for index in range(workers)]


def _wait(procs, names: list[str]) -> None:
    for name in names:
        assert procs.wait(name, 240) == 0, procs.log(name)


def _weights(path: Path) -> list[np.ndarray]:
    from lstm_zoo.training.driver import load_model

    return load_model(path).get_weights()


@pytest.mark.slow
def test_two_outputs_and_sample_weights_match_one_worker_on_the_global_batch(procs, tmp_path,
                                                                             helpers):
    common = ["train", "tiny-multi", "--distributed", "--epochs", "2", "--seed", "5"]
    _wait(procs, _start(procs, helpers, 2, [*common, "--out", str(tmp_path / "two"),
                                            "--batch-size", "8"], "two")
          + _start(procs, helpers, 1, [*common, "--out", str(tmp_path / "one"),
                                       "--batch-size", "16"], "one"))

    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    dist = metrics["distributed"]
    assert dist["workers"] == 2 and dist["global_batch_size"] == 16
    assert dist["input"] == "in-memory arrays with sample weights"
    assert dist["steps_per_epoch"] == 2 and len(metrics["history"]) == 2
    assert np.isfinite(metrics["history"][-1]["loss"]) and "mae_total" in metrics["test"]

    chief = _weights(tmp_path / "two" / "model.keras")
    other = _weights(tmp_path / "two" / "worker-1" / "model.keras")
    single = _weights(tmp_path / "one" / "model.keras")
    assert len(chief) == len(other) == len(single) == 6
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    # the same examples per step (DATA sharding splits each global batch), so two workers'
    # summed gradients — clipped after the sum (TrainConfig clipnorm=1) — equal one worker's
    # on the global batch, up to float rounding
    for a, b in zip(chief, single):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    one_history = json.loads((tmp_path / "one" / "metrics.json").read_text())["history"]
    for two_epoch, one_epoch in zip(metrics["history"], one_history):
        assert two_epoch["loss"] == pytest.approx(one_epoch["loss"], rel=1e-4)
        assert two_epoch["val_loss"] == pytest.approx(one_epoch["val_loss"], rel=1e-4)
    assert metrics["history"][1]["loss"] < metrics["history"][0]["loss"]  # it trained


@pytest.mark.slow
def test_translation_tf_data_recipe_trains_on_two_workers(procs, tmp_path, helpers):
    out = tmp_path / "translation"
    names = _start(procs, helpers, 2, ["train", "translation", "--distributed", "--out", str(out),
                             "--epochs", "2", "--batch-size", "8", "--limit", "48",
                             "--eval-limit", "6", "--beam-size", "1", "--val-bleu-sentences",
                             "0", "--hparam", "steps_per_epoch=2", "--hparam", "units=16",
                             "--hparam", "embedding_dim=8", "--hparam", "attention_units=16"],
         "worker")
    _wait(procs, names)
    metrics = json.loads((out / "metrics.json").read_text())
    dist = metrics["distributed"]
    assert dist["input"] == "recipe tf.data pipeline" and dist["steps_per_epoch"] == 2
    history = metrics["history"]
    assert len(history) == 2 and all(np.isfinite(h["loss"]) and np.isfinite(h["val_loss"])
                                     for h in history)
    assert "bleu_greedy" in metrics["test"]
    chief, other = _weights(out / "model.keras"), _weights(out / "worker-1" / "model.keras")
    assert len(chief) == len(other) > 10
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
