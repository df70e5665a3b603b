"""aegis.silence: an Alertmanager silence over exactly the incident's alert while Aegis acts.

    st2 run aegis.silence incident_id=inc-... operation=create minutes=15 action=restart target=checkout
    st2 run aegis.silence incident_id=inc-... operation=expire silence_id=...   # verified
    st2 run aegis.silence incident_id=inc-... operation=delete silence_id=...   # failed: at once

Matchers are the alert's labels (equality), the comment names the incident, and the silence
ends after ``minutes`` (keep it within the workflow's deadline). Alertmanager's API v2 has
one way to end a silence, ``DELETE /api/v2/silence/{id}``, which expires it at once:
``expire`` and ``delete`` differ only in what the timeline records.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from alertmanager_api import AlertmanagerAPI
from base import AegisAction


class Silence(AegisAction):
    def run(self, incident_id: str, operation: str = "create", silence_id: str = "", minutes: float | None = None,
            action: str = "", target: str = "", diagnosis: dict[str, Any] | None = None) -> dict[str, Any]:
        action = action or str((diagnosis or {}).get("action") or "")
        target = target or str((diagnosis or {}).get("target") or "")
        incident = self.load_incident(incident_id)
        am = AlertmanagerAPI.from_config(self.config or {})
        if operation == "create":
            minutes = minutes or (self.section("safety").get("silence_minutes") or 15)
            ends_at = datetime.now(timezone.utc) + timedelta(minutes=float(minutes))
            comment = f"Aegis incident {incident_id}: {(action + ' ' + target).strip() or 'automated remediation'} (verifying; ends by deadline)"
            sid = am.silence(incident.get("labels") or {}, ends_at, comment)
            self.lifecycle.event(incident_id, None, f"silence {sid} created until {ends_at:%H:%M:%S}Z")
            return {"silence_id": sid, "ends_at": ends_at.isoformat(), "operation": operation}
        if not silence_id:
            return {"silence_id": "", "operation": operation, "skipped": "no silence"}
        am.expire(silence_id)
        self.lifecycle.event(incident_id, None, f"silence {silence_id} {'expired' if operation == 'expire' else 'deleted'}")
        return {"silence_id": silence_id, "operation": operation}
