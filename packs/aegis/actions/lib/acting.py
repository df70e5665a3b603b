"""The shape every acting action shares: plan, dry run or guard, act, report.

    class Restart(ActingAction):
        name = "restart"          # the remedy table in lib/remedies.py does the rest

``run(incident_id, target | decision, dry_run=True, lock=..., ...)`` returns
``{"action", "target", "incident_id", "dry_run", "outcome", "reason", "plan", "result"}``,
``outcome`` being ``dry_run``, ``refused`` (a guard said no, see ``lib/safety.py``) or
``done``. The plan (read-only: the backend, the object, the exact commands, keys, files and
bytes) is made first in every case, so a dry run reports exactly what would be done. A
refusal is a succeeded execution (the workflow branches on it); a backend error fails the
execution. The mode is read right before acting, never earlier, so switching to ``monitor``
stops a running workflow before its next action.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from base import AegisAction
from outcomes import ACTIONS, identified
from remedies import remedy_for
from safety import Guards, target_key

LOG = logging.getLogger("aegis.act")


class ActingAction(AegisAction):
    name = ""

    def run(self, incident_id: str, target: str = "", dry_run: bool = True, decision: dict[str, Any] | None = None,
            lock: str = "", **params: Any) -> dict[str, Any]:
        # In a workflow the target comes inside the decision object: orquesta evaluates a
        # string an expression returns once more, so a target label "<% ... %>" passed as
        # <% ctx().diagnosis.target %> would be rewritten on the way. ``lock`` is the
        # target's key (safe characters only) that the per-target policy counts on.
        if isinstance(decision, dict) and decision.get("target"):
            if target and target != decision["target"]:
                raise ValueError("target and decision.target differ")
            target = str(decision["target"])
        if not target:
            raise ValueError("give target (or a decision with one)")
        if lock and lock != target_key(target):
            raise ValueError(f"lock {lock!r} is not the key of target {target!r}")
        report: dict[str, Any] = {"action": self.name, "target": target, "incident_id": incident_id,
                                  "dry_run": bool(dry_run), "outcome": "dry_run", "reason": None, "result": None}
        guards = Guards(self.action_service, self.config)
        try:
            started = time.monotonic()
            remedy, entry = remedy_for(self.name, self.config or {}, target)
            report["plan"] = remedy.plan(self.config or {}, target, entry, params)
            report["seconds"] = {"plan": round(time.monotonic() - started, 4)}
            if not dry_run:
                report["reason"] = guards.refusal(incident_id, self.name, target)
                if report["reason"] is None:
                    guards.record(incident_id, self.name, target)
                    started = time.monotonic()
                    report["result"] = remedy.execute(self.config or {}, report["plan"])
                    report["seconds"]["execute"] = round(time.monotonic() - started, 4)  # waiting on the target
                    report["outcome"] = "done"
                else:
                    report["outcome"] = "refused"
        except Exception as exc:
            ACTIONS.labels(action=self.name, result="failed").inc()
            self.lifecycle.event(incident_id, None, f"{self.name} {target}: failed ({str(exc)[:200]})")
            LOG.error("decision incident=%s action=%s target=%s outcome=failed error=%s", incident_id, self.name, target, exc)
            raise
        ACTIONS.labels(action=self.name, result=report["outcome"]).inc()
        incident = self.incidents.get(incident_id)
        if report["outcome"] == "dry_run" and incident is not None:
            identified(self.lifecycle, incident, f"proposed {self.name} {target} (dry run)")
        elif report["outcome"] == "dry_run":
            self.lifecycle.event(incident_id, None, f"proposed {self.name} {target} (dry run)")
        elif report["outcome"] == "done":
            self.lifecycle.event(incident_id, "resolving", f"{self.name} {target}: done")
        else:
            self.lifecycle.event(incident_id, None, f"{self.name} {target}: refused ({report['reason']})")
        LOG.info("decision incident=%s action=%s target=%s mode=%s outcome=%s%s", incident_id, self.name, target,
                 guards.mode()[0], report["outcome"], f" reason={report['reason']}" if report["reason"] else "")
        return report
