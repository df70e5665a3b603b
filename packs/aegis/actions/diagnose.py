"""aegis.diagnose: decide what to do about one incident (LLM when configured, else offline).

    st2 run aegis.diagnose alert='{"labels": {...}, ...}' logs='["..."]' deploys='[...]'

The result is the decision: action, target, root_cause, confidence, evidence, reasoning,
safety (see ``lib/diagnosis.py``). Guardrails have already been applied to it.
"""

from __future__ import annotations

from typing import Any

from diagnosis import DiagnosisInputError, diagnose
from st2common.runners.base_action import Action


class DiagnoseAction(Action):
    def run(self, alert: dict[str, Any], logs: list[str] | None = None, deploys: list[dict[str, Any]] | None = None,
            metrics: dict[str, Any] | None = None, offline: bool = False) -> tuple[bool, Any]:
        context = {"alert": alert, "logs": logs or [], "deploys": deploys or [], "metrics": metrics or {}}
        try:
            return True, diagnose(context, self.config, offline=offline)
        except DiagnosisInputError as exc:
            return False, {"error": str(exc)}
