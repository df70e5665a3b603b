"""The python-script runner: st2's semantics, run in the pack virtualenv by warm workers."""

from __future__ import annotations

import time

import pytest
from conftest import FIXTURE_PACKS


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    from conftest import VIRTUALENVS

    from st2lite.engine import Runtime
    from st2lite.settings import Settings

    home = tmp_path_factory.mktemp("home")
    (home / "configs").mkdir()
    (home / "configs" / "svctest.yaml").write_text("greeting: hi\n")
    settings = Settings.from_env(home=home, packs_dir=FIXTURE_PACKS / "svctest", virtualenvs_dir=VIRTUALENVS)
    settings.workers_per_pack = 1  # one warm worker, so reuse is observable
    rt = Runtime(settings)
    yield rt
    rt.stop()


def run(runtime, ref: str, **params) -> dict:
    return runtime.wait(runtime.execute(ref, params), timeout=60)


def test_plain_return_value_is_the_result_of_a_succeeded_execution(runtime):
    record = run(runtime, "svctest.outcome", mode="ok")
    assert record["status"] == "succeeded"
    assert record["result"]["result"] == {"fine": True}
    assert record["result"]["exit_code"] == 0


def test_false_tuple_fails_the_execution_with_its_data(runtime):
    record = run(runtime, "svctest.outcome", mode="false_tuple")
    assert record["status"] == "failed"
    assert record["result"]["result"] == {"why": "asked to fail"}


def test_true_tuple_succeeds_with_its_data(runtime):
    record = run(runtime, "svctest.outcome", mode="true_tuple")
    assert (record["status"], record["result"]["result"]) == ("succeeded", "done")


def test_exception_fails_with_error_and_traceback(runtime):
    record = run(runtime, "svctest.outcome", mode="raise")
    assert record["status"] == "failed"
    assert record["result"]["error"] == "RuntimeError: boom from the action"
    assert "Traceback" in record["result"]["traceback"]


def test_stdout_and_stderr_are_captured_per_execution(runtime):
    record = run(runtime, "svctest.outcome", mode="print")
    assert record["result"]["stdout"] == "to stdout\n"
    assert record["result"]["stderr"] == "to stderr\n"
    assert run(runtime, "svctest.outcome", mode="ok")["result"]["stdout"] == ""


def test_config_comes_from_the_pack_config_file(runtime):
    assert run(runtime, "svctest.outcome", mode="config")["result"]["result"] == {"greeting": "hi"}


def test_action_service_datastore_is_local_to_the_action_class(runtime):
    first = run(runtime, "svctest.outcome", mode="datastore")["result"]["result"]
    second = run(runtime, "svctest.outcome", mode="datastore")["result"]["result"]
    assert first == {"previous": None} and second == {"previous": "1"}
    assert runtime.store.get("svctest.Outcome:counter") == "2"
    assert runtime.store.get("shared") == "visible"


def test_each_execution_gets_a_fresh_action_instance_in_a_reused_worker(runtime):
    before = run(runtime, "svctest.outcome", mode="identity")["result"]["result"]
    after = run(runtime, "svctest.outcome", mode="identity")["result"]["result"]
    assert after["instances"] == before["instances"] + 1, "the worker process was reused"
    assert after["distinct"] == after["instances"], "but never an Action instance"


def test_an_execution_changing_its_config_does_not_change_the_next_ones(runtime):
    pid = run(runtime, "svctest.outcome", mode="pid")["result"]["result"]
    first = run(runtime, "svctest.outcome", mode="mutate_config")["result"]["result"]
    second = run(runtime, "svctest.outcome", mode="mutate_config")["result"]["result"]
    assert first == second == {"greeting": "hi"}
    assert run(runtime, "svctest.outcome", mode="pid")["result"]["result"] == pid, "same warm worker throughout"


def test_a_worker_that_dies_mid_execution_fails_it_and_is_replaced(runtime):
    pid = run(runtime, "svctest.outcome", mode="pid")["result"]["result"]
    record = run(runtime, "svctest.outcome", mode="crash")
    assert record["status"] == "failed"
    assert record["result"]["error"] == "action worker died during the execution"
    # its successor is started at once, not when the next execution asks for one
    pool = runtime.packs["svctest"].pool
    successors = [w for w in pool._idle if w.proc.pid != pid]
    assert len(successors) == 1 and successors[0].alive()
    after = run(runtime, "svctest.outcome", mode="pid")
    assert after["status"] == "succeeded" and after["result"]["result"] != pid
    assert run(runtime, "svctest.outcome", mode="ok")["result"]["result"] == {"fine": True}


def test_actions_lib_is_on_the_path(runtime):
    assert run(runtime, "svctest.outcome", mode="lib")["result"]["result"] == "HELLO!"


def test_timeout_kills_the_execution_and_the_next_one_runs(runtime):
    started = time.monotonic()
    record = run(runtime, "svctest.sleep", seconds=30, timeout=1)
    assert time.monotonic() - started < 10
    assert record["status"] == "timeout"
    assert "timed out after 1 seconds" in record["result"]["error"]
    assert run(runtime, "svctest.outcome", mode="ok")["status"] == "succeeded"


def test_default_timeout_comes_from_the_action_metadata(runtime):
    from st2lite.engine import RUNNER_PARAMETERS
    from st2lite.params import merged_parameter_schema

    action = runtime.actions["svctest.outcome"]
    schema = merged_parameter_schema(RUNNER_PARAMETERS["python-script"], action.parameters)
    assert schema["timeout"]["default"] == 5
    assert RUNNER_PARAMETERS["python-script"]["timeout"]["default"] == 600


def test_secret_parameters_are_masked_in_the_record(runtime):
    record = run(runtime, "svctest.outcome", mode="ok", token="hunter2")
    assert record["parameters"]["token"] == "********"
    assert "hunter2" not in str(runtime.records.get_execution(record["id"]))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "missing required parameter 'mode'"),
        ({"mode": "sideways"}, "'sideways' is not one of"),
        ({"mode": "ok", "nonsense": 1}, "nonsense"),
        ({"mode": 3}, "parameter 'mode'"),
    ],
)
def test_invalid_parameters_are_rejected_before_an_execution_exists(runtime, params, message):
    from st2lite.params import ParameterValidationError

    before = len(runtime.records.list_executions(limit=1000))
    with pytest.raises(ParameterValidationError, match=message):
        runtime.execute("svctest.outcome", params)
    assert len(runtime.records.list_executions(limit=1000)) == before


def test_unknown_action_is_a_clear_error(runtime):
    from st2lite.params import ParameterValidationError

    with pytest.raises(ParameterValidationError, match="'svctest.nope' is not registered"):
        runtime.execute("svctest.nope", {})


def test_a_runner_st2lite_does_not_run_fails_with_a_clear_error(runtime):
    record = run(runtime, "svctest.uptime")
    assert record["status"] == "failed"
    assert record["result"]["error"] == (
        "runner 'local-shell-cmd' is not supported by st2lite (supported: python-script, orquesta, noop, inquirer)"
    )


def test_start_warms_every_worker_of_the_pool(make_runtime):
    """No execution waits for a worker's imports, also when two run at once."""
    rt = make_runtime(FIXTURE_PACKS / "svctest", workers_per_pack=2)
    rt.start(sensors=False)
    pool = rt.packs["svctest"].pool
    workers = list(pool._idle)
    assert len(workers) == 2 and len({w.proc.pid for w in workers}) == 2
    assert all(w.started.wait(60) and w.ready for w in workers)
    pids = {run(rt, "svctest.outcome", mode="pid")["result"]["result"] for _ in range(3)}
    assert pids <= {w.proc.pid for w in workers}, "executions ran in the warm workers"
