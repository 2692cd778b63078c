"""Distributed sweeps with keras-tuner's chief/worker mode, hardened against lost processes.

keras-tuner's own protocol: one *chief* process holds the oracle and serves it over gRPC at
``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT``; each *worker* (``KERASTUNER_TUNER_ID``) asks
it for a trial, trains it and reports back.  lstm_zoo sets those variables from
``--role/--oracle/--worker-id`` and adds what keras-tuner lacks (all measured failures):

* the chief runs its own serving loop (:func:`serve_chief`) that re-queues trials whose worker
  stopped sending heartbeats (:meth:`SweepOracleMixin.reap_stale_trials`), forgets silent
  idle workers, and exits as soon as the sweep is finished (keras-tuner's waits forever for a
  dead worker and polls every 20 s);
* a worker sends a heartbeat every few seconds while it trains (:class:`Heartbeat`), checks at
  start that the chief is reachable within ``connect_timeout`` (a clear error instead of
  keras-tuner's silent one-hour wait), backs off while the oracle has no trial ready,
  reconnects when the chief goes away and comes back (:func:`run_worker`), and repeats a
  trial's report that the chief's death cut off (:func:`patient_rpc`) instead of failing the
  trial;
* ``overwrite`` is always False: workers never delete the shared directory under each other.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

from lstm_zoo.errors import LstmZooError
from lstm_zoo.tuning.finish import SweepResult, finish_sweep
from lstm_zoo.tuning.hypermodel import make_hypermodel, make_tuner
from lstm_zoo.tuning.oracle import SweepError

CHIEF_ID = "chief"


class OracleUnreachableError(LstmZooError, ConnectionError):
    """A worker could not reach the chief's oracle in time."""


class OracleAddressError(LstmZooError, OSError):
    """The chief cannot listen on its ``--oracle`` address (port taken, foreign address)."""


def parse_address(address: str | None) -> tuple[str, int]:
    """``"HOST:PORT"`` (or ``"[::1]:PORT"``) -> (host, port), with a clear error otherwise."""
    if not address:
        raise SweepError("a distributed sweep needs --oracle HOST:PORT (the chief's address)")
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SweepError(f"--oracle expects HOST:PORT (e.g. 10.0.0.5:8000), got {address!r}")
    return host, int(port)


def _grpc_target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _set_keras_tuner_env(tuner_id: str, host: str, port: int) -> None:
    os.environ["KERASTUNER_TUNER_ID"] = tuner_id
    os.environ["KERASTUNER_ORACLE_IP"] = host
    os.environ["KERASTUNER_ORACLE_PORT"] = str(port)


def wait_for_oracle(host: str, port: int, timeout: float) -> None:
    """Return once the chief at ``host:port`` accepts connections; raise after ``timeout`` s."""
    import grpc

    channel = grpc.insecure_channel(_grpc_target(host, port))
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise OracleUnreachableError(
            f"cannot reach the sweep's chief oracle at {host}:{port} within {timeout:g}s; start "
            f"'lstm-zoo tune RECIPE --role chief --oracle HOST:{port}' first, check the address "
            "and that the port is open (--connect-timeout sets this wait)"
        ) from None
    finally:
        channel.close()


class Heartbeat:
    """Tells the chief every ``interval`` s that this worker still runs ``trial_id``."""

    def __init__(self, client: Any, interval: float):
        self.client, self.interval = client, interval
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, trial_id: str) -> None:
        self.stop()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, args=(trial_id, self._stop), name="sweep-heartbeat", daemon=True
        )
        self._thread.start()

    def _beat(self, trial_id: str, stop: threading.Event) -> None:
        import grpc

        from lstm_zoo.adapters.keras_tuner_private import protos

        request = protos.get_service().GetTrialRequest(trial_id=trial_id)
        while not stop.wait(self.interval):
            try:
                self.client.stub.GetTrial(request, timeout=max(2.0, self.interval))
            except grpc.RpcError:
                pass  # the chief may be restarting; the next beat retries

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._stop = self._thread = None


def patient_rpc(call: Any, rpc_timeout: float, pause: float = 1.0) -> Any:
    """``call`` retried while the chief is unavailable, for up to ``rpc_timeout`` seconds.

    keras-tuner's client waits for a chief that is down when a call starts
    (``wait_for_ready``), but a call in flight when the chief dies fails at once with
    UNAVAILABLE; inside a trial that failure marked a finished trial INVALID.  The chief may
    have applied the call before dying; repeating it is harmless (a report about an ended
    trial is ignored by :class:`~lstm_zoo.tuning.oracle.SweepOracleMixin`).
    """
    import grpc

    def patient(*args: Any, **kwargs: Any) -> Any:
        lost_since: float | None = None
        while True:
            try:
                return call(*args, **kwargs)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > rpc_timeout:
                    raise
                time.sleep(pause)

    return patient


def serve_chief(oracle: Any, host: str, port: int, poll: float = 0.5) -> None:
    """Serve ``oracle`` to the workers until the sweep is finished.

    Every ``poll`` seconds: re-queue trials of silent workers, and stop once every trial has
    ended and every worker has been told to stop (or went silent).
    """
    import grpc

    from lstm_zoo.adapters.keras_tuner_private import OracleServicer, protos

    # no SO_REUSEPORT (gRPC's default on Linux): with it a second chief bound a port already
    # serving another chief, and workers were split between the two without a word
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.so_reuseport", 0)])
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(_grpc_target(host, port))
    except RuntimeError:  # grpc >= 1.5x raises where older versions returned 0
        bound = 0
    if not bound:
        raise OracleAddressError(f"the chief cannot listen on {host}:{port}: "
                                 f"{_why_unbindable(host, port)}")
    server.start()
    print(f"[sweep] chief: oracle listening on {host}:{port}; "
          f"{len(oracle.end_order)}/{oracle.max_trials} trials ended so far", flush=True)
    try:
        while True:
            time.sleep(poll)
            oracle.reap_stale_trials()
            done = servicer.stop_triggered or oracle.finished()
            if done and not oracle.ongoing_trials and not oracle._retry_queue \
                    and not oracle.tuner_ids:
                break
    finally:
        server.stop(grace=2).wait(5)


def _why_unbindable(host: str, port: int) -> str:
    """Why ``host:port`` cannot be listened on, found by binding a plain socket there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return (f"port {port} is already in use (another chief, or another program); "
                    "stop it or choose another --oracle port")
        if exc.errno == errno.EADDRNOTAVAIL:
            return (f"{host} is not an address of this machine (use 0.0.0.0:{port} to listen "
                    "everywhere)")
        return f"{exc.strerror or exc}"
    return "gRPC could not bind it (set GRPC_VERBOSITY=debug for details)"


def run_worker(make_tuner_fn: Any, fit_kwargs: dict[str, Any], host: str, port: int, *,
               heartbeat_seconds: float, rpc_timeout: float, idle_seconds: float = 1.0) -> None:
    """Run trials for the chief until it says stop; reconnect if the chief goes away.

    ``make_tuner_fn()`` builds a fresh tuner (keras-tuner wraps its oracle into a gRPC client
    because the environment names a chief).  A worker restarted under the same id gets its
    unfinished trial back from the chief.
    """
    import grpc
    from keras_tuner.engine.trial import TrialStatus

    retry_codes = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    lost_since: float | None = None
    while True:
        tuner = make_tuner_fn()
        client = tuner.oracle
        tuner.heartbeat = Heartbeat(client, heartbeat_seconds)
        ask = client.create_trial

        def create_trial(tuner_id: str, _ask: Any = ask) -> Any:
            trial = _ask(tuner_id)
            if trial.status == TrialStatus.IDLE:  # keras-tuner would ask again at once
                time.sleep(idle_seconds)
            return trial

        client.create_trial = create_trial
        for name in ("get_trial", "update_trial", "end_trial"):  # the reports of a trial
            setattr(client, name, patient_rpc(getattr(client, name), rpc_timeout))
        try:
            tuner.search(**fit_kwargs)
            return
        except grpc.RpcError as exc:
            if exc.code() not in retry_codes:
                raise
            lost_since = lost_since or time.monotonic()
            waited = time.monotonic() - lost_since
            if waited > rpc_timeout:
                raise OracleUnreachableError(
                    f"lost the chief at {host}:{port} for {waited:.0f}s (> --rpc-timeout)"
                ) from exc
            print(f"[sweep] worker: chief unavailable ({exc.code().name}); reconnecting",
                  flush=True)
            time.sleep(2.0)
            wait_for_oracle(host, port, max(1.0, rpc_timeout - waited))
        finally:
            tuner.heartbeat.stop()


def _sweep_finished(directory: Path) -> bool:
    results = directory / "results.json"
    try:
        return bool(json.loads(results.read_text()).get("finished"))
    except (OSError, ValueError):
        return False


def run_distributed(role: str, *, recipe: Any, tuner: str, oracle: Any, config: Any,
                    directory: Path, seed: int, data: Any, address: str | None,
                    worker_id: str | None, heartbeat_seconds: float, connect_timeout: float,
                    rpc_timeout: float, verbose: int, options: dict[str, Any]) -> Any:
    """The chief or worker side of :func:`lstm_zoo.tuning.sweep.tune` (see there)."""
    host, port = parse_address(address)
    objective, direction = oracle.objective.name, oracle.objective.direction
    if role == "chief":
        _set_keras_tuner_env(CHIEF_ID, host, port)
        hypermodel = make_hypermodel(recipe, None, config, seed)  # the chief trains nothing
        kt_tuner = make_tuner(tuner, oracle, hypermodel, directory, recipe.name)
        oracle.verbose = verbose
        kt_tuner.save()
        started = time.perf_counter()
        serve_chief(oracle, host, port)
        extra = {"recipe": recipe.name, "tuner": tuner, "seed": seed,
                 "max_trials": oracle.max_trials, "epochs": config.epochs, "finished": True,
                 "chief_seconds": round(time.perf_counter() - started, 1)}
        return finish_sweep(recipe, directory, objective, direction, extra,
                            data_source=data, options=options)

    if not worker_id or CHIEF_ID in worker_id or any(c.isspace() for c in worker_id):
        raise SweepError(f"a worker needs --worker-id: a stable name without spaces that does "
                         f"not contain 'chief' (keras-tuner's chief marker), got {worker_id!r}")
    from lstm_zoo.adapters.keras_tuner_private import oracle_client

    oracle_client.TIMEOUT = rpc_timeout  # how long a call waits for a (restarting) chief
    try:
        wait_for_oracle(host, port, connect_timeout)
    except OracleUnreachableError:
        if _sweep_finished(directory):
            print(f"[sweep] worker {worker_id}: the sweep in {directory} is finished", flush=True)
            return SweepResult(directory, {"rows": [], "finished": True}, None)
        raise
    _set_keras_tuner_env(worker_id, host, port)
    loaded = recipe.load(data, seed=seed, **options)
    hypermodel = make_hypermodel(recipe, loaded, config, seed)
    print(f"[sweep] worker {worker_id}: connected to the chief at {host}:{port}", flush=True)
    run_worker(lambda: make_tuner(tuner, oracle, hypermodel, directory, recipe.name),
               {"epochs": config.epochs, "verbose": verbose}, host, port,
               heartbeat_seconds=heartbeat_seconds, rpc_timeout=rpc_timeout)
    print(f"[sweep] worker {worker_id}: the chief says the sweep is done", flush=True)
    return SweepResult(directory, {"rows": [], "worker": worker_id}, None)
