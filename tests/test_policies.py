"""st2 action policies enforced by the runtime: concurrency (delay, cancel, per attribute), retry.

The runtime tests run the ``policytest`` fixture pack's python actions in real warm workers
(pack venv) and read what happened from the execution history; the ``PolicyEngine`` tests
drive the slot bookkeeping directly, from many threads.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from conftest import FIXTURE_PACKS, REPO, wait_for

from st2lite.loader import PolicyMeta, load_pack
from st2lite.policies import ExecutionRequest, PolicyEngine, PolicyError, build_policy

POLICYTEST = FIXTURE_PACKS / "policytest"


@pytest.fixture
def runtime(make_runtime):
    rt = make_runtime(packs_dir=POLICYTEST, workers_per_pack=4)
    rt.start(sensors=False)  # warm workers: timings below measure the policies, not start-up
    return rt


def ts(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def status(rt, ex_id: str) -> str:
    return rt.records.get_execution(ex_id)["status"]


def executions_of(rt, action: str) -> list[dict]:
    return rt.records.list_executions(action=action, newest_first=False, limit=100)


def overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


# -- concurrency -------------------------------------------------------------------------------


def test_concurrency_delay_runs_the_next_execution_when_the_slot_frees(runtime):
    first = runtime.execute("policytest.serial", {"seconds": 1, "tag": "first"})
    second = runtime.execute("policytest.serial", {"seconds": 1, "tag": "second"})
    third = runtime.execute("policytest.serial", {"seconds": 0.1, "tag": "third"})
    # Admission is decided before execute() returns.
    assert status(runtime, second) == "delayed"
    assert status(runtime, third) == "delayed"
    assert runtime.policies.occupancy()["policytest.serial.concurrency"] == {"held": 1, "delayed": 2}

    wait_for(lambda: status(runtime, second) == "running", timeout=20, what="the delayed execution to start")
    assert status(runtime, first) == "succeeded"
    assert status(runtime, third) == "delayed", "one slot: the third waits for the second"

    records = [runtime.wait(ex_id, timeout=30) for ex_id in (first, second, third)]
    assert [r["status"] for r in records] == ["succeeded"] * 3
    a, b, c = (r["result"]["result"] for r in records)
    assert [a["tag"], b["tag"], c["tag"]] == ["first", "second", "third"], (
        "delayed ones run first come, first served"
    )
    assert b["start"] >= a["end"] and c["start"] >= b["end"], "never two at once"
    assert runtime.policies.occupancy()["policytest.serial.concurrency"] == {"held": 0, "delayed": 0}


def test_concurrency_cancel_cancels_what_exceeds_the_threshold(runtime):
    first = runtime.execute("policytest.exclusive", {"seconds": 1})
    second = runtime.execute("policytest.exclusive", {"seconds": 1})
    refused = runtime.wait(second, timeout=5)
    assert refused["status"] == "canceled"
    assert refused["result"]["policy"] == "policytest.exclusive.concurrency"
    assert "canceled by policy policytest.exclusive.concurrency" in refused["result"]["error"]
    assert refused["end_timestamp"], "a canceled execution is completed"
    assert runtime.wait(first, timeout=30)["status"] == "succeeded"
    # The slot is free again: the next one runs.
    assert (
        runtime.wait(runtime.execute("policytest.exclusive", {"seconds": 0.1}), timeout=30)["status"]
        == "succeeded"
    )


def test_concurrency_attr_serializes_per_value_and_runs_different_values_in_parallel(runtime):
    a1 = runtime.execute("policytest.restart", {"target": "a", "seconds": 1, "tag": "a1"})
    b1 = runtime.execute("policytest.restart", {"target": "b", "seconds": 1, "tag": "b1"})
    a2 = runtime.execute("policytest.restart", {"target": "a", "seconds": 0.2, "tag": "a2"})
    default = runtime.execute("policytest.restart", {"seconds": 1, "tag": "default"})
    assert status(runtime, a2) == "delayed"
    assert status(runtime, b1) != "delayed" and status(runtime, default) != "delayed"

    records = {
        r["result"]["result"]["tag"]: r["result"]["result"]
        for r in (runtime.wait(x, timeout=30) for x in (a1, b1, a2, default))
    }
    assert overlap(records["a1"], records["b1"]), "different targets run in parallel"
    assert overlap(records["a1"], records["default"]), "the default value is a target of its own"
    assert records["a2"]["start"] >= records["a1"]["end"], "the same target waits"
    assert records["default"]["target"] == "default-target"


def test_concurrency_applies_to_the_tasks_of_a_workflow(runtime):
    record = runtime.wait(
        runtime.execute("policytest.serial_items", {"tags": ["x", "y", "z"], "seconds": 0.3}), timeout=60
    )
    assert record["status"] == "succeeded", record["result"]
    runs = sorted(record["result"]["output"]["runs"], key=lambda r: r["start"])
    assert sorted(r["tag"] for r in runs) == ["x", "y", "z"]
    assert all(later["start"] >= earlier["end"] for earlier, later in zip(runs, runs[1:], strict=False))


def test_disabled_policy_is_not_enforced(runtime):
    assert "policytest.unlimited.concurrency" in runtime.policies.disabled
    assert runtime.policies.for_action("policytest.unlimited") == []
    ids = [runtime.execute("policytest.unlimited", {"seconds": 1, "tag": str(i)}) for i in range(2)]
    records = [runtime.wait(x, timeout=30) for x in ids]
    assert [r["status"] for r in records] == ["succeeded", "succeeded"], (
        "a disabled cancel policy cancels nothing"
    )
    assert overlap(records[0]["result"]["result"], records[1]["result"]["result"])


# -- retry -------------------------------------------------------------------------------------


def no_retry_can_come(runtime, ex_id: str) -> None:
    """Wait until ``ex_id``'s post-run policies ran, then check no retry is scheduled.

    ``wait()`` returns after the retry decision (a retry without delay is on record by then;
    one with a delay is a pending timer until it is on record), so once no timer is pending
    every retry that will ever come is on record: a fact, not a guess after a sleep.
    """
    runtime.wait(ex_id, timeout=30)
    wait_for(lambda: runtime.policies.pending_retries() == 0, timeout=30, what="scheduled retries to be on record")


def test_retry_on_failure_reruns_as_new_executions_up_to_max_retry_count(runtime):
    key = f"exhausted-{uuid.uuid4().hex[:8]}"
    original = runtime.execute(
        "policytest.flaky",
        {"key": key, "failures": 10},
        rule="policytest.on_alert",
        trigger_instance_id="ti-1",
    )
    assert runtime.wait(original, timeout=30)["status"] == "failed"

    def three_done():
        runs = executions_of(runtime, "policytest.flaky")
        return runs if len(runs) == 3 and all(r["end_timestamp"] for r in runs) else None

    runs = wait_for(three_done, timeout=30, what="two retries")
    no_retry_can_come(runtime, runs[-1]["id"])
    assert len(executions_of(runtime, "policytest.flaky")) == 3
    assert [r["status"] for r in runs] == ["failed"] * 3, "the final status is the last retry's"
    assert [r["result"]["result"]["attempt"] for r in runs] == [1, 2, 3]
    assert "policies" not in runs[0]["context"]
    retries = [r["context"]["policies"]["retry"] for r in runs[1:]]
    assert retries == [
        {
            "applied_policy": "policytest.flaky.retry",
            "retry_count": 1,
            "retried_liveaction_id": runs[0]["id"],
        },
        {
            "applied_policy": "policytest.flaky.retry",
            "retry_count": 2,
            "retried_liveaction_id": runs[1]["id"],
        },
    ]
    for earlier, retry in zip(runs, runs[1:], strict=False):
        assert retry["parameters"] == {"key": key, "failures": 10}
        assert (retry["rule"], retry["trigger_instance_id"]) == ("policytest.on_alert", "ti-1")
        assert retry["context"]["user"] == earlier["context"]["user"]
        assert ts(retry["start_timestamp"]) - ts(earlier["end_timestamp"]) >= 0.45, (
            "the policy's delay: 0.5 s"
        )


def test_retry_stops_once_a_retry_succeeds(runtime):
    key = f"recovers-{uuid.uuid4().hex[:8]}"
    assert (
        runtime.wait(runtime.execute("policytest.flaky", {"key": key, "failures": 1}), timeout=30)["status"]
        == "failed"
    )
    runs = wait_for(
        lambda: (r := executions_of(runtime, "policytest.flaky")) and r[-1]["status"] == "succeeded" and r,
        timeout=30, what="the retry to succeed",
    )  # fmt: skip
    no_retry_can_come(runtime, runs[-1]["id"])
    assert [r["status"] for r in executions_of(runtime, "policytest.flaky")] == ["failed", "succeeded"]
    assert runs[-1]["context"]["policies"]["retry"]["retry_count"] == 1


def test_retry_on_timeout(runtime):
    original = runtime.wait(runtime.execute("policytest.hang", {"seconds": 5}), timeout=30)
    assert original["status"] == "timeout"
    runs = wait_for(
        lambda: (r := executions_of(runtime, "policytest.hang")) and len(r) == 2 and r[-1]["end_timestamp"] and r,
        timeout=30, what="the retry of the timed-out execution",
    )  # fmt: skip
    assert [r["status"] for r in runs] == ["timeout", "timeout"]
    assert runs[1]["context"]["policies"]["retry"]["retry_count"] == 1
    no_retry_can_come(runtime, runs[-1]["id"])
    assert len(executions_of(runtime, "policytest.hang")) == 2, "max_retry_count 1"
    # retry_on: timeout leaves an ordinary failure alone (and the failure policy on flaky is
    # another action's): a successful run is not retried either.
    succeeded = runtime.execute("policytest.hang", {"seconds": 0.1})
    assert runtime.wait(succeeded, timeout=30)["status"] == "succeeded"
    no_retry_can_come(runtime, succeeded)
    assert len(executions_of(runtime, "policytest.hang")) == 3


def test_retry_is_not_applied_to_a_task_inside_a_workflow(runtime):
    key = f"in-workflow-{uuid.uuid4().hex[:8]}"
    workflow = runtime.wait(
        runtime.execute("policytest.flaky_in_workflow", {"key": key, "failures": 1}), timeout=60
    )
    assert workflow["status"] == "failed"
    tasks = executions_of(runtime, "policytest.flaky")
    no_retry_can_come(runtime, tasks[0]["id"])
    tasks = executions_of(runtime, "policytest.flaky")
    assert len(tasks) == 1
    assert tasks[0]["parent"] == workflow["id"] and tasks[0]["status"] == "failed"
    assert "policies" not in tasks[0]["context"]


# -- the engine on its own -----------------------------------------------------------------------


def meta(
    name: str, policy_type: str, parameters: dict, enabled: bool = True, action: str = "p.act"
) -> PolicyMeta:
    return PolicyMeta(
        f"p.{name}", name, "p", action, policy_type, parameters, enabled, {}, Path(f"{name}.yaml")
    )


def request(ex_id: str, action: str = "p.act", **resolved) -> ExecutionRequest:
    return ExecutionRequest(ex_id, action, dict(resolved), dict(resolved), {"user": "stanley"})


@pytest.mark.parametrize(
    ("policy_type", "parameters", "message"),
    [
        ("action.concurrency", {}, "'threshold' is required"),
        ("action.concurrency", {"threshold": 0}, "threshold must be an integer >= 1"),
        ("action.concurrency", {"threshold": True}, "threshold must be an integer"),
        ("action.concurrency", {"threshold": 2, "action": "drop"}, "action must be 'delay' or 'cancel'"),
        ("action.concurrency.attr", {"threshold": 1}, "attributes must be a non-empty list"),
        ("action.retry", {"retry_on": "success"}, "retry_on must be 'failure' or 'timeout'"),
        ("action.retry", {"retry_on": "failure", "delay": -1}, "delay must be a number of seconds >= 0"),
        ("action.rate_limit", {}, "unknown policy type 'action.rate_limit'"),
    ],
)
def test_policies_that_cannot_be_enforced_are_rejected_with_the_reason(policy_type, parameters, message):
    with pytest.raises(PolicyError, match=message):
        build_policy(meta("bad", policy_type, parameters))
    engine = PolicyEngine([meta("bad", policy_type, parameters)])
    assert engine.enforced == [] and engine.rejected[0][0] == "p.bad"


def test_threshold_zero_with_cancel_cancels_everything():
    engine = PolicyEngine([meta("off", "action.concurrency", {"threshold": 0, "action": "cancel"})])
    assert engine.before_run(request("1"), start=lambda: None, on_delayed=lambda: None).status == "canceled"


def test_delayed_executions_start_in_arrival_order():
    engine = PolicyEngine([meta("c", "action.concurrency", {"threshold": 2})])
    started: list[str] = []
    admissions = {}
    for i in range(6):
        ex = str(i)
        admissions[ex] = engine.before_run(
            request(ex), start=lambda ex=ex: started.append(ex), on_delayed=lambda: None
        )
    assert [admissions[str(i)].status for i in range(6)] == ["scheduled"] * 2 + ["delayed"] * 4
    assert engine.after_run(request("1"), "succeeded") == ["2"]
    assert engine.after_run(request("0"), "failed") == ["3"]
    assert engine.after_run(request("2"), "succeeded") == ["4"]
    assert started == ["2", "3", "4"]
    assert engine.occupancy() == {"p.c": {"held": 2, "delayed": 1}}
    assert engine.close() == ["5"]
    assert engine.after_run(request("3"), "succeeded") == [], "nothing starts after close"
    engine.before_run(request("6"), start=lambda: None, on_delayed=lambda: None)  # takes the freed slot
    late = engine.before_run(request("7"), start=lambda: None, on_delayed=lambda: None)
    assert late.status == "canceled" and "stopping" in late.message, "never left waiting for nothing"


def test_threshold_holds_under_many_threads():
    threshold, total = 3, 60
    engine = PolicyEngine([
        meta("c", "action.concurrency", {"threshold": threshold}),
        meta("per_host", "action.concurrency.attr", {"threshold": 1, "attributes": ["host"]}),
    ])  # fmt: skip
    lock = threading.Lock()
    running: set[str] = set()
    peak = {"all": 0}
    finished = threading.Semaphore(0)

    def run(req: ExecutionRequest) -> None:
        with lock:
            hosts = [r.resolved["host"] for r in running_reqs.values()]
            assert req.resolved["host"] not in hosts, "two executions on one host at once"
            running.add(req.id)
            running_reqs[req.id] = req
            peak["all"] = max(peak["all"], len(running))
        time.sleep(0.002)
        with lock:
            running.discard(req.id)
            running_reqs.pop(req.id)
        engine.after_run(req, "succeeded")
        finished.release()

    running_reqs: dict[str, ExecutionRequest] = {}

    def submit(i: int) -> None:
        req = request(str(i), host=f"h{i % 5}")
        admission = engine.before_run(
            req, start=lambda: threading.Thread(target=run, args=(req,)).start(), on_delayed=lambda: None
        )
        if admission.status == "scheduled":
            threading.Thread(target=run, args=(req,)).start()

    submitters = [threading.Thread(target=submit, args=(i,)) for i in range(total)]
    for t in submitters:
        t.start()
    for t in submitters:
        t.join()
    for _ in range(total):
        assert finished.acquire(timeout=10), "an execution was never started"
    assert 1 <= peak["all"] <= threshold
    assert engine.occupancy() == {"p.c": {"held": 0, "delayed": 0}, "p.per_host": {"held": 0, "delayed": 0}}


def test_retry_context_counts_from_the_retried_execution():
    calls = []
    engine = PolicyEngine(
        [meta("r", "action.retry", {"retry_on": "failure", "max_retry_count": 1})],
        resubmit=lambda req, ctx: calls.append(ctx),
    )
    engine.after_run(request("orig"), "succeeded")
    engine.after_run(request("orig"), "timeout")
    assert calls == [], "retry_on: failure retries failures only"
    engine.after_run(request("orig"), "failed")
    assert calls == [
        {
            "user": "stanley",
            "policies": {
                "retry": {"applied_policy": "p.r", "retry_count": 1, "retried_liveaction_id": "orig"}
            },
        }
    ]
    retried = ExecutionRequest("again", "p.act", {}, {}, calls[0])
    engine.after_run(retried, "failed")
    assert len(calls) == 1, "max_retry_count reached"
    task = ExecutionRequest("task", "p.act", {}, {}, {"parent": {"execution_id": "wf"}}, parent="wf")
    engine.after_run(task, "failed")
    assert len(calls) == 1, "no retry policy for workflow tasks"


def test_aegis_diagnose_is_bounded_by_its_concurrency_policy():
    engine = PolicyEngine.from_packs([load_pack(REPO / "packs" / "aegis")])
    assert {"ref": "aegis.diagnose_concurrency", "policy_type": "action.concurrency", "resource_ref": "aegis.diagnose",
            "threshold": 4, "action": "delay"} in engine.describe()  # fmt: skip
    assert engine.rejected == []


def test_a_delayed_execution_that_cannot_start_passes_its_slot_on():
    engine = PolicyEngine([meta("c", "action.concurrency", {"threshold": 1})])
    started = []

    def broken() -> None:
        raise RuntimeError("no thread for you")

    assert engine.before_run(request("0"), start=lambda: None, on_delayed=lambda: None).status == "scheduled"
    engine.before_run(request("1"), start=broken, on_delayed=lambda: None)
    engine.before_run(request("2"), start=lambda: started.append("2"), on_delayed=lambda: None)
    assert engine.after_run(request("0"), "succeeded") == ["2"]
    assert started == ["2"] and engine.occupancy() == {"p.c": {"held": 1, "delayed": 0}}
