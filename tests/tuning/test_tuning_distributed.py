"""Distributed sweeps on 127.0.0.1: a chief and two workers as real processes, killed and
restarted; an unreachable chief.  Bounded: free ports, subprocess timeouts, children always
killed (the ``procs`` fixture)."""

from __future__ import annotations

import json
import time

import pytest


def _args(role: str, port: int, directory, *extra: str) -> list[str]:
    return ["tune", "tiny-sweep", "--role", role, "--oracle", f"127.0.0.1:{port}",
            "--max-trials", "4", "--epochs", "2", "--seed", "5", "--directory",
            str(directory), "--quiet", *extra]


WORKER_ENV = {"TINY_EPOCH_SLEEP": "0.5", "TINY_MODEL": "dense"}


def _ongoing(helpers, project_dir, worker: str) -> str | None:
    return helpers.oracle_state(project_dir).get("ongoing_trials", {}).get(worker)


def _results(directory) -> dict:
    return json.loads((directory / "results.json").read_text())


@pytest.mark.slow
def test_killed_worker_restarted_under_its_id_finishes_its_trial(procs, tmp_path, helpers):
    port, directory = helpers.free_port(), tmp_path / "sweep"
    project = directory / "tiny-sweep"
    procs.start("chief", _args("chief", port, directory, "--worker-timeout", "300"))
    worker = ["--heartbeat", "1", "--connect-timeout", "60"]
    procs.start("w0", _args("worker", port, directory, "--worker-id", "w0", *worker), WORKER_ENV)
    procs.start("w1", _args("worker", port, directory, "--worker-id", "w1", *worker), WORKER_ENV)

    lost = helpers.wait_until(lambda: _ongoing(helpers, project, "w1"), 120,
                              "w1 to start a trial", procs)
    time.sleep(1.0)  # inside the trial's training
    procs.kill("w1")
    procs.start("w1-again", _args("worker", port, directory, "--worker-id", "w1", *worker),
                WORKER_ENV)

    assert procs.wait("chief", 240) == 0, procs.log("chief")
    assert procs.wait("w0", 180) == 0, procs.log("w0")
    assert procs.wait("w1-again", 180) == 0, procs.log("w1-again")
    record = _results(directory)
    assert record["finished"] and record["status_counts"] == {"COMPLETED": 4}
    by_id = {r["trial_id"]: r for r in record["rows"]}
    assert by_id[lost]["worker"] == "w1"  # the restarted w1 took its own trial back
    assert by_id[lost]["requeues"] == 0
    assert {r["worker"] for r in record["rows"]} == {"w0", "w1"}
    assert (directory / "trials.png").exists() and (directory / "results.csv").exists()


@pytest.mark.slow
def test_silent_worker_is_requeued_and_a_restarted_chief_resumes(procs, tmp_path, helpers):
    port, directory = helpers.free_port(), tmp_path / "sweep"
    project = directory / "tiny-sweep"
    chief = _args("chief", port, directory, "--worker-timeout", "8")
    procs.start("chief", chief)
    worker = ["--heartbeat", "0.5", "--connect-timeout", "60"]
    procs.start("w0", _args("worker", port, directory, "--worker-id", "w0", *worker), WORKER_ENV)
    procs.start("w1", _args("worker", port, directory, "--worker-id", "w1", *worker), WORKER_ENV)

    lost = helpers.wait_until(lambda: _ongoing(helpers, project, "w1"), 120,
                              "w1 to start a trial", procs)
    procs.kill("w1")  # and never restarted: the chief must not wait for it forever
    helpers.wait_until(
        lambda: helpers.oracle_state(project).get("lstm_zoo", {}).get("requeues", {}).get(lost),
        60, f"trial {lost} to be re-queued", procs)

    procs.kill("chief")  # mid-sweep; w0 waits for it to come back
    assert procs.procs["w0"].poll() is None
    procs.start("chief-again", chief)

    assert procs.wait("chief-again", 240) == 0, procs.log("chief-again")
    assert procs.wait("w0", 180) == 0, procs.log("w0")
    record = _results(directory)
    assert record["finished"] and record["status_counts"] == {"COMPLETED": 4}
    by_id = {r["trial_id"]: r for r in record["rows"]}
    assert by_id[lost]["worker"] == "w0" and by_id[lost]["requeues"] >= 1


def test_unreachable_chief_is_a_clear_error_after_a_bounded_wait(tiny_registered, tmp_path,
                                                                 helpers):
    from lstm_zoo.tuning.chief_worker import OracleUnreachableError
    from lstm_zoo.tuning.sweep import tune

    port = helpers.free_port()
    started = time.monotonic()
    with pytest.raises(OracleUnreachableError, match=f"cannot reach .* 127.0.0.1:{port} within"):
        tune(tiny_registered, role="worker", oracle=f"127.0.0.1:{port}", worker_id="w0",
             connect_timeout=1.5, directory=tmp_path)
    assert time.monotonic() - started < 20
    assert tiny_registered.fit_calls == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"role": "worker", "oracle": "localhost"}, "--oracle expects HOST:PORT"),
    ({"role": "chief"}, "needs --oracle HOST:PORT"),
    ({"role": "worker", "oracle": "127.0.0.1:1", "worker_id": "chief-2"}, "does not contain"),
    ({"role": "worker", "oracle": "127.0.0.1:1", "export": "x"}, "--export needs a local"),
])
def test_bad_distributed_arguments(tiny_module, tmp_path, kwargs, message):
    from lstm_zoo.tuning.oracle import SweepError
    from lstm_zoo.tuning.sweep import tune

    with pytest.raises(SweepError, match=message):
        tune(tiny_module.TinyRecipe(), directory=tmp_path, connect_timeout=0.5, **kwargs)


def _rpc_failure(code_name: str) -> Exception:
    """A grpc.RpcError with a status code, as a dying chief's channel raises it."""
    import grpc

    class Failure(grpc.RpcError):
        def code(self):
            return getattr(grpc.StatusCode, code_name)

    return Failure()


def test_a_report_cut_off_by_the_chief_dying_is_repeated():
    from lstm_zoo.tuning.chief_worker import patient_rpc

    calls = []

    def report(trial_id, metrics):
        calls.append(trial_id)
        if len(calls) < 3:
            raise _rpc_failure("UNAVAILABLE")
        return "accepted"

    assert patient_rpc(report, rpc_timeout=60, pause=0)("3", {"val_loss": 1.0}) == "accepted"
    assert calls == ["3", "3", "3"]


@pytest.mark.parametrize(("code", "rpc_timeout", "expected_calls"), [
    ("INVALID_ARGUMENT", 60, 1),  # not a lost chief: no retry
    ("UNAVAILABLE", 0.05, None),  # the chief stays away longer than --rpc-timeout
])
def test_a_report_gives_up_on_other_errors_and_after_the_rpc_timeout(code, rpc_timeout,
                                                                     expected_calls):
    import grpc

    from lstm_zoo.tuning.chief_worker import patient_rpc

    calls = []

    def report():
        calls.append(1)
        raise _rpc_failure(code)

    with pytest.raises(grpc.RpcError):
        patient_rpc(report, rpc_timeout=rpc_timeout, pause=0.01)()
    if expected_calls is not None:
        assert len(calls) == expected_calls
    else:
        assert len(calls) >= 2
