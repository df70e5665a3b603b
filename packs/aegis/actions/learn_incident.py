"""aegis.learn_incident: remember how a remediation went, for future diagnoses.

    st2 run aegis.learn_incident alert='{...}' action=restart outcome=resolved
    st2 run aegis.learn_incident signature="HighMemoryUsage|checkout" action=restart outcome=failed

A ``failed`` outcome is negative evidence: the diagnoser will not pick that action again
for the same signature (it takes an alternative or escalates) until it succeeds once.
"""

from __future__ import annotations

from typing import Any

from knowledge_service import client_settings, remember
from st2common.runners.base_action import Action

from knowledge import KnowledgeError, signature_of


class LearnIncidentAction(Action):
    def run(self, action: str, outcome: str, alert: dict[str, Any] | None = None, signature: str = "",
            summary: str = "", root_cause: str = "", target: str = "",
            diagnosis: dict[str, Any] | None = None) -> tuple[bool, Any]:
        # Workflows pass the diagnosis object (strings from it would be evaluated once more).
        if isinstance(diagnosis, dict):
            root_cause = root_cause or str(diagnosis.get("root_cause") or "")
            target = target or str(diagnosis.get("target") or "")
        if not signature:
            if not isinstance(alert, dict) or not alert.get("labels"):
                return False, {"error": "give either signature or an alert with labels"}
            signature = signature_of(alert)
        if not summary and isinstance(alert, dict):
            summary = str((alert.get("annotations") or {}).get("summary", ""))
        try:
            incident, source = remember(
                client_settings(self.config, self.action_service), signature=signature, action=action,
                outcome=outcome, summary=summary, root_cause=root_cause, target=target,
            )
        except KnowledgeError as exc:
            return False, {"error": str(exc)}
        return True, {**incident, "via": source}
