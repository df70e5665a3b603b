"""aegis.verify: is the incident's signal healthy again? Polls Prometheus / HTTP checks to a deadline.

    st2 run aegis.verify incident_id=inc-0123456789abcdef runbook=memory-leak-restart timeout_seconds=300

Checks: config ``verify.checks.<alertname>`` (or ``"*"``), else the runbook's
``verify_checks`` front matter (see ``lib/verification.py``). Succeeds either way; ``healthy``
says what was found (the workflow branches on it).
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from promql import Prometheus, PromQLError
from runbook_meta import runbook_front_matter, runbook_of
from verification import checks_for, settings, verify

from knowledge import KnowledgeSettings


class Verify(AegisAction):
    def run(self, incident_id: str, runbook: str = "", diagnosis: dict[str, Any] | None = None, timeout_seconds: float | None = None,
            consecutive: int | None = None, interval_seconds: float | None = None) -> dict[str, Any]:
        incident = self.load_incident(incident_id)
        runbook = runbook or runbook_of(diagnosis)
        config = self.config or {}
        runbooks_dir = KnowledgeSettings.from_config(config).runbooks_dir
        checks = checks_for(config, incident.get("alertname", ""), runbook_front_matter(runbooks_dir, runbook))
        try:
            prometheus = Prometheus.from_config(config)
        except PromQLError:
            prometheus = None
        opts = settings(config, timeout_seconds=timeout_seconds, consecutive=consecutive, interval_seconds=interval_seconds)
        result = verify(checks, incident.get("labels") or {}, prometheus, **opts)
        self.lifecycle.event(incident_id, None, f"verification: {'healthy' if result['healthy'] else 'not healthy'} ({result['reason']})")
        self.logger.info("decision incident=%s verify healthy=%s polls=%s reason=%s", incident_id, result["healthy"],
                         result["polls"], result["reason"])
        return {**result, "incident_id": incident_id, "checks": len(checks)}
