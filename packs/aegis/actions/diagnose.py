"""aegis.diagnose: decide what to do about one incident (LLM when configured, else offline).

    st2 run aegis.diagnose incident_id=inc-0123456789abcdef logs='["..."]'
    st2 run aegis.diagnose alert='{"labels": {...}, ...}'      # an ad hoc alert, no incident

In a workflow, pass the incident id: the alert (labels, annotations: attacker-controlled
text) is loaded from the incident store here, never carried through the workflow, whose
inputs orquesta evaluates as expressions. ``logs``, ``deploys``, ``metrics`` and
``sources`` are the results of context gathering, passed on by reference
(``<% ctx().context.logs %>``).

The result is the decision: action, target, root_cause, confidence, evidence, reasoning,
safety (see ``lib/diagnosis.py``). Guardrails have already been applied to it.
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from diagnosis import DiagnosisInputError, diagnose
from incidents import UnknownIncident, alert_of


class DiagnoseAction(AegisAction):
    def run(self, incident_id: str | None = None, alert: dict[str, Any] | None = None, logs: list[str] | None = None,
            deploys: list[dict[str, Any]] | None = None, metrics: dict[str, Any] | None = None,
            sources: dict[str, Any] | None = None, offline: bool = False) -> tuple[bool, Any]:
        if (incident_id is None) == (alert is None):
            return False, {"error": "give exactly one of incident_id (in workflows) and alert"}
        if incident_id is not None:
            try:
                alert = alert_of(self.incidents.load(incident_id))
            except UnknownIncident as exc:
                return False, {"error": str(exc)}
        context: dict[str, Any] = {"alert": alert, "logs": logs or [], "deploys": deploys or [], "metrics": metrics or {}}
        if sources is not None:
            context["sources"] = sources
        try:
            return True, diagnose(context, self.config, offline=offline)
        except DiagnosisInputError as exc:
            return False, {"error": str(exc)}
