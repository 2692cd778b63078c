"""``lstm-zoo train RECIPE --distributed``: two MultiWorkerMirroredStrategy processes on
127.0.0.1 run a few steps and end with identical weights; bad TF_CONFIG is a clear error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lstm_zoo.training.distributed.config import (
    DistributedConfigError,
    is_chief,
    read_tf_config,
)


@pytest.mark.slow
def test_two_workers_train_a_few_steps_with_identical_weights(procs, tmp_path, helpers):
    from lstm_zoo.training.driver import load_model

    ports = [helpers.free_port(), helpers.free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = tmp_path / "run"
    args = ["train", "tiny-sweep", "--distributed", "--out", str(out), "--epochs", "2",
            "--batch-size", "8", "--seed", "3"]
    for index in (0, 1):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.start(f"worker{index}", args, {"TF_CONFIG": tf_config})
    for index in (0, 1):
        assert procs.wait(f"worker{index}", 240) == 0, procs.log(f"worker{index}")

    metrics = json.loads((out / "metrics.json").read_text())
    dist = metrics["distributed"]
    assert dist["workers"] == 2 and dist["global_batch_size"] == 16
    assert dist["steps_per_epoch"] == 2 and len(metrics["history"]) == 2  # 4 steps in all
    assert np.isfinite(metrics["history"][-1]["loss"]) and "mae" in metrics["test"]

    chief = load_model(out / "model.keras").get_weights()
    other = load_model(out / "worker-1" / "model.keras").get_weights()
    assert len(chief) == len(other) > 0
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    assert "epoch 2/2" in procs.log("worker1")


def test_tf_config_is_checked(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(DistributedConfigError, match="needs the TF_CONFIG"):
        read_tf_config()
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, "task": {"type": '
                                    '"worker", "index": 3}}')
    with pytest.raises(DistributedConfigError, match="index 3 is outside"):
        read_tf_config()
    monkeypatch.setenv("TF_CONFIG", "not json")
    with pytest.raises(DistributedConfigError, match="not valid"):
        read_tf_config()
    assert is_chief({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker",
                                                                    "index": 0}})
    assert not is_chief({"cluster": {"chief": ["c:1"], "worker": ["a:1"]},
                         "task": {"type": "worker", "index": 0}})
