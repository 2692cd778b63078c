"""The chief-side oracle: trials of silent workers are re-queued, then failed; late reports
about ended trials are ignored; bookkeeping survives a reload.  A fake clock, no training."""

from __future__ import annotations

import keras_tuner as kt

from lstm_zoo.tuning.oracle import make_oracle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _oracle(tiny_module, directory, clock, max_trials=3, max_requeues=1):
    oracle = make_oracle("random", objective=kt.Objective("val_loss", "min"),
                         max_trials=max_trials, epochs=2, seed=1, worker_timeout=10,
                         max_requeues=max_requeues)
    oracle.clock = clock
    oracle._set_project_dir(str(directory), "p")
    hp = kt.HyperParameters()
    tiny_module.TinyRecipe().search_space(hp)
    oracle.update_space(hp)
    return oracle


def _complete(oracle, trial, value=1.0):
    oracle.update_trial(trial.trial_id, {"val_loss": value})
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def test_silent_worker_trial_is_requeued_then_failed(tiny_module, tmp_path):
    clock = Clock()
    oracle = _oracle(tiny_module, tmp_path, clock)
    lost = oracle.create_trial("w1")
    assert oracle.ran_by[lost.trial_id] == "w1"

    clock.now += 5
    oracle.get_trial(lost.trial_id)  # a heartbeat keeps it alive
    clock.now += 8
    assert oracle.reap_stale_trials() == []

    clock.now += 11  # silent for 11 s > worker_timeout
    assert oracle.reap_stale_trials() == [lost.trial_id]
    assert "w1" not in oracle.ongoing_trials and "w1" not in oracle.tuner_ids
    assert oracle.requeues[lost.trial_id] == 1

    again = oracle.create_trial("w0")  # another worker takes the same trial over
    assert again.trial_id == lost.trial_id
    assert again.hyperparameters.values == lost.hyperparameters.values
    assert oracle.ran_by[lost.trial_id] == "w0"

    clock.now += 20  # w0 dies too: the second re-queue exceeds max_requeues=1 -> FAILED
    assert oracle.reap_stale_trials() == [lost.trial_id]
    assert oracle.trials[lost.trial_id].status == "FAILED"
    assert "silent" in oracle.trials[lost.trial_id].message
    assert lost.trial_id in oracle.end_order and not oracle._retry_queue


def test_late_report_of_an_ended_trial_is_ignored(tiny_module, tmp_path):
    clock = Clock()
    oracle = _oracle(tiny_module, tmp_path, clock)
    trial = oracle.create_trial("w1")
    clock.now += 30
    oracle.reap_stale_trials()
    taken = oracle.create_trial("w0")
    _complete(oracle, taken, value=2.0)
    # the first worker was only slow: its late result does not overwrite the ended trial
    _complete(oracle, trial, value=9.0)
    assert oracle.trials[trial.trial_id].score == 2.0
    assert oracle.end_order.count(trial.trial_id) == 1


def test_requeued_trial_finished_by_its_first_worker_leaves_the_queue(tiny_module, tmp_path):
    clock = Clock()
    oracle = _oracle(tiny_module, tmp_path, clock)
    trial = oracle.create_trial("w1")
    clock.now += 30
    oracle.reap_stale_trials()
    assert oracle._retry_queue == [trial.trial_id]
    _complete(oracle, trial)  # it finishes before anyone took it over
    assert oracle._retry_queue == [] and oracle.trials[trial.trial_id].status == "COMPLETED"


def test_worker_waits_while_the_last_trials_run_elsewhere(tiny_module, tmp_path):
    clock = Clock()
    oracle = _oracle(tiny_module, tmp_path, clock, max_trials=2)
    lost = oracle.create_trial("w1")
    _complete(oracle, oracle.create_trial("w0"))
    # every trial is handed out, but w1's may be re-queued: w0 is told to wait, not to stop
    waiting = oracle.create_trial("w0")
    assert waiting.status == "IDLE" and "w0" in oracle.tuner_ids
    clock.now += 30
    assert oracle.create_trial("w0").status == "IDLE"  # w0 polls; w1 has gone silent
    assert oracle.reap_stale_trials() == [lost.trial_id]
    taken = oracle.create_trial("w0")
    assert taken.trial_id == lost.trial_id and taken.status == "RUNNING"
    _complete(oracle, taken)
    stop = oracle.create_trial("w0")  # nothing left anywhere: now it stops
    assert stop.status == "STOPPED" and "w0" not in oracle.tuner_ids and oracle.finished()


def test_bookkeeping_survives_a_reload_and_finished(tiny_module, tmp_path):
    clock = Clock()
    oracle = _oracle(tiny_module, tmp_path, clock, max_trials=2)
    for worker in ("w0", "w1"):
        trial = oracle.create_trial(worker)
        clock.now += 3
        _complete(oracle, trial)
    assert oracle.finished()
    reloaded = _oracle(tiny_module, tmp_path, clock, max_trials=2)
    reloaded.reload()
    assert reloaded.ran_by == oracle.ran_by == {"0": "w0", "1": "w1"}
    assert reloaded.ended_at == oracle.ended_at and reloaded.finished()


def test_trial_running_across_a_chief_restart_ends_once_and_frees_its_worker(tiny_module,
                                                                           tmp_path):
    """The CI failure of stop 15: a chief restarted while w0 trained put w0's trial in its retry
    queue; w0's (failed) report ended it, yet it stayed queued, was handed to w0 again, and
    every later report of it was ignored without freeing w0: the chief never finished."""
    clock = Clock()
    oracle = _oracle(tiny_module, tmp_path, clock, max_trials=2)
    _complete(oracle, oracle.create_trial("w1"))
    running = oracle.create_trial("w0")
    restarted = _oracle(tiny_module, tmp_path, clock, max_trials=2)
    restarted.reload()
    assert restarted._retry_queue == [running.trial_id]  # keras-tuner re-queues it on reload

    running.status = "INVALID"  # w0's report of its run failed while the chief was down
    restarted.end_trial(running)
    assert restarted._retry_queue == [] and running.trial_id in restarted.end_order
    assert restarted.create_trial("w0").status == "STOPPED" and restarted.finished()


def test_an_ended_trial_reported_again_frees_the_worker_holding_it(tiny_module, tmp_path):
    clock = Clock()
    oracle = _oracle(tiny_module, tmp_path, clock, max_trials=1)
    trial = oracle.create_trial("w0")
    _complete(oracle, trial)
    # a stale copy of the trial, held by a worker (as an older chief's saved queue could do)
    oracle.ongoing_trials["w1"] = oracle.trials[trial.trial_id]
    oracle._retry_queue.append(trial.trial_id)
    _complete(oracle, trial, value=5.0)
    assert oracle.ongoing_trials == {} and oracle._retry_queue == [] and oracle.finished()
    assert oracle.trials[trial.trial_id].score == 1.0


def test_reload_drops_ended_trials_from_a_saved_retry_queue(tiny_module, tmp_path):
    clock = Clock()
    oracle = _oracle(tiny_module, tmp_path, clock, max_trials=1)
    trial = oracle.create_trial("w0")
    _complete(oracle, trial)
    oracle._retry_queue.append(trial.trial_id)
    oracle.save()
    reloaded = _oracle(tiny_module, tmp_path, clock, max_trials=1)
    reloaded.reload()
    assert reloaded._retry_queue == [] and reloaded.finished()
