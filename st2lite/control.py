"""Pause, resume and cancel of executions, and st2's inquiries, on top of the runtime.

A paused workflow has no thread: its conductor state is in the history DB (saved by the
workflow host at every change), so a paused workflow survives a restart and is continued
by a new :class:`~st2lite.workflow.WorkflowHost` from that state. Everything that ends a
waiting task (an inquiry answered or timed out) goes through :meth:`ExecutionControl.deliver`:
to the workflow's live host when it still runs (another branch is busy), else by resuming
the saved state with that completion.

    runtime.control.pause(ex_id)                  # running -> pausing -> paused
    runtime.control.resume(ex_id)                 # paused -> resuming -> running -> ...
    runtime.control.cancel(ex_id)                 # -> canceling -> canceled
    runtime.inquiries.respond(inquiry_id, {"continue": True}, user="alice")
    runtime.inquiries.expire(now=time.time() + 3600)   # st2's garbage collector sweep

Statuses are st2's. The inquirer runner behaves as st2's: ``core.ask`` ends ``pending``
with ``{schema, roles, users, route, ttl}`` as its result; the answer is added as
``response`` and the execution succeeds; past ``ttl`` minutes it turns ``timeout``.
Subset: pause/resume of a subworkflow on its own (st2 cascades to the parent) is not
supported; ``roles`` are recorded but not enforced (st2 needs RBAC for them too).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .pack_env.pack_runtime import records as rec
from .pack_env.pack_runtime.schema import payload_errors

if TYPE_CHECKING:
    from .engine import Runtime
    from .workflow import WorkflowHost, WorkflowOutcome

LOG = logging.getLogger(__name__)

INQUIRER = "inquirer"
INQUIRY_TRIGGER = "core.st2.generic.inquiry"  # st2's trigger for a new inquiry
WORKFLOW_RUNNERS = ("orquesta",)
CANCELABLE = (rec.REQUESTED, rec.SCHEDULED, rec.DELAYED, rec.RUNNING, rec.PENDING, rec.PAUSING, rec.PAUSED, rec.RESUMING)


class ControlError(Exception):
    """A request the execution's state does not allow; ``status`` is the HTTP status st2 answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


class ExecutionControl:
    """Live workflow hosts by execution id, and the operations st2's API offers on them."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._hosts: dict[str, WorkflowHost] = {}

    def host_run(self, ex_id: str, host: WorkflowHost, body: Callable[[], WorkflowOutcome]) -> WorkflowOutcome:
        """Run ``body`` (the host's run/resume) with the host reachable by id meanwhile."""
        with self._lock:
            self._hosts[ex_id] = host
        try:
            return body()
        finally:
            with self._lock:
                if self._hosts.get(ex_id) is host:
                    del self._hosts[ex_id]

    def _record(self, ex_id: str) -> dict[str, Any]:
        record = self.runtime.records.get_execution(ex_id)
        if record is None:
            raise ControlError(f'Resource with a primary key "{ex_id}" not found', 404)
        return record

    # -- pause / resume / cancel -------------------------------------------------------

    def pause(self, ex_id: str) -> None:
        record = self._record(ex_id)
        if record["runner"] not in WORKFLOW_RUNNERS:
            raise ControlError(f'Runner "{record["runner"]}" does not support pause.')
        with self._lock:
            host = self._hosts.get(ex_id)
            if host is None or record["status"] not in (rec.RUNNING, rec.RESUMING):
                raise ControlError(f'Unable to pause liveaction "{ex_id}" because it is not in a running state.')
            self.runtime.records.update_execution(ex_id, status=rec.PAUSING)
            host.pause()

    def resume(self, ex_id: str) -> None:
        record = self._record(ex_id)
        if record["runner"] not in WORKFLOW_RUNNERS:
            raise ControlError(f'Runner "{record["runner"]}" does not support resume.')
        if record["status"] not in (rec.PAUSING, rec.PAUSED):
            raise ControlError(f'Unable to resume liveaction "{ex_id}" because it is not in a paused state.')
        if not self.deliver(ex_id, []):
            raise ControlError(f'Unable to resume liveaction "{ex_id}" because it is not in a paused state.')

    def cancel(self, ex_id: str) -> str:
        """Cancel an execution; returns the status it is in now (``canceling`` or ``canceled``)."""
        record = self._record(ex_id)
        status = record["status"]
        if status == rec.CANCELED:
            raise ControlError('Action is already in "canceled" state.', 200)
        if status not in CANCELABLE:
            raise ControlError(f"Action cannot be canceled. State = {status}.", 200)
        for child in self.runtime.records.list_executions(parent=ex_id, limit=10_000, newest_first=False):
            if child["status"] == rec.PENDING:  # an unanswered inquiry goes with its workflow
                self.runtime.records.transition_execution(child["id"], rec.PENDING, rec.CANCELED)
        if record["runner"] == INQUIRER and status == rec.PENDING:
            if self.runtime.records.transition_execution(ex_id, rec.PENDING, rec.CANCELED):
                self._deliver_to_parent(record, rec.CANCELED, record["result"])
            return rec.CANCELED
        if record["runner"] not in WORKFLOW_RUNNERS:
            raise ControlError(f'st2lite cannot cancel a running "{record["runner"]}" action (only workflows and inquiries).')
        with self._lock:
            host = self._hosts.get(ex_id)
            if host is not None:
                self.runtime.records.update_execution(ex_id, status=rec.CANCELING)
                host.cancel()
                return rec.CANCELING
        if status in (rec.PAUSED, rec.PAUSING):
            self._claim_and_resume(ex_id, [], cancel=True)
            return rec.CANCELING
        raise ControlError(f"Action cannot be canceled. State = {status}.", 200)

    # -- completions of waiting tasks --------------------------------------------------

    def deliver(self, ex_id: str, completions: list[tuple[str, int, str, Any]]) -> bool:
        """Give a workflow the ends of its waiting tasks (none: just resume it); False if it waits for nothing."""
        while True:
            with self._lock:
                host = self._hosts.get(ex_id)
                if host is not None and host.deliver(completions):
                    return True
                if host is None and not self.runtime.is_tracked(ex_id):
                    record = self._record(ex_id)
                    if record["status"] not in (rec.PAUSED, rec.PAUSING):
                        LOG.warning("workflow %s is %s, not paused: nothing to resume", ex_id, record["status"])
                        return False
                    self._claim_and_resume_locked(ex_id, completions)
                    return True
            # Its host has just stopped (paused) and its thread is recording that: wait for it.
            self.runtime.wait_idle(ex_id)

    def _deliver_to_parent(self, record: dict[str, Any], status: str, result: Any) -> None:
        parent = record.get("parent")
        orquesta = (record.get("context") or {}).get("orquesta") or {}
        if not parent or "task_id" not in orquesta:
            return
        self.deliver(parent, [(orquesta["task_id"], orquesta.get("route", 0), status, result)])

    def _claim_and_resume(self, ex_id: str, completions: list, cancel: bool = False) -> None:
        with self._lock:
            self._claim_and_resume_locked(ex_id, completions, cancel)

    def _claim_and_resume_locked(self, ex_id: str, completions: list, cancel: bool = False) -> None:
        runtime = self.runtime
        record = self._record(ex_id)
        action = runtime.actions.get(record["action"])
        if action is None or not record.get("workflow_state"):
            raise ControlError(f"workflow {ex_id} cannot be resumed: its action or saved state is gone", 409)
        host = runtime.workflow_host(ex_id, action, state=record["workflow_state"])
        self._hosts[ex_id] = host
        runtime.track(ex_id)
        runtime.records.update_execution(ex_id, status=rec.CANCELING if cancel else rec.RESUMING)

        def body() -> None:
            status, result = rec.FAILED, None
            try:
                outcome = self.host_run(ex_id, host, lambda: host.resume(completions, cancel=cancel))
                status, result = outcome.status, outcome.as_result()
            except Exception as exc:
                LOG.exception("resuming workflow %s failed", ex_id)
                result = {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                runtime.records.update_execution(ex_id, status=status, result=result if result is not None else {})
                runtime.untrack(ex_id)
            if status in rec.COMPLETED_STATUSES:
                self._deliver_to_parent(record, status, result)

        threading.Thread(target=body, name=f"execution-{ex_id}-resume", daemon=True).start()


class Inquiries:
    """st2's inquiries: executions of the ``inquirer`` runner waiting in ``pending``."""

    def __init__(self, runtime: Runtime, clock: Callable[[], float] = time.time, interval: float | None = None) -> None:
        self.runtime = runtime
        self.clock = clock
        #: Seconds between garbage-collection sweeps (st2's garbage collector runs periodically too).
        self.interval = interval if interval is not None else float(os.environ.get("AEGIS_INQUIRY_GC_INTERVAL", "60"))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ask(self, ex_id: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The inquirer runner: the execution waits (``pending``) with the question as its result.

        As st2's, it dispatches ``core.st2.generic.inquiry`` (``{"id", "route"}``) so that
        a rule can tell the people who should answer (ChatOps, a pager).
        """
        self.runtime.dispatch_trigger(INQUIRY_TRIGGER, {"id": ex_id, "route": params.get("route") or ""})
        return rec.PENDING, {key: params.get(key) for key in ("schema", "roles", "users", "route", "ttl")}

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.runtime.records.query_executions(runner=INQUIRER, status=rec.PENDING, limit=limit)[0]

    def get(self, inquiry_id: str) -> dict[str, Any]:
        """The pending inquiry, or ControlError as st2 words it (404, or 400 when not pending)."""
        record = self.runtime.records.get_execution(inquiry_id)
        if record is None:
            raise ControlError(f'Resource with a primary key "{inquiry_id}" not found', 404)
        if record["runner"] != INQUIRER:
            raise ControlError(f'Action execution "{inquiry_id}" is not an inquiry.')
        if record["status"] == rec.TIMEOUT:
            raise ControlError(f'Inquiry "{inquiry_id}" timed out and cannot be responded to.')
        if record["status"] != rec.PENDING:
            raise ControlError(f'Inquiry "{inquiry_id}" has already been responded to.')
        return record

    def respond(self, inquiry_id: str, response: Any, user: str) -> dict[str, Any]:
        """Validate ``response`` against the inquiry's schema, succeed it, resume its workflow."""
        record = self.get(inquiry_id)
        question = record["result"] or {}
        users = question.get("users") or []
        if users and user not in users:
            raise ControlError(f'User "{user}" does not have permission to respond to inquiry "{inquiry_id}".', 403)
        errors = payload_errors(response, question.get("schema") or {})
        if errors:
            raise ControlError(f'Response for inquiry "{inquiry_id}" did not pass schema validation: {"; ".join(errors)}')
        result = {**question, "response": response}
        if not self.runtime.records.transition_execution(inquiry_id, rec.PENDING, rec.SUCCEEDED, result):
            self.get(inquiry_id)  # timed out or answered meanwhile: say which
            raise ControlError(f'Inquiry "{inquiry_id}" has already been responded to.')
        LOG.info("inquiry %s answered by %s", inquiry_id, user)
        self.runtime.control._deliver_to_parent(record, rec.SUCCEEDED, result)
        return {"id": inquiry_id, "response": response}

    def expire(self, now: float | None = None) -> list[str]:
        """Time out pending inquiries older than their ``ttl`` minutes (st2's ``purge_inquiries``)."""
        now = self.clock() if now is None else now
        expired = []
        for record in self.list(limit=100_000):
            ttl = int((record["result"] or {}).get("ttl") or 0)
            if ttl <= 0:
                continue
            minutes = int((now - _epoch(record["start_timestamp"])) / 60)
            if minutes > ttl:
                if not self.runtime.records.transition_execution(record["id"], rec.PENDING, rec.TIMEOUT):
                    continue  # answered meanwhile
                LOG.info("TTL expired for inquiry %s; marked it timed out", record["id"])
                self.runtime.control._deliver_to_parent(record, rec.TIMEOUT, record["result"])
                expired.append(record["id"])
        return expired

    def start(self) -> None:
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._sweep, name="inquiry-gc", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _sweep(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.expire()
            except Exception:
                LOG.exception("inquiry garbage collection failed")
