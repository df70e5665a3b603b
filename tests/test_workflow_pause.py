"""Pause, resume and cancel of workflows, and inquiries (core.ask), without the CLI.

The host level (``WorkflowHost``: pending tasks pause the workflow; a saved state resumes)
and the runtime level (``runtime.control``, ``runtime.inquiries``: st2's semantics, the
garbage collector's ttl in minutes, a restart between question and answer).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest
from conftest import FIXTURE_PACKS, wait_for

from st2lite.control import ControlError
from st2lite.workflow import WorkflowHost

ASK = """
version: 1.0
tasks:
  ask:
    action: core.ask
    next:
      - when: <% succeeded() %>
        publish: [answer: <% result().response %>]
        do: done
      - when: <% failed() %>
        do: expired
  other:
    action: slow.task
  done:
    action: core.noop
  expired:
    action: core.noop
output:
  - answer: <% ctx().get(answer) %>
"""


class Launcher:
    """core.ask answers pending; slow.task waits for ``release``; anything else succeeds."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []
        self.pool = concurrent.futures.ThreadPoolExecutor(4)

    def __call__(self, request) -> concurrent.futures.Future:
        self.started.append(request.task_id)
        if request.action_ref == "core.ask":
            future: concurrent.futures.Future = concurrent.futures.Future()
            future.set_result(("pending", {"schema": {}}))
            return future
        if request.action_ref == "slow.task":
            return self.pool.submit(lambda: (self.release.wait(30), ("succeeded", {"slow": True}))[1])
        future = concurrent.futures.Future()
        future.set_result(("succeeded", {}))
        return future


def host(spec: str, launcher: Launcher, saved: dict, state: dict | None = None) -> WorkflowHost:
    return WorkflowHost(spec, launch=launcher, on_state=lambda s: saved.update(state=s), state=state)


def test_a_pending_task_pauses_the_workflow_and_its_answer_resumes_it() -> None:
    launcher, saved = Launcher(), {}
    spec = ASK.replace("  other:\n    action: slow.task\n", "")
    outcome = host(spec, launcher, saved).run({})
    assert outcome.status == "paused"
    tasks = {t["id"]: t["status"] for t in saved["state"]["state"]["sequence"]}
    assert tasks == {"ask": "pending"} and saved["state"]["state"]["status"] == "paused"
    # Resumed without the answer: paused again, nothing lost.
    assert host(spec, launcher, saved, saved["state"]).resume([]).status == "paused"
    resumed = host(spec, launcher, saved, saved["state"]).resume([("ask", 0, "succeeded", {"response": {"go": 1}})])
    assert resumed.status == "succeeded" and resumed.output == {"answer": {"go": 1}}
    assert launcher.started == ["ask", "done"]


def test_a_timed_out_question_takes_the_failure_branch() -> None:
    launcher, saved = Launcher(), {}
    spec = ASK.replace("  other:\n    action: slow.task\n", "")
    host(spec, launcher, saved).run({})
    outcome = host(spec, launcher, saved, saved["state"]).resume([("ask", 0, "timeout", {"schema": {}})])
    assert outcome.status == "succeeded" and outcome.output == {"answer": None}
    assert launcher.started == ["ask", "expired"]


def test_an_answer_reaches_a_host_still_running_another_branch() -> None:
    launcher, saved = Launcher(), {}
    h = host(ASK, launcher, saved)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(h.run({})))
    thread.start()
    wait_for(lambda: saved.get("state") and {t["id"]: t["status"] for t in saved["state"]["state"]["sequence"]}
             .get("ask") == "pending", what="the question to be pending")  # fmt: skip
    assert saved["state"]["state"]["status"] == "pausing"  # the other branch still runs
    assert h.deliver([("ask", 0, "succeeded", {"response": {"go": 2}})])
    launcher.release.set()
    thread.join(30)
    assert result[0].status == "succeeded" and result[0].output == {"answer": {"go": 2}}
    assert not h.deliver([])  # a finished host takes nothing


def test_pause_lets_running_actions_finish_and_starts_nothing_new() -> None:
    spec = """
version: 1.0
tasks:
  first:
    action: slow.task
    next:
      - do: second
  second:
    action: core.noop
"""
    launcher, saved = Launcher(), {}
    h = host(spec, launcher, saved)
    result: list = []
    thread = threading.Thread(target=lambda: result.append(h.run({})))
    thread.start()
    wait_for(lambda: launcher.started == ["first"], what="the first task")
    h.pause()
    wait_for(lambda: saved["state"]["state"]["status"] == "pausing", what="pausing")
    launcher.release.set()
    thread.join(30)
    assert result[0].status == "paused" and launcher.started == ["first"]
    assert host(spec, launcher, saved, saved["state"]).resume().status == "succeeded"
    assert launcher.started == ["first", "second"]
    # A paused workflow is canceled from its saved state too.
    launcher2, saved2 = Launcher(), {}
    h2 = host(spec, launcher2, saved2)
    h2.pause()
    launcher2.release.set()
    assert h2.run({}).status == "paused"
    assert host(spec, launcher2, saved2, saved2["state"]).resume(cancel=True).status == "canceled"


@pytest.fixture
def apitest(make_runtime, tmp_path):
    runtime = make_runtime(FIXTURE_PACKS / "apitest", home=tmp_path / "home")
    runtime.inquiries.interval = 0
    runtime.start(sensors=False)
    return runtime


def _paused_approval(runtime, ref: str = "apitest.approval", **params) -> tuple[str, str]:
    wf = runtime.execute(ref, params, context={"user": "alice"})
    assert runtime.wait(wf, 60)["status"] == "paused"
    question = wait_for(lambda: runtime.inquiries.list(), what="the inquiry")[0]
    return wf, question["id"]


def test_runtime_inquiry_validation_permissions_and_expiry(apitest) -> None:
    runtime = apitest
    wf, inquiry = _paused_approval(runtime, ttl=5)
    with pytest.raises(ControlError) as bad:
        runtime.inquiries.respond(inquiry, {"reason": "no approved field"}, user="alice")
    assert bad.value.status == 400 and "schema validation" in str(bad.value)
    assert runtime.inquiries.expire(now=time.time() + 5 * 60) == []  # st2: only past ttl whole minutes
    assert runtime.inquiries.expire(now=time.time() + 6 * 60 + 1) == [inquiry]
    done = wait_for(lambda: runtime.records.get_execution(wf)["status"] == "succeeded" and runtime.records.get_execution(wf),
                    what="the workflow to take its timeout branch")  # fmt: skip
    assert done["result"]["output"]["outcome"] == "expired"
    with pytest.raises(ControlError) as late:
        runtime.inquiries.respond(inquiry, {"approved": True}, user="alice")
    assert "timed out" in str(late.value)


def test_a_new_inquiry_dispatches_st2s_inquiry_trigger(apitest) -> None:
    runtime = apitest
    _wf, inquiry = _paused_approval(runtime)
    notice = wait_for(lambda: runtime.records.list_executions(action="core.echo"), what="the rule on the inquiry trigger")[0]
    assert notice["rule"] == "apitest.notify_inquiry"
    assert runtime.wait(notice["id"], 30)["result"] == {"stdout": f"inquiry {inquiry} waits for an answer"}
    ti = runtime.records.get_trigger_instance(notice["trigger_instance_id"])
    assert ti["trigger"] == "core.st2.generic.inquiry" and ti["payload"] == {"id": inquiry, "route": "approvals"}


def test_only_the_listed_users_may_answer(apitest) -> None:
    runtime = apitest
    out = runtime.execute("core.ask", {"users": ["bob"], "ttl": 10})
    assert runtime.wait(out, 30)["status"] == "pending"
    with pytest.raises(ControlError) as refused:
        runtime.inquiries.respond(out, {"continue": True}, user="alice")
    assert refused.value.status == 403
    runtime.inquiries.respond(out, {"continue": True}, user="bob")
    record = runtime.records.get_execution(out)
    assert record["status"] == "succeeded" and record["result"]["response"] == {"continue": True}
    assert record["result"]["schema"]["properties"]["continue"]["type"] == "boolean"  # st2's default schema


def test_an_inquiry_in_a_subworkflow_pauses_and_resumes_both(apitest) -> None:
    runtime = apitest
    wf = runtime.execute("apitest.nested_approval", {})
    assert runtime.wait(wf, 60)["status"] == "paused"
    question = wait_for(lambda: runtime.inquiries.list(), what="the inquiry")[0]
    sub = runtime.records.get_execution(question["id"])["parent"]
    assert runtime.records.get_execution(sub)["status"] == "paused"
    runtime.inquiries.respond(question["id"], {"approved": True}, user="stanley")
    done = wait_for(lambda: runtime.records.get_execution(wf)["status"] in ("succeeded", "failed")
                    and runtime.records.get_execution(wf), what="the parent workflow")  # fmt: skip
    assert done["status"] == "succeeded" and done["result"]["output"] == {"outcome": "approved"}
    assert runtime.records.get_execution(sub)["status"] == "succeeded"


def test_pause_and_resume_are_refused_in_the_wrong_state(apitest) -> None:
    runtime = apitest
    ex = runtime.execute("apitest.add", {"a": 1, "b": 1})
    runtime.wait(ex, 60)
    with pytest.raises(ControlError, match="does not support pause"):
        runtime.control.pause(ex)
    wf, _inquiry = _paused_approval(runtime)
    with pytest.raises(ControlError, match="not in a running state"):
        runtime.control.pause(wf)
    with pytest.raises(ControlError) as done:
        runtime.control.cancel(ex)
    assert done.value.status == 200 and "cannot be canceled" in str(done.value)
