"""Orquesta workflows run through the runtime: real conductor, python actions in the pack venv, history."""

from __future__ import annotations

import pytest
from conftest import FIXTURE_PACKS

WFTEST = FIXTURE_PACKS / "wftest"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    from conftest import VIRTUALENVS

    from st2lite.engine import Runtime
    from st2lite.settings import Settings

    settings = Settings.from_env(home=tmp_path_factory.mktemp("home"), packs_dir=WFTEST, virtualenvs_dir=VIRTUALENVS)
    rt = Runtime(settings)
    yield rt
    rt.stop()


def run(runtime, ref: str, **params) -> dict:
    ex_id = runtime.execute(ref, params)
    return runtime.wait(ex_id, timeout=60)


def children(runtime, record: dict) -> list[dict]:
    return runtime.records.list_executions(parent=record["id"], newest_first=False, limit=100)


def test_publish_passes_values_between_tasks_and_records_children(runtime):
    record = run(runtime, "wftest.publish", a=1, b=2)
    assert record["status"] == "succeeded"
    assert record["result"]["output"] == {"sum": 3, "total": 30, "history": [3, 30]}
    tasks = children(runtime, record)
    assert [t["task_name"] for t in tasks] == ["first_sum", "scale"]
    assert all(t["status"] == "succeeded" and t["parent"] == record["id"] for t in tasks)
    assert tasks[1]["parameters"] == {"a": 3, "b": 27}
    assert record["workflow_state"], "the conductor's serialized state is persisted"


@pytest.mark.parametrize(("n", "size"), [(50, "big"), (3, "small")])
def test_branching_takes_one_branch(runtime, n, size):
    record = run(runtime, "wftest.branching", n=n)
    assert record["status"] == "succeeded"
    assert record["result"]["output"]["size"] == size
    assert [t["task_name"] for t in children(runtime, record)] == ["check", size]


def test_retry_reruns_a_failing_task_until_it_succeeds(runtime):
    record = run(runtime, "wftest.retry", key="retry-ok", failures=2)
    assert record["status"] == "succeeded"
    assert record["result"]["output"]["attempts"] == 3
    statuses = [t["status"] for t in children(runtime, record)]
    assert statuses == ["failed", "failed", "succeeded"]


def test_retry_gives_up_after_its_count(runtime):
    record = run(runtime, "wftest.retry", key="retry-exhausted", failures=5)
    assert record["status"] == "failed"
    assert [t["status"] for t in children(runtime, record)] == ["failed"] * 3


def test_join_waits_for_both_parallel_branches(runtime):
    record = run(runtime, "wftest.join", seconds=1)
    assert record["status"] == "succeeded"
    out = record["result"]["output"]
    assert sorted(out["joined"]) == ["left", "right"]
    # The two branches overlapped in time: they ran in parallel, in two workers.
    assert out["left"]["start"] < out["right"]["end"] and out["right"]["start"] < out["left"]["end"]
    assert children(runtime, record)[-1]["task_name"] == "merge"


def test_with_items_runs_one_execution_per_item(runtime):
    action = runtime.actions["wftest.with_items"]
    record = run(runtime, "wftest.with_items", tags=["a", "b", "c"], seconds=0.2, concurrency=2)
    assert record["status"] == "succeeded", record["result"]
    items = children(runtime, record)
    assert sorted(t["context"]["orquesta"]["item_id"] for t in items) == [0, 1, 2]
    assert [r["tag"] for r in record["result"]["output"]["results"]] == ["a", "b", "c"]
    # concurrency 2: the third item starts only after one of the first two ended.
    spans = sorted((r["start"], r["end"]) for r in record["result"]["output"]["results"])
    assert spans[2][0] >= min(spans[0][1], spans[1][1]) - 0.01
    assert action.runner_type == "orquesta"


def test_handled_failure_continues_and_succeeds(runtime):
    record = run(runtime, "wftest.handled_failure", reason="disk full")
    assert record["status"] == "succeeded"
    assert record["result"]["output"] == {"error": "disk full", "recovered": True}
    by_task = {t["task_name"]: t for t in children(runtime, record)}
    assert by_task["attempt"]["status"] == "failed"
    assert by_task["recover"]["action"] == "core.noop"
    assert "celebrate" not in by_task


def test_unhandled_failure_fails_the_workflow_with_errors(runtime):
    record = run(runtime, "wftest.unhandled_failure")
    assert record["status"] == "failed"
    assert record["result"]["errors"], "the orquesta runner reports the errors"
    assert record["result"]["output"]["prepared"] == "prepared"
    assert "never" not in {t["task_name"] for t in children(runtime, record)}


def test_output_is_rendered_with_st2_context(runtime):
    record = run(runtime, "wftest.output", name="aegis")
    out = record["result"]["output"]
    assert out["message"] == "hello aegis"
    assert out["length"] == len("hello aegis")
    assert out["shout"] == "HELLO AEGIS"
    assert out["summary"] == "hello aegis (11 chars)"
    assert out["user"] == "stanley"
    assert out["execution_id"] == record["id"]


def test_nested_workflow_is_a_child_with_its_own_children(runtime):
    record = run(runtime, "wftest.nested", a=3, b=4)
    assert record["status"] == "succeeded"
    assert record["result"]["output"] == {"child_total": 70, "doubled": 140}
    child = next(t for t in children(runtime, record) if t["task_name"] == "child")
    assert child["action"] == "wftest.publish"
    assert [t["task_name"] for t in children(runtime, child)] == ["first_sum", "scale"]


def test_task_with_invalid_parameters_fails_the_task_not_the_engine(make_runtime):
    runtime = make_runtime(FIXTURE_PACKS / "svctest")
    record = run(runtime, "svctest.bad_task")
    assert record["status"] == "failed"
    (failed,) = children(runtime, record)
    assert failed["status"] == "failed"
    assert "parameter 'seconds'" in failed["result"]["error"]


def test_workflow_input_is_validated_before_anything_runs(runtime):
    from st2lite.params import ParameterValidationError

    with pytest.raises(ParameterValidationError, match="parameter 'a'"):
        runtime.execute("wftest.publish", {"a": "one"})


def test_start_compiles_the_packs_workflows_before_the_first_run(make_runtime):
    from st2lite import workflow

    rt = make_runtime(WFTEST)
    texts = {ref: (WFTEST / "actions" / a.entry_point).read_text()
             for ref, a in ((r, a) for r, a in rt.actions.items() if a.runner_type == "orquesta")}
    with workflow._compiled_lock:
        workflow._compiled.clear()  # what earlier tests ran is compiled already
    rt.start(sensors=False)
    rt.precompiler.join(timeout=120)
    assert not rt.precompiler.is_alive()
    assert texts and all(text in workflow._compiled for text in texts.values())
    record = rt.wait(rt.execute("wftest.publish", {"a": 1, "b": 2}), timeout=60)
    assert record["status"] == "succeeded" and record["result"]["output"]["sum"] == 3
