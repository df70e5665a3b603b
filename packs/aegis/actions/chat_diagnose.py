"""aegis.chat_diagnose: a dry-run diagnosis of an open incident (``aegis diagnose <id>``).

    st2 run aegis.chat_diagnose incident_id=inc-0123456789abcdef

Diagnoses exactly as the workflow would (the LLM when configured, else offline, then the
guardrails) from the stored alert, and acts on nothing: no action is run, the incident's
lifecycle is not changed; only a timeline note records that someone asked.
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from chatops import diagnosis_reply, slack_escape
from diagnosis import DiagnosisInputError, diagnose
from incidents import OPEN, UnknownIncident, alert_of


class ChatDiagnose(AegisAction):
    def run(self, incident_id: str, chat_user: str = "") -> tuple[bool, dict[str, Any]]:
        try:
            incident = self.incidents.load(incident_id.strip())
        except UnknownIncident as exc:
            return False, {"reply": f"No such incident: {slack_escape(exc, 200)}"}
        if incident["status"] != OPEN:
            return False, {"reply": f"`{incident['id']}` is closed ({slack_escape(incident.get('close_reason'), 60)}); nothing to diagnose."}
        try:
            decision = diagnose({"alert": alert_of(incident), "logs": [], "deploys": [], "metrics": {}}, self.config)
        except DiagnosisInputError as exc:
            return False, {"reply": f"Cannot diagnose `{incident['id']}`: {slack_escape(exc, 300)}"}
        self.lifecycle.event(incident["id"], None, f"dry-run diagnosis asked by {chat_user or 'st2'}: would "
                                                   f"{decision.get('action')} {decision.get('target') or ''}".strip())  # fmt: skip
        return True, {"dry_run": True, "diagnosis": decision, "reply": diagnosis_reply(incident, decision)}
