"""What Aegis did about each alert, read from the runtime's history and datastore.

    history = History(stack.home)
    for run in history.runs():            # one per aegis.remediate workflow, oldest first
        run.stage, run.action, run.outcome, run.mttr_seconds, run.own_seconds, run.waiting_seconds

A run joins the workflow execution (``aegis.remediate``) with its tasks (child executions),
the trigger instance that started it (when Alertmanager's notification was recorded) and the
incident's lifecycle timeline (``aegis.timeline.*`` keys). It reads the SQLite files the
runtime writes (WAL: readers never block it), so it works while the runtime runs.

Timing, for ``bench/mttr.py`` and the demo's table:

- ``notified``: the sensor recorded Alertmanager's notification (the trigger instance);
- ``verified``: the ``verify`` task ended healthy;
- ``waiting``: the acting task (the target restarting, rolling back, ...), a human's
  approval (``core.ask``) when the runbook is caution-class, plus the time ``verify`` spent
  polling until the signal was healthy (scrape interval, rule windows);
- ``own``: the rest of ``verified - notified``: recording, gathering context, diagnosis,
  pre-check, silence, scheduling between tasks and the verify action's own overhead.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from st2lite.pack_env.pack_runtime.datastore import DatastoreService, KeyValueStore  # noqa: E402
from st2lite.pack_env.pack_runtime.records import Records  # noqa: E402

ACTING = ("restart", "scale_up", "rollback", "cleanup_disk", "cancel_query", "clear_cache")
# Workflow task → what a person watching calls that stage.
STAGES = {
    "record_incident": "recorded", "get_mode": "recorded", "gather_context": "gathering context",
    "diagnose": "diagnosing", "decide": "diagnosing", "precheck": "pre-check", "silence": "silencing",
    "act": "acting", "verify": "verifying", "expire_silence": "verified", "learn_success": "verified",
    "notify_resolved": "resolved", "propose": "proposing", "propose_for_approval": "awaiting approval",
    "notify_advisory": "advised", "notify_noop": "noop", "unsilence_failed": "action failed",
    "unsilence_refused": "refused", "learn_failure": "action failed", "escalate": "escalating",
    "notify_self_resolved": "resolved by itself", "notify_approval": "awaiting approval", "approve": "awaiting approval",
    "notify_declined": "declined",
}


def epoch(ts: str | None) -> float | None:
    if not ts:
        return None
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@dataclass
class Run:
    """One aegis.remediate workflow: what it is doing or did, and when."""

    execution: dict[str, Any]
    tasks: list[dict[str, Any]]
    notified: float | None
    alert: dict[str, Any] = field(default_factory=dict)  # the aegis.alert payload that started it
    lifecycle: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.execution["id"]

    @property
    def incident_id(self) -> str:
        # The workflow's only input: alert text never is one (it is read from the stores).
        return (self.execution.get("parameters") or {}).get("incident_id", "")

    @property
    def alertname(self) -> str:
        return self.alert.get("alertname") or self.labels.get("alertname", "")

    @property
    def labels(self) -> dict[str, str]:
        return self.alert.get("labels") or {}

    @property
    def fingerprint(self) -> str:
        return self.alert.get("fingerprint", "")

    @property
    def status(self) -> str:
        return self.execution["status"]

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "timeout", "abandoned", "canceled")

    @property
    def result(self) -> dict[str, Any]:
        """The workflow's output (the orquesta runner's result is ``{"output": ...}``)."""
        return (self.execution.get("result") or {}).get("output") or {}

    def task(self, name: str, last: bool = True) -> dict[str, Any] | None:
        found = [t for t in self.tasks if t.get("task_name") == name]
        return (found[-1] if last else found[0]) if found else None

    @staticmethod
    def stage_of(task: dict[str, Any]) -> str:
        return STAGES.get(task.get("task_name") or "", task.get("task_name") or "")

    @property
    def stage(self) -> str:
        if self.done:
            return self.outcome
        running = [t for t in self.tasks if t["status"] in ("requested", "scheduled", "running", "delayed")]
        task = (running or self.tasks or [None])[-1]
        return self.stage_of(task) if task else "starting"

    @property
    def diagnosis(self) -> dict[str, Any]:
        task = self.task("diagnose")
        return ((task or {}).get("result") or {}).get("result") or {}

    @staticmethod
    def _target(task: dict[str, Any]) -> str:
        # The target travels inside the decision object (``decision.target``) in a workflow,
        # as a ``target`` parameter when an action is run by hand.
        params = task.get("parameters") or {}
        return str(params.get("target") or (params.get("decision") or {}).get("target") or "")

    @property
    def action(self) -> str:
        """What was done: ``restart victim`` (acted), ``escalate``, or ``restart victim (plan only)``."""
        act = self.task("act")
        if act is not None:
            return f"{act['action'].split('.', 1)[1]} {self._target(act)}".strip()
        proposed = self.task("propose_for_approval") or self.task("propose")
        if proposed is not None:
            return f"{proposed['action'].split('.', 1)[1]} {self._target(proposed)} (plan only)".strip()
        diagnosis = self.diagnosis
        return diagnosis.get("action", "") if diagnosis else ""

    @property
    def acted(self) -> list[dict[str, Any]]:
        """Acting executions that really ran (not dry runs)."""
        return [t for t in self.tasks if t.get("task_name") == "act"]

    @property
    def verified(self) -> float | None:
        task = self.task("verify")
        if task and task["status"] == "succeeded" and ((task.get("result") or {}).get("result") or {}).get("healthy"):
            return epoch(task.get("end_timestamp"))
        return None

    @property
    def outcome(self) -> str:
        state = self.lifecycle.get("state")
        if self.done and state in ("resolved", "escalated", "escalated (unrouted)", "false_positive"):
            return state
        if self.done:
            return self.result.get("outcome") or self.status
        return "in progress"

    @property
    def mttr_seconds(self) -> float | None:
        """Notification received → verified healthy."""
        if self.verified is None or self.notified is None:
            return None
        return self.verified - self.notified

    @property
    def waiting_seconds(self) -> float | None:
        if self.verified is None:
            return None
        waiting = 0.0
        for task in [*self.acted, *[t for t in self.tasks if t.get("task_name") == "approve"]]:
            start, end = epoch(task.get("start_timestamp")), epoch(task.get("end_timestamp"))
            if start is not None and end is not None:
                waiting += end - start
        verify = self.task("verify") or {}
        waiting += float(((verify.get("result") or {}).get("result") or {}).get("seconds") or 0.0)
        return waiting

    def own_breakdown(self) -> dict[str, float]:
        """Aegis's own time by task (up to verified), plus ``between tasks`` (the workflow
        engine scheduling the next task) and ``verify overhead`` (verify minus its polling)."""
        if self.verified is None or self.own_seconds is None:
            return {}
        parts: dict[str, float] = {}
        for task in self.tasks:
            name, start, end = task.get("task_name") or "", epoch(task.get("start_timestamp")), epoch(task.get("end_timestamp"))
            if start is None or end is None or end > self.verified + 1e-3 or name in ("act", "approve"):
                continue
            seconds = end - start
            if name == "verify":
                name = "verify overhead"
                seconds -= float(((task.get("result") or {}).get("result") or {}).get("seconds") or 0.0)
            parts[name] = parts.get(name, 0.0) + seconds
        parts["between tasks"] = self.own_seconds - sum(parts.values())
        return parts

    @property
    def own_seconds(self) -> float | None:
        if self.mttr_seconds is None or self.waiting_seconds is None:
            return None
        return self.mttr_seconds - self.waiting_seconds


class History:
    """Read-only view of a runtime home's history and datastore."""

    def __init__(self, home: Path | str) -> None:
        self.home = Path(home)
        self.records = Records(str(self.home / "history.sqlite"))
        self.store = KeyValueStore(str(self.home / "datastore.sqlite"))

    def _lifecycle(self, incident_id: str, detected_at: str | None) -> dict[str, Any]:
        lib = str(REPO / "packs" / "aegis" / "actions" / "lib")
        if lib not in sys.path:
            sys.path.append(lib)
        from lifecycle import Lifecycle  # the pack's own fold of the timeline (standard library only)

        return Lifecycle(DatastoreService(self.store, "aegis", "demo")).state(incident_id, detected_at)

    def runs(self) -> list[Run]:
        runs = []
        for ex in self.records.list_executions(action="aegis.remediate", top_level_only=True, limit=1000,
                                               newest_first=False):
            tasks = self.records.list_executions(parent=ex["id"], limit=1000, newest_first=False)
            ti = self.records.get_trigger_instance(ex["trigger_instance_id"]) if ex.get("trigger_instance_id") else None
            notified = epoch(ti["occurrence_time"]) if ti else epoch(ex.get("start_timestamp"))
            run = Run(ex, tasks, notified, (ti or {}).get("payload") or {})
            record = next((t for t in tasks if t.get("task_name") == "record_incident"), None)
            incident = ((record or {}).get("result") or {}).get("result") or {}
            if run.incident_id:
                run.lifecycle = self._lifecycle(run.incident_id, incident.get("opened_at"))
            runs.append(run)
        return runs
