"""keras-tuner oracles that record when and where each trial ran, and survive lost workers.

Every sweep (local or distributed) uses an oracle built by :func:`make_oracle`: keras-tuner's
own random / Hyperband / Bayesian oracle with :class:`SweepOracleMixin` on top.  The mixin

* records, per trial, the tuner (worker) that ran it, its start and end time and how many
  times it was re-queued; the record is part of the oracle's saved state (``oracle.json``), so
  it survives a restarted chief and feeds the results table (:mod:`lstm_zoo.tuning.results`);
* treats any call about a trial (``get_trial``, ``update_trial`` ...) as a heartbeat of that
  trial; workers send one every few seconds (:mod:`lstm_zoo.tuning.chief_worker`);
* :meth:`~SweepOracleMixin.reap_stale_trials`: a trial whose worker has not been heard from for
  ``worker_timeout`` seconds is re-queued (up to ``max_requeues`` times, then marked FAILED),
  and the silent worker is forgotten.  keras-tuner alone leaves such a trial RUNNING and its
  chief waits forever for the dead worker;
* writes ``oracle.json`` and every ``trial.json`` atomically (a killed chief never leaves a
  half-written file behind);
* keeps a worker that asks for a trial when all are handed out waiting (IDLE) while other
  workers' trials still run, since one of them may yet be re-queued; keras-tuner tells it to
  stop at once, so a trial re-queued near the end of a sweep was left to no worker;
* ignores late reports about a trial that has already ended (a worker thought dead that comes
  back, or a trial re-queued by a restarted chief and finished twice), instead of corrupting it,
  and frees the worker that sent it (a trial ended by one run leaves the retry queue: once a
  restarted chief re-ran an ended trial forever and never finished);
* calls ``on_trial_end(oracle)`` after every ended trial (the results table is rewritten there,
  so a sweep's progress is visible as it runs).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import keras_tuner as kt
from keras_tuner import synchronized
from keras_tuner.engine.trial import TrialStatus

from lstm_zoo.errors import LstmZooError
from lstm_zoo.files import atomic_write_text
from lstm_zoo.tuning.choices import TUNERS


class SweepError(LstmZooError, ValueError):
    """A sweep asked for with bad settings (tuner, trials, seed, search space, address ...)."""

_ORACLE_CLASSES = {
    "random": kt.oracles.RandomSearchOracle,
    "hyperband": kt.oracles.HyperbandOracle,
    "bayesian": kt.oracles.BayesianOptimizationOracle,
}


class SweepOracleMixin:
    """Bookkeeping, heartbeats and stale-trial recovery on top of a keras-tuner oracle."""

    worker_timeout: float = 300.0
    max_requeues: int = 2
    on_trial_end: Callable[[Any], None] | None = None
    clock: Callable[[], float] = staticmethod(time.time)

    def _sweep_init(self) -> None:
        self.ran_by: dict[str, str] = {}
        self.started_at: dict[str, float] = {}
        self.ended_at: dict[str, float] = {}
        self.requeues: dict[str, int] = {}
        self.last_heard: dict[str, float] = {}  # trial id or "tuner:<id>" -> time (not saved)

    # ---- heartbeats -------------------------------------------------------------------------
    def _heard(self, key: str) -> None:
        self.last_heard[key] = self.clock()

    @synchronized
    def create_trial(self, tuner_id: str):
        self._heard(f"tuner:{tuner_id}")
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.STOPPED and self.ongoing_trials:
            # every trial is handed out, but another worker's may yet be re-queued: keep this
            # worker asking (IDLE) instead of letting it exit and leaving that trial to nobody
            self.tuner_ids.add(tuner_id)
            trial.status = TrialStatus.IDLE
            return trial
        if trial.status == TrialStatus.RUNNING:
            self.started_at.setdefault(trial.trial_id, self.clock())
            self.ran_by[trial.trial_id] = tuner_id
            self._heard(trial.trial_id)
            self.save()
        return trial

    @synchronized
    def get_trial(self, trial_id: str):
        self._heard(trial_id)
        return super().get_trial(trial_id)

    def _ended(self, trial_id: str) -> bool:
        return trial_id in self.end_order

    @synchronized
    def update_trial(self, trial_id: str, metrics: dict[str, float], step: int = 0):
        self._heard(trial_id)
        if self._ended(trial_id):  # a late report about a finished trial: keep the first result
            return self.trials[trial_id]
        return super().update_trial(trial_id, metrics, step=step)

    def _unqueue(self, trial_id: str) -> None:
        """Drop every retry-queue entry of ``trial_id``."""
        self._retry_queue = [queued for queued in self._retry_queue if queued != trial_id]

    def _release(self, trial_id: str) -> None:
        """Take an ended trial off every worker that still holds it and out of the queue."""
        for tuner_id, ongoing in list(self.ongoing_trials.items()):
            if ongoing.trial_id == trial_id:
                del self.ongoing_trials[tuner_id]
        self._unqueue(trial_id)

    @synchronized
    def end_trial(self, trial) -> None:
        trial_id = trial.trial_id
        if self._ended(trial_id):
            # reported again (a worker re-ran it): keep the first result, but free the worker,
            # else the chief would wait for it forever and hand it the same trial again
            self._release(trial_id)
            self.save()
            return
        # re-queued (restarted chief or silent worker), but its first run ended after all;
        # keras-tuner decides afresh below whether an INVALID run is retried
        self._unqueue(trial_id)
        super().end_trial(trial)
        self.ended_at[trial_id] = self.clock()
        self.save()
        if self.on_trial_end is not None:
            self.on_trial_end(self)

    # ---- lost workers -----------------------------------------------------------------------
    @synchronized
    def reap_stale_trials(self) -> list[str]:
        """Re-queue (or fail) trials whose worker has been silent for ``worker_timeout`` s.

        Also forgets idle workers that went silent, so a chief never waits for a dead worker to
        ask for its STOPPED signal.  Returns the ids of the trials it acted on.
        """
        now = self.clock()
        acted: list[str] = []
        for tuner_id, trial in list(self.ongoing_trials.items()):
            last = self.last_heard.setdefault(trial.trial_id, now)
            if now - last < self.worker_timeout:
                continue
            del self.ongoing_trials[tuner_id]
            self.tuner_ids.discard(tuner_id)
            self.requeues[trial.trial_id] = self.requeues.get(trial.trial_id, 0) + 1
            silent = f"worker {tuner_id!r} silent for {now - last:.0f}s"
            if self.requeues[trial.trial_id] > self.max_requeues:
                trial.status = TrialStatus.FAILED
                trial.message = f"{silent}; re-queued {self.max_requeues} times already"
                self.end_order.append(trial.trial_id)
                self.ended_at[trial.trial_id] = now
                print(f"[sweep] trial {trial.trial_id} FAILED: {trial.message}", flush=True)
            else:
                trial.status = TrialStatus.IDLE
                self._retry_queue.append(trial.trial_id)
                print(f"[sweep] trial {trial.trial_id} re-queued: {silent}", flush=True)
            self._save_trial(trial)
            acted.append(trial.trial_id)
        busy = set(self.ongoing_trials)
        for tuner_id in list(self.tuner_ids - busy):
            last = self.last_heard.setdefault(f"tuner:{tuner_id}", now)
            if now - last >= self.worker_timeout:
                self.tuner_ids.discard(tuner_id)
        if acted:
            self.save()
            if self.on_trial_end is not None:
                self.on_trial_end(self)
        return acted

    def finished(self) -> bool:
        """True when no trial is running or queued and no new trial will be created."""
        if self.ongoing_trials or self._retry_queue:
            return False
        if self.max_trials and len(self.trials) >= self.max_trials:
            return True
        return False

    # ---- saved state --------------------------------------------------------------------------
    def save(self) -> None:
        """``oracle.json``, written atomically: a chief killed mid-write leaves the old file,
        so its restart can always reload (keras-tuner writes in place)."""
        atomic_write_text(self._get_oracle_fname(), json.dumps(self.get_state()))

    def _save_trial(self, trial) -> None:
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        atomic_write_text(path, json.dumps(trial.get_state()))

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        state["lstm_zoo"] = {
            "ran_by": self.ran_by,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "requeues": self.requeues,
        }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        # an ended trial is never run again, whatever an older saved queue says
        self._retry_queue = [t for t in self._retry_queue if not self._ended(t)]
        extra = state.get("lstm_zoo", {})
        self.ran_by = dict(extra.get("ran_by", {}))
        self.started_at = dict(extra.get("started_at", {}))
        self.ended_at = dict(extra.get("ended_at", {}))
        self.requeues = dict(extra.get("requeues", {}))


_mixed_classes: dict[str, type] = {}


def make_oracle(
    tuner: str,
    *,
    objective: Any,
    max_trials: int,
    epochs: int,
    seed: int,
    worker_timeout: float = 300.0,
    max_requeues: int = 2,
) -> Any:
    """A keras-tuner oracle of kind ``tuner`` ("random", "hyperband", "bayesian") with the mixin.

    ``seed`` must be >= 0; keras-tuner treats a seed of 0 as "pick one at random", so the
    oracle gets ``seed + 1`` and the same ``seed`` always draws the same trial hyperparameters.
    Hyperband trains each trial for up to ``epochs`` epochs and is capped at ``max_trials``.
    """
    if tuner not in _ORACLE_CLASSES:
        raise SweepError(f"unknown tuner {tuner!r}; choose one of {', '.join(TUNERS)}")
    if not isinstance(max_trials, int) or max_trials < 1:
        raise SweepError(f"max_trials must be a positive integer, got {max_trials!r}")
    if not isinstance(seed, int) or seed < 0:
        raise SweepError(f"seed must be a non-negative integer, got {seed!r}")
    base = _ORACLE_CLASSES[tuner]
    cls = _mixed_classes.get(tuner)
    if cls is None:
        cls = type(f"Sweep{base.__name__}", (SweepOracleMixin, base), {})
        _mixed_classes[tuner] = cls
    common = {"objective": objective, "seed": seed + 1, "max_consecutive_failed_trials": 3}
    if tuner == "hyperband":
        oracle = cls(max_epochs=max(2, epochs), factor=3, **common)
        oracle.max_trials = max_trials
    else:
        oracle = cls(max_trials=max_trials, **common)
    oracle._sweep_init()
    oracle.worker_timeout = float(worker_timeout)
    oracle.max_requeues = int(max_requeues)
    return oracle
