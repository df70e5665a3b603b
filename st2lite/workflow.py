"""The host around orquesta's conductor: runs an Orquesta workflow as st2's workflow engine does.

st2 splits this between ``st2common/services/workflows.py`` and the ``st2workflowengine``
service; st2lite keeps one host per workflow execution, in one thread, around the real
``orquesta.conducting.WorkflowConductor`` (orquesta 1.2.0). The conductor decides everything
that is workflow semantics (transitions, ``when``, ``publish``, ``join``, ``retry``,
``with`` items and concurrency, engine commands, output); the host only requests tasks,
launches their actions and feeds the action results back, as st2 does.

    def launch(req: TaskActionRequest) -> concurrent.futures.Future:
        # the runtime records a child execution and runs req.action_ref with req.parameters
        return executor.submit(run_action, req.action_ref, req.parameters)  # -> (status, result)

    host = WorkflowHost(open("actions/workflows/deploy.yaml").read(), launch=launch,
                        st2_context={"execution_id": "abc", "user": "stanley", "pack": "ops"},
                        on_state=lambda state: db.save(execution_id, state))
    outcome = host.run({"target": "web-1"})
    outcome.status        # "succeeded" | "failed" | "canceled" | ...
    outcome.as_result()   # {"output": {...}} plus "errors" when failed: the orquesta runner's result

Threading: every conductor call happens in the thread that called :meth:`WorkflowHost.run`;
action futures only post their outcome to the host's queue. Hosts share nothing, so many
workflows can run at once in different threads. ``launch`` must not block: it returns a
Future and the action runs elsewhere. It must not wait for ``request.delay`` either: the
host has already waited it out (without holding up the rest of the workflow).
"""

from __future__ import annotations

import concurrent.futures
import copy
import heapq
import itertools
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from st2lite import shims

shims.apply()

from orquesta import conducting, events, graphing, statuses  # noqa: E402  (needs the shims first)
from orquesta.expressions import base as expr_base  # noqa: E402
from orquesta.specs import native as native_specs  # noqa: E402
from orquesta.specs.native.v1.models import WorkflowSpec  # noqa: E402
from orquesta.utils import jsonify as json_util  # noqa: E402

__all__ = [
    "TaskActionRequest",
    "WorkflowOutcome",
    "WorkflowHost",
    "WorkflowSpecError",
    "inspect_workflow",
    "load_workflow_spec",
    "precompile",
]

LOG = logging.getLogger(__name__)

#: st2 action execution statuses that end an action (``LIVEACTION_COMPLETED_STATES``);
#: orquesta spells them the same way (``timeout`` is its ``EXPIRED``).
ACTION_COMPLETED_STATUSES = frozenset(statuses.COMPLETED_STATUSES)
#: Statuses in which an action stops without ending: ``pending`` (an inquiry waits for its
#: answer) and ``paused`` (a subworkflow). The conductor pauses the workflow once nothing
#: else runs; the action's end comes later, through :meth:`WorkflowHost.resume`.
ACTION_WAITING_STATUSES = frozenset({statuses.PENDING, statuses.PAUSED})

# st2 always inspects with its own context present (``wf_spec.inspect(app_ctx=st2_ctx)``), so
# ``ctx().st2`` is never "referenced before assignment".
_DEFAULT_APP_CTX = {"st2": {}}


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


@dataclass
class TaskActionRequest:
    """One action execution the conductor asks for (one per item of a ``with`` task).

    ``delay`` is the task's ``delay`` (or its retry delay) in seconds. The host has already
    waited it out when it calls ``launch``; it is passed on for the record (st2 shows it as
    the child execution's delay).
    """

    task_id: str
    route: int
    task_name: str
    action_ref: str
    parameters: dict
    item_id: int | None = None
    delay: float | None = None


@dataclass
class WorkflowOutcome:
    """How a workflow ended: the st2 status, the rendered output and the conductor's errors."""

    status: str
    output: dict | None
    errors: list[dict] = field(default_factory=list)

    def as_result(self) -> dict:
        """The orquesta runner's result: ``{"output": ...}``, plus ``"errors"`` when abended."""
        result: dict[str, Any] = {"output": self.output or None}
        if self.status in statuses.ABENDED_STATUSES:
            result["errors"] = copy.deepcopy(self.errors)
        return result


class WorkflowSpecError(ValueError):
    """A workflow definition that does not load or does not pass orquesta's inspection.

    ``errors`` are st2-style dicts (``type``, ``message``, ``spec_path``, ``schema_path``);
    ``str(e)`` lists them one a line as ``spec_path: message``. st2's orquesta runner turns
    this into a failed execution with ``as_result()`` as its result.
    """

    def __init__(self, errors: list[dict]) -> None:
        self.errors = errors
        lines = [_format_error(e) for e in errors]
        super().__init__("invalid workflow definition:\n  " + "\n  ".join(lines))

    def as_result(self) -> dict:
        return {"errors": copy.deepcopy(self.errors), "output": None}


# --------------------------------------------------------------------------------------------
# Loading and inspection
# --------------------------------------------------------------------------------------------


def _format_error(entry: dict) -> str:
    return f"{entry.get('spec_path') or '(root)'}: {entry.get('message')}"


def _instantiate(spec: str | dict) -> WorkflowSpec:
    if isinstance(spec, WorkflowSpec):
        return spec
    if isinstance(spec, str):
        try:
            definition = yaml.safe_load(spec)
        except yaml.YAMLError as e:
            raise WorkflowSpecError(
                [{"type": "syntax", "message": f"invalid YAML: {e}", "spec_path": None}]
            ) from e
    else:
        definition = spec
    if not isinstance(definition, dict):
        raise WorkflowSpecError(
            [
                {
                    "type": "syntax",
                    "message": f"a workflow definition is a mapping, not {type(definition).__name__}",
                    "spec_path": None,
                }
            ]
        )
    try:
        return native_specs.instantiate(copy.deepcopy(definition))
    except Exception as e:  # orquesta raises plain ValueError/TypeError on malformed parts
        raise WorkflowSpecError(
            [{"type": "syntax", "message": f"{type(e).__name__}: {e}", "spec_path": None}]
        ) from e


def _is_action_ref(ref: str) -> bool:
    # st2's ResourceReference.is_resource_reference() only asks for a "."; whitespace is
    # refused too because orquesta keeps the whole string as the ref when no inline
    # parameter parses (``action: core.echo message=hi``: bare words are not inline
    # values), which would otherwise only surface as an unknown action at run time.
    pack, _, name = ref.partition(".")
    return bool(pack and name) and not any(c.isspace() for c in ref)


def _inspect_task_contents(wf_spec: WorkflowSpec, action_exists: Callable[[str], bool] | None) -> list[dict]:
    """st2's extra checks (services/workflows.py inspect_task_contents): well-formed and known refs."""
    errors = []
    schema_path = "properties.tasks.patternProperties.^\\w+$.properties.action"
    for task_name, task_spec in wf_spec.tasks.items():
        ref = getattr(task_spec, "action", None)
        if not ref or not isinstance(ref, str):
            continue
        if any(ev.has_expressions(ref) for ev in expr_base.get_evaluators().values()):
            continue
        path = f"tasks.{task_name}.action"
        if not _is_action_ref(ref):
            message = f'The action reference "{ref}" is not formatted correctly.'
            if any(c.isspace() for c in ref):
                message += ' Inline parameters take quoted strings, numbers, booleans, null, lists or expressions (key="text").'
        elif action_exists is not None and not action_exists(ref):
            message = f'The action "{ref}" is not registered.'
        else:
            continue
        errors.append({"type": "content", "message": message, "spec_path": path, "schema_path": schema_path})
    return errors


def _inspection_errors(
    wf_spec: WorkflowSpec, action_exists: Callable[[str], bool] | None, app_ctx: dict | None
) -> list[dict]:
    result = wf_spec.inspect(app_ctx=app_ctx or _DEFAULT_APP_CTX, raise_exception=False)
    errors: list[dict] = []
    # orquesta's language reference lists ``version`` as required but 1.2.0's schema only
    # checks its value when present; require it, so a definition never loads by accident.
    if "version" not in wf_spec.spec:
        errors.append(
            {
                "type": "syntax",
                "message": "'version' is a required property (use version: 1.0)",
                "spec_path": "version",
                "schema_path": "required",
            }
        )
    # Same category names st2 reports (format_inspection_result).
    categories = {
        "syntax": "syntax",
        "semantics": "semantic",
        "expressions": "expression",
        "context": "context",
    }
    for category, kind in categories.items():
        for entry in result.get(category, []):
            entry = dict(entry)
            if category in ("context", "expressions") and "language" not in entry:
                entry["language"] = entry.pop("type", None)
            entry["type"] = kind
            errors.append(entry)
    # Content checks only make sense on a spec whose tasks parsed.
    if not result.get("syntax"):
        errors += _inspect_task_contents(wf_spec, action_exists)
    return errors


def inspect_workflow(
    spec: str | dict,
    *,
    action_exists: Callable[[str], bool] | None = None,
    app_ctx: dict | None = None,
) -> list[str]:
    """Orquesta's inspection of a workflow definition, as ``"spec_path: message"`` lines.

    Example::

        >>> inspect_workflow("version: 1.0\\ntasks:\\n  a:\\n    action: core.noop\\n    next:\\n      - do: b\\n")
        ['tasks.a.next[0].do: The task "b" is not defined.']

    An empty list means valid. ``action_exists`` (optional) also reports action refs that are
    not registered, as st2 does; ``app_ctx`` names context keys the runtime provides
    (default ``{"st2": {}}``, so ``ctx().st2`` is known).
    """
    try:
        wf_spec = _instantiate(spec)
    except WorkflowSpecError as e:
        return [_format_error(x) for x in e.errors]
    return [_format_error(e) for e in _inspection_errors(wf_spec, action_exists, app_ctx)]


def load_workflow_spec(
    text: str | dict,
    *,
    action_exists: Callable[[str], bool] | None = None,
    app_ctx: dict | None = None,
) -> WorkflowSpec:
    """Parse and inspect a workflow definition; raise :class:`WorkflowSpecError` with every problem.

    Example::

        spec = load_workflow_spec(Path("actions/workflows/deploy.yaml").read_text())
    """
    wf_spec = _instantiate(text)
    errors = _inspection_errors(wf_spec, action_exists, app_ctx)
    if errors:
        raise WorkflowSpecError(errors)
    return wf_spec


# A definition parsed, inspected and composed once per text. st2 inspects and composes on
# every request (about 0.2 s for a 25-task workflow here, most of a run's own overhead); the
# result depends only on the text (the host inspects without ``action_exists`` and with the
# default app context), so a cached one is the same workflow. Specs are read-only once
# built; each conductor gets its own copy of the graph.
_COMPILED_MAX = 64


@dataclass(frozen=True)
class _Compiled:
    spec: WorkflowSpec
    graph: dict  # the composed graph, serialized (each run deserializes its own copy)
    cycles: tuple[frozenset, ...]  # the graph's cycles, as sets of task ids

    def new_graph(self) -> graphing.WorkflowGraph:
        """A private graph for one conductor, answering ``in_cycle`` from the cycles found
        at compile time: orquesta enumerates every cycle of the graph on each call (for
        every task the workflow runs), and a conductor never changes its graph."""
        graph = graphing.WorkflowGraph.deserialize(self.graph)
        cycles = self.cycles
        graph.in_cycle = lambda task_id: [sorted(c) for c in cycles if task_id in c]
        return graph


def _memoize_split_tasks(spec: WorkflowSpec) -> None:
    """``tasks.is_split_task(name)`` looks at every transition of the workflow each time it
    is asked (once per task run); its answer depends only on the (read-only) spec."""
    tasks = spec.tasks
    if tasks is None:
        return
    original, answers = tasks.is_split_task, {}

    def is_split_task(task_name: str) -> bool:
        if task_name not in answers:
            answers[task_name] = original(task_name)
        return answers[task_name]

    tasks.is_split_task = is_split_task


_compiled: dict[str, _Compiled] = {}
_compiled_lock = threading.Lock()


def _compile(text: str) -> _Compiled:
    """The compiled form of a workflow definition text; raises WorkflowSpecError."""
    with _compiled_lock:
        found = _compiled.get(text)
    if found is not None:
        return found
    spec = load_workflow_spec(text)
    graph = conducting.WorkflowConductor(spec).graph
    cycles = tuple(frozenset(c["tasks"]) for c in graph.get_cycles())
    compiled = _Compiled(spec, graph.serialize(), cycles)
    _memoize_split_tasks(spec)
    with _compiled_lock:
        if len(_compiled) >= _COMPILED_MAX:
            _compiled.pop(next(iter(_compiled)))
        _compiled[text] = compiled
    return compiled


def precompile(text: str) -> bool:
    """Parse, inspect and compose a definition now, so its first run starts at once.

    Returns False (and keeps nothing) for a definition that does not load: its runs then
    fail as they would have. Example: ``precompile(Path("actions/workflows/x.yaml").read_text())``.
    """
    try:
        _compile(text)
    except WorkflowSpecError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# The host
# --------------------------------------------------------------------------------------------


@dataclass(order=True)
class _Scheduled:
    due: float
    seq: int
    launch: _Launch = field(compare=False)


@dataclass
class _Launch:
    """One action execution in flight (or waiting for its delay)."""

    key: int
    request: TaskActionRequest
    future: concurrent.futures.Future | None = None
    done: bool = False


def _error_result(exc: BaseException) -> dict:
    return {
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


class WorkflowHost:
    """Runs one Orquesta workflow with orquesta's conductor (see the module docstring).

    ``launch(request)`` starts one action and returns a Future of ``(status, result)``
    where ``status`` is a completed st2 status (``succeeded``, ``failed``, ``timeout``,
    ``canceled``, ``abandoned``). A raising ``launch``, a Future that raises, or a malformed
    outcome all make that task ``failed`` with ``{"error": ..., "traceback": ...}`` as its
    result; the workflow itself then goes where the definition says.

    ``on_state(conductor.serialize())`` is called after every change of the conductor's
    state; ``WorkflowConductor.deserialize()`` of any of them restores the conductor. The
    callback may keep the dict (nothing in it is shared with a conductor), not change it.
    """

    def __init__(
        self,
        spec: str | dict,
        *,
        launch: Callable[[TaskActionRequest], concurrent.futures.Future],
        st2_context: dict | None = None,
        on_state: Callable[[dict], None] | None = None,
        state: dict | None = None,
    ) -> None:
        #: A definition given as text is compiled once (None: the conductor composes its graph).
        self._compiled: _Compiled | None = None
        if isinstance(spec, str):
            self._compiled = _compile(spec)
            self.spec = self._compiled.spec
        else:
            self.spec = load_workflow_spec(spec) if not isinstance(spec, WorkflowSpec) else spec
        #: A conductor state saved by ``on_state`` (the history DB): ``resume()`` continues it.
        self._saved_state = copy.deepcopy(state) if state is not None else None
        self._launch_fn = launch
        self._st2_context = copy.deepcopy(st2_context or {})
        self._on_state = on_state
        self._events: queue.Queue[tuple] = queue.Queue()
        self._started = False
        self._start_lock = threading.Lock()
        self._conductor: conducting.WorkflowConductor | None = None
        self._scheduled: list[_Scheduled] = []
        self._in_flight: dict[int, _Launch] = {}  # launch key -> launch: started, not reported
        self._items: dict[tuple[str, int], list[Any]] = {}  # with-items results per task
        self._seq = itertools.count()
        self._last_state: dict | None = None
        self._close_lock = threading.Lock()
        self._closed = False

    # -- public -------------------------------------------------------------------------------

    @property
    def conductor(self) -> conducting.WorkflowConductor | None:
        """The conductor of the current/last run (for inspection after ``run()``)."""
        return self._conductor

    def cancel(self) -> None:
        """Ask the running workflow to cancel (thread-safe), as ``st2 execution cancel`` does.

        Delayed actions that have not started are dropped; running ones get
        ``Future.cancel()`` and are otherwise awaited. ``run()`` then returns ``canceled``.
        """
        self._events.put(("cancel",))

    def pause(self) -> None:
        """Ask the running workflow to pause (thread-safe), as ``st2 execution pause`` does.

        The conductor goes ``pausing`` while actions still run (they finish, nothing new
        starts), then ``paused``; ``run()``/``resume()`` then return ``paused`` and the
        state saved through ``on_state`` is what a later :meth:`resume` continues.
        """
        self._events.put(("pause",))

    def deliver(self, completions: list[tuple[str, int, str, Any]]) -> bool:
        """Hand the ends of waiting actions (an answered inquiry) to this running host; [] resumes it.

        Thread-safe. False when the host has already stopped (ended or paused): then the
        caller continues the saved state with a new host's :meth:`resume`.
        """
        with self._close_lock:
            if self._closed:
                return False
            self._events.put(("external", list(completions)))
            return True

    def resume(
        self, completions: list[tuple[str, int, str, Any]] | None = None, *, cancel: bool = False
    ) -> WorkflowOutcome:
        """Continue a paused workflow from the state given to the constructor; blocks like ``run()``.

        ``completions`` are ``(task_id, route, status, result)`` of actions that ended while
        the workflow was paused (an inquiry answered or timed out), fed to the conductor
        after it resumes, as st2 resumes the workflow before it updates the task.
        ``cancel=True`` cancels the paused workflow instead (``st2 execution cancel``).
        """
        with self._start_lock:
            if self._started or self._saved_state is None:
                raise RuntimeError("resume() continues a saved state once; make a new host with state=")
            self._started = True
        conductor = conducting.WorkflowConductor.deserialize(self._saved_state)
        self._conductor = conductor
        self._last_state = copy.deepcopy(self._saved_state)
        try:
            if cancel:
                self._cancel()
                return self._finish()
            self._apply_completions(completions or [])
            self._loop()
        except Exception as e:
            LOG.exception("workflow host failed")
            self._fail_workflow(e)
        return self._finish()

    def run(self, inputs: dict | None = None) -> WorkflowOutcome:
        """Run the workflow with ``inputs``; blocks until it has ended or paused."""
        with self._start_lock:
            if self._started:
                raise RuntimeError("a WorkflowHost runs its workflow once; make a new host")
            self._started = True
        if inputs is not None and not isinstance(inputs, dict):
            raise TypeError(f"workflow inputs are a dict, not {type(inputs).__name__}")

        conductor = conducting.WorkflowConductor(
            self.spec, context={"st2": self._st2_context}, inputs=copy.deepcopy(inputs or {})
        )
        if self._compiled is not None:
            # What ``conductor.graph`` would compose on first use (orquesta 1.2.0 keeps it in
            # ``_graph``); a private copy, as the conductor may annotate it.
            conductor._graph = self._compiled.new_graph()
        self._conductor = conductor
        try:
            # The first access renders input and vars; an error there fails the workflow.
            if conductor.get_workflow_status() not in statuses.COMPLETED_STATUSES:
                conductor.request_workflow_status(statuses.REQUESTED)
                self._emit_state()
                conductor.request_workflow_status(statuses.RUNNING)
            self._emit_state()
            self._loop()
        except Exception as e:  # a conductor error must end the workflow, not the thread
            LOG.exception("workflow host failed")
            self._fail_workflow(e)
        return self._finish()

    # -- main loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        conductor = self._conductor
        assert conductor is not None
        while True:
            # Request next tasks until none are ready: action-less tasks complete at once and
            # may make further tasks ready (st2's request_next_tasks loop).
            while self._request_next_tasks():
                pass
            self._launch_due()

            if not self._in_flight and not self._scheduled:
                status = conductor.get_workflow_status()
                if status in (statuses.RUNNING, statuses.RESUMING) and self._waiting_tasks():
                    # Resumed while a task still waits (an unanswered inquiry): paused again.
                    conductor.request_workflow_status(statuses.PAUSING)
                    self._emit_state()
                    status = conductor.get_workflow_status()
                if status in statuses.COMPLETED_STATUSES or status == statuses.PAUSED:
                    with self._close_lock:
                        if self._events.empty():
                            self._closed = True
                            return
                    self._handle_event(self._events.get())
                    continue
                # Nothing runs, nothing is ready, and the conductor still says running: a
                # definition the conductor cannot finish. Fail it rather than hang.
                conductor.log_entry(
                    "error",
                    f'Workflow execution stalled in status "{status}" with no task to run.',
                )
                conductor.request_workflow_status(statuses.FAILED)
                self._emit_state()
                return

            timeout = None
            if self._scheduled:
                timeout = max(0.0, self._scheduled[0].due - time.monotonic())
            try:
                event = self._events.get(timeout=timeout)
            except queue.Empty:
                continue
            self._handle_event(event)
            # Drain whatever else finished meanwhile before asking for next tasks.
            while True:
                try:
                    event = self._events.get_nowait()
                except queue.Empty:
                    break
                self._handle_event(event)

    def _request_next_tasks(self) -> bool:
        """Mark the conductor's next tasks running and start them; True if any completed inline."""
        conductor = self._conductor
        next_tasks = conductor.get_next_tasks()
        if not next_tasks:
            # get_next_tasks() may itself have failed the workflow (rendering errors).
            self._emit_state()
            return False

        # Mark every task (and each item) running before anything starts, as st2 does, so a
        # quick completion can never arrive before its own running event.
        for task in next_tasks:
            task_key = (task["id"], task["route"])
            if task["spec"].has_items():
                if task_key not in self._items or len(self._items[task_key]) != task["items_count"]:
                    self._items[task_key] = [None] * task["items_count"]
                if task["items_count"] == 0:
                    conductor.update_task_state(
                        task["id"], task["route"], events.ActionExecutionEvent(statuses.RUNNING)
                    )
            for action in task["actions"]:
                if action.get("item_id") is None:
                    event = events.ActionExecutionEvent(statuses.RUNNING)
                else:
                    event = events.TaskItemActionExecutionEvent(action["item_id"], statuses.RUNNING)
                conductor.update_task_state(task["id"], task["route"], event)
        self._emit_state()

        completed_inline = False
        for task in next_tasks:
            task_spec = task["spec"]
            no_action = getattr(task_spec, "action", None) is None and not task_spec.has_items()
            no_items = task_spec.has_items() and task["items_count"] == 0
            if no_action or no_items:
                LOG.debug('task "%s" (route %s) has no %s and succeeds', task["id"], task["route"],
                          "action" if no_action else "items")
                conductor.update_task_state(
                    task["id"], task["route"], events.ActionExecutionEvent(statuses.SUCCEEDED)
                )
                self._after_task_update(task["id"], task["route"])
                completed_inline = True
                continue
            for action in task["actions"]:
                delay = self._action_delay(task, action)
                request = TaskActionRequest(
                    task_id=task["id"],
                    route=task["route"],
                    task_name=getattr(task_spec, "name", None) or task["id"],
                    action_ref=action["action"],
                    parameters=copy.deepcopy(action.get("input") or {}),
                    item_id=action.get("item_id"),
                    delay=delay,
                )
                launch = _Launch(next(self._seq), request)
                due = time.monotonic() + (delay or 0)
                heapq.heappush(self._scheduled, _Scheduled(due, next(self._seq), launch))
        return completed_inline

    @staticmethod
    def _action_delay(task: dict, action: dict) -> float | None:
        # st2's eval_action_execution_delay(): with items and concurrency, only the first
        # batch waits; later items start as earlier ones finish.
        delay = task.get("delay")
        if not delay:
            return None
        itemized = task["spec"].has_items()
        concurrency = task.get("concurrency")
        if not itemized or not concurrency or action["item_id"] < concurrency:
            return float(delay)
        return None

    def _launch_due(self) -> None:
        now = time.monotonic()
        while self._scheduled and self._scheduled[0].due <= now:
            launch = heapq.heappop(self._scheduled).launch
            self._start(launch)

    def _start(self, launch: _Launch) -> None:
        req = launch.request
        LOG.debug(
            'launching %s for task "%s" (route %s, item %s)',
            req.action_ref,
            req.task_id,
            req.route,
            req.item_id,
        )
        self._in_flight[launch.key] = launch
        try:
            future = self._launch_fn(copy.deepcopy(req))
            if not isinstance(future, concurrent.futures.Future):
                raise TypeError(
                    f"launch() must return a concurrent.futures.Future, not {type(future).__name__}"
                )
        except Exception as e:
            LOG.warning('launch of %s for task "%s" raised: %s', req.action_ref, req.task_id, e)
            self._events.put(("done", launch.key, statuses.FAILED, _error_result(e)))
            return
        launch.future = future
        key = launch.key
        future.add_done_callback(lambda f: self._events.put(("future", key, f)))

    # -- events --------------------------------------------------------------------------------

    def _handle_event(self, event: tuple) -> None:
        kind = event[0]
        if kind == "cancel":
            self._cancel()
            return
        if kind == "pause":
            self._pause()
            return
        if kind == "external":
            self._apply_completions(event[1])
            return
        if kind == "future":
            _, key, future = event
            status, result = self._future_outcome(future)
        else:
            _, key, status, result = event
        launch = self._in_flight.pop(key, None)
        if launch is None or launch.done:
            return
        launch.done = True
        self._complete(launch.request, status, result)

    @staticmethod
    def _future_outcome(future: concurrent.futures.Future) -> tuple[str, Any]:
        if future.cancelled():
            return statuses.CANCELED, None
        exc = future.exception()
        if exc is not None:
            return statuses.FAILED, _error_result(exc)
        outcome = future.result()
        if not (isinstance(outcome, tuple | list) and len(outcome) == 2):
            err = TypeError(f"launch() future must resolve to (status, result), got {outcome!r:.200}")
            return statuses.FAILED, _error_result(err)
        status, result = outcome
        if status not in ACTION_COMPLETED_STATUSES and status not in ACTION_WAITING_STATUSES:
            err = ValueError(
                f"action ended in status {status!r}, which is not a completed st2 status "
                f"({', '.join(sorted(ACTION_COMPLETED_STATUSES))})"
            )
            return statuses.FAILED, {**_error_result(err), "result": result}
        return status, result

    def _complete(self, req: TaskActionRequest, status: str, result: Any) -> None:
        conductor = self._conductor
        task_key = (req.task_id, req.route)
        if req.item_id is None:
            event = events.ActionExecutionEvent(status, result=result)
        else:
            # As st2 does: the item's own result plus all item results so far (None where an
            # item has not finished); the task's result() is the accumulated list.
            items = self._items.setdefault(task_key, [])
            if req.item_id >= len(items):
                items.extend([None] * (req.item_id + 1 - len(items)))
            items[req.item_id] = result
            event = events.TaskItemActionExecutionEvent(
                req.item_id, status, result=result, accumulated_result=list(items)
            )
        LOG.debug('task "%s" (route %s, item %s) -> %s', req.task_id, req.route, req.item_id, status)
        conductor.update_task_state(req.task_id, req.route, event)
        self._after_task_update(req.task_id, req.route)

    def _after_task_update(self, task_id: str, route: int) -> None:
        entry = self._conductor.get_task_state_entry(task_id, route)
        if entry and entry.get("status") in (*statuses.COMPLETED_STATUSES, statuses.RETRYING):
            # A rerun of the task (cycle, retry) starts a fresh list of item results.
            self._items.pop((task_id, route), None)
        self._emit_state()

    def _apply_completions(self, completions: list[tuple[str, int, str, Any]]) -> None:
        # st2 resumes a paused/pausing workflow first, then updates the task (inquiry.respond).
        conductor = self._conductor
        if conductor.get_workflow_status() in (statuses.PAUSED, statuses.PAUSING):
            conductor.request_workflow_status(statuses.RESUMING)
            self._emit_state()
        for task_id, route, status, result in completions:
            entry = conductor.get_task_state_entry(task_id, route) or {}
            if entry.get("status") == statuses.PAUSED:
                # A subworkflow: st2 sees it resume (running) before it ends.
                conductor.update_task_state(task_id, route, events.ActionExecutionEvent(statuses.RUNNING))
            conductor.update_task_state(task_id, route, events.ActionExecutionEvent(status, result=result))
            self._after_task_update(task_id, route)
        if conductor.get_workflow_status() == statuses.RESUMING:
            conductor.request_workflow_status(statuses.RUNNING)
            self._emit_state()

    def _waiting_tasks(self) -> bool:
        """True when a task waits on something outside the workflow (an inquiry)."""
        return any(t.get("status") in ACTION_WAITING_STATUSES for t in self._conductor.workflow_state.sequence)

    def _pause(self) -> None:
        conductor = self._conductor
        if conductor.get_workflow_status() not in (statuses.RUNNING, statuses.RESUMING):
            return
        LOG.info("pausing workflow")
        conductor.request_workflow_status(statuses.PAUSING)
        self._emit_state()

    def _cancel(self) -> None:
        conductor = self._conductor
        if conductor.get_workflow_status() in statuses.COMPLETED_STATUSES:
            return
        LOG.info("canceling workflow")
        conductor.request_workflow_status(statuses.CANCELED)
        self._emit_state()
        # Actions still waiting for their delay never start: report them canceled.
        pending, self._scheduled = self._scheduled, []
        for scheduled in pending:
            self._complete(scheduled.launch.request, statuses.CANCELED, None)
        for launch in list(self._in_flight.values()):
            if launch.future is not None:
                launch.future.cancel()

    # -- completion ----------------------------------------------------------------------------

    def _fail_workflow(self, exc: BaseException) -> None:
        conductor = self._conductor
        try:
            conductor.log_error(exc)
            if conductor.get_workflow_status() not in statuses.COMPLETED_STATUSES:
                conductor.request_workflow_status(statuses.FAILED)
        except Exception:
            LOG.exception("could not record the failure in the conductor")
            conductor.workflow_state.status = statuses.FAILED
        for launch in self._in_flight.values():
            if launch.future is not None:
                launch.future.cancel()
        self._emit_state()

    def _finish(self) -> WorkflowOutcome:
        conductor = self._conductor
        with self._close_lock:
            self._closed = True
        try:
            if conductor.get_workflow_status() in statuses.COMPLETED_STATUSES:
                # May turn the workflow failed when an output expression fails.
                conductor.render_workflow_output()
        except Exception as e:
            LOG.exception("rendering the workflow output failed")
            conductor.log_error(e)
            conductor.workflow_state.status = statuses.FAILED
        self._emit_state()
        return WorkflowOutcome(
            status=conductor.get_workflow_status(),
            output=conductor.get_workflow_output(),
            errors=copy.deepcopy(conductor.errors),
        )

    def _emit_state(self) -> None:
        if self._on_state is None:
            return
        try:
            state = self._conductor.serialize()
            if state == self._last_state:
                return
            # serialize() copies everything but the spec's own dict, which hosts of one
            # definition share (see _compile): copy that (ujson, as orquesta copies state).
            state["spec"] = json_util.deepcopy(state["spec"])
            self._last_state = state
            self._on_state(state)
        except Exception:
            # Persisting state is the runtime's job; its failure must not kill the workflow.
            LOG.exception("on_state callback failed")
