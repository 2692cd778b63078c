"""keras-tuner internals of its chief/worker protocol (no public API in keras-tuner 1.4).

keras-tuner runs a distributed sweep by itself only when every process starts through its
environment variables and lives until the end.  :mod:`lstm_zoo.tuning.chief_worker` adds
heartbeats, re-queues for lost workers and chiefs that restart, which needs the gRPC pieces:

* ``protos``: the service's request/response messages (a heartbeat is a ``GetTrial`` call);
* ``OracleServicer``: the chief's gRPC servicer, served on our own server with a stop condition;
* ``oracle_client``: the worker's client module, whose ``TIMEOUT`` bounds each call.
"""

try:
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_client
    from keras_tuner.src.distribute.oracle_chief import OracleServicer
except ImportError as exc:  # pragma: no cover - keras-tuner moved them
    raise ImportError(
        f"lstm_zoo's distributed sweeps need keras-tuner internals this version moved ({exc}); "
        "install keras-tuner 1.4.x"
    ) from exc

__all__ = ["OracleServicer", "oracle_client", "protos"]
