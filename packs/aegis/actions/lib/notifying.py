"""The action that builds a report and delivers it (``aegis.notify``, ``aegis.escalate``).

    class Escalate(NotifyingAction):
        kind = "escalation"
"""

from __future__ import annotations

from typing import Any

from approvals import close_pending, request_posts_plan, save_plan
from base import AegisAction
from outcomes import finished, identified
from reports import build_report, deliver, report_text
from runbook_meta import runbook_of
from timestamps import utc_iso

STATE_AFTER = {"advisory": "identified", "resolved": "resolved", "noop": "identified", "escalation": "escalated",
               "self_resolved": "false_positive", "approval": "identified", "declined": "escalated"}


class NotifyingAction(AegisAction):
    kind = ""

    def run(self, incident_id: str, kind: str = "", diagnosis: dict[str, Any] | None = None,
            attempts: list[dict[str, Any]] | None = None, verifications: list[str] | None = None,
            note: str = "", refusal: dict[str, Any] | None = None) -> dict[str, Any]:
        # Reasons that may quote alert text (a target) come as an object, never as a
        # string built in the workflow (orquesta would evaluate it once more).
        if isinstance(refusal, dict) and refusal.get("reason"):
            note = f"{note}: {refusal['reason']}" if note else str(refusal["reason"])
        kind = self.kind or kind
        incident = self.load_incident(incident_id)
        config = self.config or {}
        rb = runbook_of(diagnosis)
        runbook_url = f"knowledge/runbooks/{rb}.md" if rb else ""
        checks = list(verifications or [])
        attempts = [{**a, **({"verification": checks[i]} if i < len(checks) else {})} for i, a in enumerate(attempts or [])]
        report = build_report(kind, incident, diagnosis, attempts, self.lifecycle.timeline(incident_id), runbook_url, note)
        if kind == "approval" and request_posts_plan(config):
            # One message per approval: aegis.request_approval posts this plan with the
            # Approve/Deny buttons once the inquiry exists (approvals.py).
            save_plan(self.action_service, incident_id, report)
            delivery = {"slack": {"status": "deferred", "detail": "posted with the approval buttons by aegis.request_approval"},
                        "pagerduty": {"status": "not_applicable"}, "routed": False}  # fmt: skip
        else:
            delivery = deliver(config, report)
        if kind != "approval":
            # The workflow went on: an approval message still showing buttons (the inquiry timed
            # out, or was answered with `st2 inquiry respond`) loses them.
            close_pending(config, self.action_service, incident, utc_iso(), note or f"incident {STATE_AFTER[kind]}")
        state = STATE_AFTER[kind]
        if kind == "escalation" and not delivery["routed"]:
            state = "escalated (unrouted)"
            self.logger.error("ESCALATION REACHED NO ONE: incident %s (%s) needs a human but no Slack or PagerDuty is "
                              "configured or reachable (slack: %s, pagerduty: %s)\n%s", incident_id, incident.get("alertname"),
                              delivery["slack"], delivery["pagerduty"], report_text(report))
        text = f"{kind} notification: slack {delivery['slack']['status']}, pagerduty {delivery['pagerduty']['status']}"
        if state == "identified":
            identified(self.lifecycle, incident, text)
        else:
            if kind == "escalation":
                identified(self.lifecycle, incident, "diagnosis: " + str((diagnosis or {}).get("action", "none")))
            finished(self.lifecycle, incident, state, text)
        self.logger.info("decision incident=%s notify kind=%s state=%s routed=%s", incident_id, kind, state, delivery["routed"])
        return {"kind": kind, "state": state, "delivery": delivery, "report": report}
