"""``aegis.record_incident``: the first step of ``aegis.remediate``: the incident, from the store.

    st2 run aegis.record_incident incident_id=inc-0123456789abcdef

The sensor (or ``aegis.split_alert_group``) wrote the incident, labels and annotations
included, before the trigger was dispatched; the workflow carries only its id, so no alert
text ever becomes a workflow input (orquesta evaluates those as expressions). This step
fails with a clear reason when the id names no incident, so a workflow never runs on
nothing.
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from incidents import UnknownIncident


class RecordIncident(AegisAction):
    def run(self, incident_id: str) -> tuple[bool, dict[str, Any]]:
        try:
            incident = self.incidents.load(incident_id)
        except UnknownIncident as exc:
            return False, {"error": str(exc)}
        self.logger.info("incident %s (%s, %s)", incident["id"], incident["alertname"], incident["status"])
        return True, incident
