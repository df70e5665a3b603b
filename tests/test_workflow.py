"""WorkflowHost runs the wftest fixture pack's Orquesta workflows with the real conductor.

The launcher here plays the runtime's part: it runs the fixture pack's python actions
in-process (their real ``Action`` classes, with a datastore-backed action service over a
temporary SQLite ``KeyValueStore``), runs ``runner_type: orquesta`` actions as nested
``WorkflowHost``s, and treats ``core.noop`` as st2's no-op action.

    .venv/bin/python -m pytest tests/test_workflow.py -q
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from st2lite.workflow import (
    TaskActionRequest,
    WorkflowHost,
    WorkflowOutcome,
    WorkflowSpecError,
    inspect_workflow,
    load_workflow_spec,
)

REPO = Path(__file__).resolve().parents[1]
PACK_DIR = REPO / "tests" / "fixtures" / "packs" / "wftest"
ACTIONS_DIR = PACK_DIR / "actions"
PACK_ENV = REPO / "st2lite" / "pack_env"

# As the runtime does for pack code: st2's import paths, then the pack's actions/.
for path in (str(PACK_ENV), str(ACTIONS_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

from st2common.runners.base_action import Action  # noqa: E402

from st2lite.pack_env.pack_runtime.datastore import DatastoreService, KeyValueStore  # noqa: E402


def workflow_text(name: str) -> str:
    return (ACTIONS_DIR / "workflows" / f"{name}.yaml").read_text()


@dataclass
class Call:
    request: TaskActionRequest
    start: float
    end: float = 0.0
    status: str = ""
    result: Any = None


class PackLauncher:
    """Runs the fixture pack's actions; records every call with its timing."""

    def __init__(self, store: KeyValueStore, max_workers: int = 16) -> None:
        self.store = store
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers)
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._active = 0
        self.max_active: dict[str, int] = {}  # task_id -> most actions of it running at once
        self._active_by_task: dict[str, int] = {}
        self._classes: dict[str, type[Action]] = {}

    def __call__(self, request: TaskActionRequest) -> concurrent.futures.Future:
        return self.executor.submit(self._run, request)

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    def calls_of(self, task_id: str) -> list[Call]:
        return [c for c in self.calls if c.request.task_id == task_id]

    def task_order(self) -> list[str]:
        return [c.request.task_id for c in sorted(self.calls, key=lambda c: c.start)]

    def _action_class(self, name: str, entry_point: str) -> type[Action]:
        with self._lock:
            if name not in self._classes:
                spec = importlib.util.spec_from_file_location(
                    f"wftest_action_{name}", ACTIONS_DIR / entry_point
                )
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                classes = [
                    c
                    for c in vars(module).values()
                    if isinstance(c, type) and issubclass(c, Action) and c is not Action
                ]
                assert len(classes) == 1, f"{entry_point} should define one Action class"
                self._classes[name] = classes[0]
            return self._classes[name]

    def _run(self, request: TaskActionRequest) -> tuple[str, Any]:
        call = Call(request, start=time.time())
        with self._lock:
            self.calls.append(call)
            task = request.task_id
            self._active_by_task[task] = self._active_by_task.get(task, 0) + 1
            self.max_active[task] = max(self.max_active.get(task, 0), self._active_by_task[task])
        try:
            status, result = self._execute(request)
        finally:
            with self._lock:
                self._active_by_task[request.task_id] -= 1
        call.end, call.status, call.result = time.time(), status, result
        return status, result

    def _execute(self, request: TaskActionRequest) -> tuple[str, Any]:
        if request.action_ref == "core.noop":
            return "succeeded", {
                "failed": False,
                "succeeded": True,
                "return_code": 0,
                "stdout": "",
                "stderr": "",
            }
        pack, _, name = request.action_ref.partition(".")
        assert pack == "wftest", f"unexpected action {request.action_ref}"
        meta = yaml.safe_load((ACTIONS_DIR / f"{name}.yaml").read_text())
        params = {k: v["default"] for k, v in (meta.get("parameters") or {}).items() if "default" in v}
        params.update(request.parameters)
        if meta["runner_type"] == "orquesta":
            host = WorkflowHost((ACTIONS_DIR / meta["entry_point"]).read_text(), launch=self)
            outcome = host.run(params)
            return outcome.status, outcome.as_result()
        cls = self._action_class(name, meta["entry_point"])
        action = cls(config={}, action_service=DatastoreService(self.store, "wftest", cls.__name__))
        value = action.run(**params)
        succeeded = True
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
            succeeded, value = value
        result = {"result": value, "stdout": "", "stderr": "", "exit_code": 0}
        return ("succeeded" if succeeded else "failed"), result


@pytest.fixture
def store(tmp_path) -> KeyValueStore:
    return KeyValueStore(str(tmp_path / "datastore.sqlite"))


@pytest.fixture
def launcher(store):
    launcher = PackLauncher(store)
    yield launcher
    launcher.close()


def run_workflow(name_or_spec, launcher, inputs=None, **kwargs) -> tuple[WorkflowOutcome, list[dict]]:
    states: list[dict] = []
    spec = (
        workflow_text(name_or_spec)
        if isinstance(name_or_spec, str) and "\n" not in name_or_spec
        else name_or_spec
    )
    host = WorkflowHost(spec, launch=launcher, on_state=states.append, **kwargs)
    outcome = host.run(inputs or {})
    return outcome, states


# --------------------------------------------------------------------------------------------
# The fixture workflows
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "size", "taken", "skipped"),
    [(12, "big", "big", "small"), (10, "small", "small", "big"), (-3, "small", "small", "big")],
)
def test_branching_follows_the_true_condition(launcher, n, size, taken, skipped):
    outcome, _ = run_workflow("branching", launcher, {"n": n})
    assert outcome.status == "succeeded"
    assert outcome.output == {"size": size, "message": f"{n} is {size}"}
    assert launcher.task_order() == ["check", taken]
    assert launcher.calls_of(skipped) == []
    assert launcher.calls_of("check")[0].request.parameters == {"value": n}


@pytest.mark.parametrize(("a", "b"), [(1, 2), (5, 6)])
def test_published_values_flow_into_later_tasks(launcher, a, b):
    outcome, _ = run_workflow("publish", launcher, {"a": a, "b": b})
    total = (a + b) * 10
    assert outcome.status == "succeeded"
    assert outcome.output == {"sum": a + b, "total": total, "history": [a + b, total]}
    # scale's input was rendered from the published sum and the workflow var factor=10.
    assert launcher.calls_of("scale")[0].request.parameters == {"a": a + b, "b": (a + b) * 9}
    assert outcome.as_result() == {"output": outcome.output}


def test_retry_reruns_a_failing_task_until_it_succeeds(launcher, store):
    outcome, _ = run_workflow("retry", launcher, {"key": "db", "failures": 2})
    assert outcome.status == "succeeded"
    assert outcome.output == {"attempts": 3}
    assert [c.status for c in launcher.calls_of("unreliable")] == ["failed", "failed", "succeeded"]
    assert store.get("wftest.FlakyAction:flaky.db") == "3"


def test_retry_gives_up_after_its_count(launcher):
    outcome, _ = run_workflow("retry", launcher, {"key": "disk", "failures": 5})
    assert outcome.status == "failed"
    # One run plus `count: 2` retries, no more.
    assert [c.status for c in launcher.calls_of("unreliable")] == ["failed"] * 3
    # orquesta logs each failed attempt; then the output cannot render (nothing published).
    attempts = [e["result"]["result"]["attempt"] for e in outcome.errors if e.get("task_id") == "unreliable"]
    assert attempts == [1, 2, 3]
    assert "attempts" in outcome.errors[-1]["message"]
    assert outcome.as_result()["errors"] == outcome.errors


def test_parallel_branches_run_together_and_join(launcher):
    seconds = 0.4
    started = time.monotonic()
    outcome, _ = run_workflow("join", launcher, {"seconds": seconds})
    elapsed = time.monotonic() - started
    assert outcome.status == "succeeded"
    left, right = outcome.output["left"], outcome.output["right"]
    assert (left["tag"], right["tag"]) == ("left", "right")
    # The branches overlapped in time, and the join ran once, after both.
    assert left["start"] < right["end"] and right["start"] < left["end"]
    assert elapsed < 2 * seconds
    (merge,) = launcher.calls_of("merge")
    assert merge.start >= max(left["end"], right["end"])
    assert outcome.output["joined"] == ["left", "right"]
    assert launcher.task_order()[0] == "start"


def test_with_items_respects_concurrency_and_keeps_item_order(launcher):
    tags = ["a", "b", "c", "d", "e"]
    outcome, _ = run_workflow("with_items", launcher, {"tags": tags, "seconds": 0.15, "concurrency": 2})
    assert outcome.status == "succeeded"
    assert [r["tag"] for r in outcome.output["results"]] == tags
    calls = launcher.calls_of("each")
    assert sorted(c.request.item_id for c in calls) == [0, 1, 2, 3, 4]
    assert {c.request.item_id: c.request.parameters["tag"] for c in calls} == dict(enumerate(tags))
    assert launcher.max_active["each"] == 2


def test_with_items_without_limit_runs_all_at_once(launcher):
    outcome, _ = run_workflow(
        "with_items", launcher, {"tags": ["x", "y", "z"], "seconds": 0.2, "concurrency": None}
    )
    assert outcome.status == "succeeded"
    assert launcher.max_active["each"] == 3


def test_with_items_over_an_empty_list_succeeds_without_actions(launcher):
    outcome, _ = run_workflow("with_items", launcher, {"tags": []})
    assert outcome.status == "succeeded"
    assert outcome.output == {"results": []}
    assert launcher.calls == []


def test_with_items_task_is_retried_as_a_whole(launcher, store):
    spec = {
        "version": 1.0,
        "input": ["keys"],
        "tasks": {
            "each": {
                "with": {"items": "key in <% ctx().keys %>"},
                "action": "wftest.flaky",
                "input": {"key": "<% item(key) %>", "failures": 1},
                "retry": {"when": "<% failed() %>", "count": 1},
                "next": [
                    {
                        "when": "<% succeeded() %>",
                        "publish": [{"attempts": "<% result().select($.result.attempt) %>"}],
                    }
                ],
            }
        },
        "output": [{"attempts": "<% ctx().attempts %>"}],
    }
    outcome, _ = run_workflow(spec, launcher, {"keys": ["p", "q", "r"]})
    assert outcome.status == "succeeded"
    # All items start together and each fails once; the retry runs every item again.
    # (With a concurrency limit, orquesta fails the task as soon as no item is active, so
    # how many items ran before the retry would depend on timing.)
    assert outcome.output == {"attempts": [2, 2, 2]}
    assert sorted(c.request.item_id for c in launcher.calls_of("each")) == [0, 0, 1, 1, 2, 2]
    assert [store.get(f"wftest.FlakyAction:flaky.{k}") for k in "pqr"] == ["2", "2", "2"]


def test_handled_failure_continues_the_workflow(launcher):
    outcome, _ = run_workflow("handled_failure", launcher, {"reason": "disk full"})
    assert outcome.status == "succeeded"
    assert outcome.output == {"error": "disk full", "recovered": True}
    assert launcher.task_order() == ["attempt", "recover"]
    assert launcher.calls_of("recover")[0].request.action_ref == "core.noop"
    assert "errors" not in outcome.as_result()


def test_unhandled_failure_fails_the_workflow_with_orquesta_errors(launcher):
    outcome, _ = run_workflow("unhandled_failure", launcher, {"reason": "no quorum"})
    assert outcome.status == "failed"
    assert launcher.task_order() == ["prepare", "break_it"]
    result = outcome.as_result()
    # Output is still rendered on failure (orquesta renders it in every completed status).
    assert result["output"] == {"prepared": "prepared"}
    (error,) = result["errors"]
    assert error["task_id"] == "break_it"
    assert error["message"] == "Execution failed. See result for details."
    assert error["result"]["result"] == {"reason": "no quorum"}


def test_output_is_rendered_with_yaql_jinja_and_the_st2_context(launcher):
    # The keys st2's orquesta runner puts under ctx().st2 (_construct_st2_context).
    st2 = {
        "action_execution_id": "5f00d1",
        "user": "stanley",
        "pack": "wftest",
        "action": "wftest.output",
        "runner": "orquesta",
        "api_url": "http://127.0.0.1:9101/v1",
    }
    outcome, _ = run_workflow("output", launcher, {"name": "aegis"}, st2_context=st2)
    assert outcome.status == "succeeded"
    assert outcome.output == {
        "message": "hello aegis",
        "length": 11,
        "shout": "HELLO AEGIS",
        "summary": "hello aegis (11 chars)",
        "user": "stanley",
        "execution_id": "5f00d1",
    }


def test_nested_workflow_is_a_task_whose_result_has_the_child_output(launcher):
    outcome, _ = run_workflow("nested", launcher, {"a": 3, "b": 4})
    assert outcome.status == "succeeded"
    assert outcome.output == {"child_total": 70, "doubled": 140}
    (child,) = launcher.calls_of("child")
    assert child.request.action_ref == "wftest.publish"
    assert child.result == {"output": {"sum": 7, "total": 70, "history": [7, 70]}}
    # The child's own tasks went through the same launcher.
    assert [c.request.task_id for c in launcher.calls if c.request.task_id in ("first_sum", "scale")] == [
        "first_sum",
        "scale",
    ]


@pytest.mark.parametrize(
    ("command", "status", "output"),
    [
        ("fail", "failed", {"route": "failing", "marked": False}),
        ("noop", "succeeded", {"route": "noop", "marked": False}),
        ("continue", "succeeded", {"route": "continued", "marked": True}),
    ],
)
def test_engine_commands_and_actionless_tasks(launcher, command, status, output):
    outcome, _ = run_workflow("engine_commands", launcher, {"command": command})
    assert outcome.status == status
    assert outcome.output == output
    # The action-less `marker` task is the engine's: nothing was launched for it.
    assert launcher.task_order() == ["decide"]
    if command == "fail":
        assert [e.get("task_id") for e in outcome.errors] == ["fail"]


def test_task_delay_is_honoured(launcher):
    started = time.time()
    outcome, _ = run_workflow("delay", launcher, {"seconds": 1})
    assert outcome.status == "succeeded"
    assert outcome.output["started"] - started >= 1.0
    assert launcher.calls_of("later")[0].request.delay == 1.0


# --------------------------------------------------------------------------------------------
# Host behaviour: launch errors, state, threads, cancel
# --------------------------------------------------------------------------------------------

GUARDED = {
    "version": 1.0,
    "tasks": {
        "risky": {
            "action": "wftest.echo",
            "input": {"value": "x"},
            "next": [
                {"when": "<% succeeded() %>", "publish": [{"outcome": "ok"}]},
                # `noop` marks the failure handled; `continue` (the default) would not.
                {"when": "<% failed() %>", "publish": [{"outcome": "<% result().error %>"}], "do": "noop"},
            ],
        }
    },
    "output": [{"outcome": "<% ctx().outcome %>"}],
}


def test_an_exception_in_launch_is_a_failed_task_not_a_crash(launcher):
    def exploding_launch(request):
        raise RuntimeError("runner pool is gone")

    outcome, _ = run_workflow(GUARDED, exploding_launch)
    assert outcome.status == "succeeded"  # the definition handles the failure
    assert outcome.output == {"outcome": "RuntimeError: runner pool is gone"}


def test_a_future_that_raises_is_a_failed_task(launcher):
    pool = concurrent.futures.ThreadPoolExecutor(1)

    def broken(request):
        raise OSError("worker died")

    try:
        outcome, _ = run_workflow(GUARDED, lambda req: pool.submit(broken, req))
    finally:
        pool.shutdown()
    assert outcome.output == {"outcome": "OSError: worker died"}

    # Unhandled, the same failure fails the workflow with the error as the task result.
    unguarded = json.loads(json.dumps(GUARDED))
    unguarded["tasks"]["risky"].pop("next")
    del unguarded["output"]
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        outcome, _ = run_workflow(unguarded, lambda req: pool.submit(broken, req))
    finally:
        pool.shutdown()
    assert outcome.status == "failed"
    assert outcome.errors[0]["task_id"] == "risky"
    assert outcome.errors[0]["result"]["error"] == "OSError: worker died"
    assert "Traceback" in outcome.errors[0]["result"]["traceback"]


def test_a_non_final_status_from_the_launcher_fails_the_task():
    done = concurrent.futures.Future()
    done.set_result(("running", {}))
    outcome, _ = run_workflow(GUARDED, lambda req: done)
    assert "not a completed st2 status" in outcome.output["outcome"]


def test_serialized_state_is_delivered_and_restores_the_conductor(launcher):
    from orquesta import conducting

    outcome, states = run_workflow("publish", launcher, {"a": 2, "b": 3})
    assert outcome.status == "succeeded"
    assert len(states) >= 4
    # Every state is plain JSON (the runtime stores it), and no two in a row are equal.
    for state in states:
        json.dumps(state)
    assert all(a != b for a, b in zip(states, states[1:], strict=False))
    seen = [s["state"]["status"] for s in states]
    assert seen[0] == "requested" and "running" in seen and seen[-1] == "succeeded"
    last = conducting.WorkflowConductor.deserialize(states[-1])
    assert last.get_workflow_status() == "succeeded"
    assert last.get_workflow_output() == outcome.output
    tasks = [t["id"] for t in last.workflow_state.sequence]
    # scale's transition has no `do`, so orquesta records the implicit `continue` command.
    assert tasks == ["first_sum", "scale", "continue"]
    # A state taken mid-run restores too: scale running, first_sum done.
    mid = next(
        s for s in states if [t.get("status") for t in s["state"]["sequence"]] == ["succeeded", "running"]
    )
    restored = conducting.WorkflowConductor.deserialize(mid)
    assert restored.get_workflow_status() == "running"
    assert restored.get_task_state_entry("scale", 0)["status"] == "running"


def test_a_failing_on_state_callback_does_not_stop_the_workflow(launcher):
    calls = []

    def on_state(state):
        calls.append(state["state"]["status"])
        raise OSError("history database is locked")

    outcome = WorkflowHost(workflow_text("publish"), launch=launcher, on_state=on_state).run({})
    assert outcome.status == "succeeded"
    assert calls[-1] == "succeeded"


def test_several_workflows_run_at_once_in_threads(launcher):
    results: dict[int, WorkflowOutcome] = {}

    def one(i):
        results[i] = run_workflow("publish", launcher, {"a": i, "b": 1})[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == list(range(6))
    for i, outcome in results.items():
        assert outcome.status == "succeeded"
        assert outcome.output["total"] == (i + 1) * 10


def test_cancel_stops_the_workflow_after_running_actions(launcher):
    host = WorkflowHost(workflow_text("join"), launch=launcher)
    timer = threading.Timer(0.2, host.cancel)
    timer.start()
    outcome = host.run({"seconds": 0.5})
    assert outcome.status == "canceled"
    assert launcher.calls_of("merge") == []
    assert "errors" not in outcome.as_result()


def test_a_failing_vars_expression_fails_the_workflow_before_any_task(launcher):
    spec = {
        "version": 1.0,
        "input": ["n"],
        "vars": [{"half": "<% ctx().n.missing %>"}],
        "tasks": {"t": {"action": "core.noop"}},
    }
    outcome, _ = run_workflow(spec, launcher, {"n": 4})
    assert outcome.status == "failed"
    assert outcome.errors and "missing" in outcome.errors[0]["message"]
    assert launcher.calls == []


def test_a_failing_output_expression_fails_the_workflow(launcher):
    spec = {
        "version": 1.0,
        "input": ["n"],
        "tasks": {"t": {"action": "core.noop"}},
        "output": [{"bad": "<% ctx().n.missing %>"}],
    }
    outcome, _ = run_workflow(spec, launcher, {"n": 4})
    assert outcome.status == "failed"
    assert "missing" in outcome.errors[-1]["message"]


def test_a_host_runs_once(launcher):
    host = WorkflowHost(workflow_text("publish"), launch=launcher)
    host.run({})
    with pytest.raises(RuntimeError, match="once"):
        host.run({})


# --------------------------------------------------------------------------------------------
# Inspection
# --------------------------------------------------------------------------------------------


def pack_action_exists(ref: str) -> bool:
    pack, _, name = ref.partition(".")
    return ref == "core.noop" or (pack == "wftest" and (ACTIONS_DIR / f"{name}.yaml").exists())


@pytest.mark.parametrize("path", sorted((ACTIONS_DIR / "workflows").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_fixture_workflow_is_valid_and_has_metadata(path):
    assert inspect_workflow(path.read_text(), action_exists=pack_action_exists) == []
    meta = yaml.safe_load((ACTIONS_DIR / f"{path.stem}.yaml").read_text())
    assert meta["runner_type"] == "orquesta"
    assert meta["entry_point"] == f"workflows/{path.name}"
    # The metadata declares every input the workflow takes.
    spec = yaml.safe_load(path.read_text())
    inputs = {next(iter(i)) if isinstance(i, dict) else i for i in spec.get("input", [])}
    assert inputs == set(meta.get("parameters") or {})


BROKEN = {
    "bad_yaql": (
        "version: 1.0\ntasks:\n  a:\n    action: core.echo\n    input:\n      message: <% ctx().x + %>\n",
        ["tasks.a.input: Parse error"],
    ),
    "unknown_task": (
        "version: 1.0\ntasks:\n  a:\n    action: core.noop\n    next:\n      - do: nowhere\n",
        ['tasks.a.next[0].do: The task "nowhere" is not defined.'],
    ),
    "missing_version": (
        "tasks:\n  a:\n    action: core.noop\n",
        ["version: 'version' is a required property"],
    ),
    "undefined_variable": (
        "version: 1.0\ntasks:\n  a:\n    action: core.echo message=<% ctx().who %>\n",
        ['tasks.a.input: Variable "who" is referenced before assignment.'],
    ),
    "bare_word_inline_param": (
        "version: 1.0\ntasks:\n  a:\n    action: core.echo message=hi\n",
        ['tasks.a.action: The action reference "core.echo message=hi" is not formatted correctly.'],
    ),
    "not_yaml": ("version: [1.0\n", ["(root): invalid YAML"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_inspection_reports_errors_with_spec_paths(case):
    text, expected = BROKEN[case]
    errors = inspect_workflow(text)
    for prefix in expected:
        assert any(e.startswith(prefix) for e in errors), (prefix, errors)
    with pytest.raises(WorkflowSpecError) as info:
        load_workflow_spec(text)
    assert [f"{e.get('spec_path') or '(root)'}: {e['message']}" for e in info.value.errors] == errors
    assert info.value.as_result()["output"] is None


def test_unregistered_actions_are_reported_when_asked():
    text = "version: 1.0\ntasks:\n  a:\n    action: wftest.nope\n"
    assert inspect_workflow(text) == []
    assert inspect_workflow(text, action_exists=pack_action_exists) == [
        'tasks.a.action: The action "wftest.nope" is not registered.'
    ]


def test_st2_context_is_known_to_inspection_and_more_can_be_declared():
    text = (
        "version: 1.0\ntasks:\n  a:\n    action: core.echo message=<% ctx().st2.user %> x=<% ctx().extra %>\n"
    )
    assert inspect_workflow(text) == ['tasks.a.input: Variable "extra" is referenced before assignment.']
    assert inspect_workflow(text, app_ctx={"st2": {}, "extra": 1}) == []


def test_host_refuses_an_invalid_definition(launcher):
    with pytest.raises(WorkflowSpecError, match="nowhere"):
        WorkflowHost(BROKEN["unknown_task"][0], launch=launcher)


def test_a_definition_is_compiled_once_and_runs_are_independent(launcher):
    """Hosts of the same text share the parsed spec (inspection and composition happen once)
    but each conductor has its own graph and state; an edited text is inspected again."""
    text = workflow_text("publish")
    first, second = WorkflowHost(text, launch=launcher), WorkflowHost(text, launch=launcher)
    assert first.spec is second.spec
    one, two = first.run({"a": 1, "b": 2}), second.run({"a": 5, "b": 6})
    assert one.output["sum"] == 3 and two.output["sum"] == 11
    assert first.conductor.graph is not second.conductor.graph
    # the cached graph is what the conductor would compose itself
    fresh = WorkflowHost(load_workflow_spec(text), launch=launcher)
    assert fresh.run({"a": 1, "b": 2}).output == one.output
    assert fresh.conductor.graph.serialize() == first.conductor.graph.serialize()
    edited = text.replace("version: 1.0", "version: 1.0\n# edited", 1)
    assert WorkflowHost(edited, launch=launcher).spec is not first.spec
    with pytest.raises(WorkflowSpecError, match="nowhere"):
        WorkflowHost(BROKEN["unknown_task"][0], launch=launcher)
    with pytest.raises(WorkflowSpecError, match="nowhere"):  # a refusal is not cached as a success
        WorkflowHost(BROKEN["unknown_task"][0], launch=launcher)


LOOP_THEN_JOIN = """
version: 1.0
input:
  - n
vars:
  - i: 0
  - seen: []
tasks:
  init:
    action: core.noop
    next:
      - do: step
  # step has two inbound transitions (init and itself): a split task inside a cycle
  step:
    action: core.noop
    next:
      - when: <% ctx().i < ctx().n %>
        publish:
          - seen: <% ctx().seen + list(ctx().i) %>
          - i: <% ctx().i + 1 %>
        do: step
      - when: <% ctx().i >= ctx().n %>
        do:
          - left
          - right
  left:
    action: core.noop
    next:
      - do: joined
  right:
    action: core.noop
    next:
      - do: joined
  joined:
    join: all
    action: core.noop
output:
  - seen: <% ctx().seen %>
"""


def test_a_compiled_cycle_routes_like_the_conductors_own_graph(launcher):
    """The cycles found at compile time answer in_cycle as orquesta would: a split task inside
    a loop keeps its route, so both hosts record the same tasks on the same routes."""
    compiled = WorkflowHost(LOOP_THEN_JOIN, launch=launcher)
    plain = WorkflowHost(load_workflow_spec(LOOP_THEN_JOIN), launch=launcher)
    a, b = compiled.run({"n": 3}), plain.run({"n": 3})
    assert a.status == b.status == "succeeded"
    assert a.output == b.output == {"seen": [0, 1, 2]}

    def trail(host):
        return [(t["id"], t["route"], t["status"]) for t in host.conductor.workflow_state.sequence]

    assert trail(compiled) == trail(plain)
    assert [t for t, _, _ in trail(compiled)].count("step") == 4
    assert compiled.conductor.graph.in_cycle("step") and not compiled.conductor.graph.in_cycle("left")
