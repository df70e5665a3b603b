"""``aegis.close_incident``: close the open incident of a resolved alert.

    st2 run aegis.close_incident incident_id=inc-0123456789abcdef ends_at=2024-05-01T10:09:00Z
    st2 run aegis.close_incident fingerprint=c0ffee0123456789 starts_at=2024-05-01T10:00:00Z

The episode is found by ``incident_id`` when given, else by fingerprint and startsAt; if
neither names a known incident, the open incident of the fingerprint is closed (a resolve
whose startsAt differs, e.g. re-sent by a restarted Alertmanager). Closing twice is a no-op.
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from incidents import incident_id as episode_id


class CloseIncident(AegisAction):
    def run(
        self,
        fingerprint: str = "",
        starts_at: str = "",
        ends_at: str = "",
        incident_id: str | None = None,
        reason: str = "resolved",
    ) -> dict[str, Any]:
        store = self.incidents
        candidates = [incident_id] if incident_id else []
        if fingerprint and starts_at:
            candidates.append(episode_id(fingerprint, starts_at))
        incident = next((found for c in candidates if (found := store.get(c)) is not None), None)
        if incident is None and fingerprint:
            incident = store.open_incident_for(fingerprint)
        if incident is None:
            self.logger.info("no incident for fingerprint %s (startsAt %s); nothing to close", fingerprint, starts_at)
            return {"closed": False, "incident": None, "reason": "no such incident"}
        if incident["status"] == "closed":
            return {"closed": False, "incident": incident, "reason": "already closed"}
        closed = store.close(incident["id"], ends_at=ends_at or None, reason=reason)
        self.logger.info("closed incident %s (%s)", incident["id"], reason)
        return {"closed": True, "incident": closed, "reason": reason}
