"""aegis.precheck: may Aegis act now? The alert still fires and the guards allow it.

    st2 run aegis.precheck incident_id=inc-0123456789abcdef action=restart target=checkout
    (in a workflow: diagnosis=<% ctx().diagnosis %>, the whole object)

Returns ``{"ok", "firing", "reason", "guards", "lock"}`` (``lock``: the target's key for the
per-target policy, safe characters only): ``firing`` from Alertmanager API v2
(config ``alertmanager_api.url``; ``false`` when the alert resolved meanwhile, ``null`` when
it could not be asked), ``reason`` the first thing that forbids acting. Without an
Alertmanager to ask, acting is refused unless ``safety.require_firing_check`` is false.
"""

from __future__ import annotations

from typing import Any

from alertmanager_api import AlertmanagerAPI, AlertmanagerError
from base import AegisAction
from outcomes import identified
from safety import Guards, target_key


class Precheck(AegisAction):
    def run(self, incident_id: str, diagnosis: dict[str, Any] | None = None, action: str = "", target: str = "") -> dict[str, Any]:
        # Workflows pass the diagnosis object, never its target string (see lib/acting.py).
        action = action or str((diagnosis or {}).get("action") or "")
        target = target or str((diagnosis or {}).get("target") or "")
        incident = self.load_incident(incident_id)
        config = self.config or {}
        guards = Guards(self.action_service, config)
        firing, reason = None, None
        try:
            firing = AlertmanagerAPI.from_config(config).still_firing(incident["fingerprint"])
        except AlertmanagerError as exc:
            if (config.get("safety") or {}).get("require_firing_check", True):
                reason = f"cannot confirm the alert still fires: {exc}"
        if firing is False:
            reason = "the alert is no longer firing"
        reason = reason or guards.refusal(incident_id, action, target)
        identified(self.lifecycle, incident, f"diagnosis: {action} {target}")
        self.lifecycle.event(incident_id, None, f"pre-check {action} {target}: " + ("ok" if reason is None else f"refused: {reason}"))
        self.logger.info("decision incident=%s precheck action=%s target=%s firing=%s ok=%s%s", incident_id, action, target,
                         firing, reason is None, f" reason={reason}" if reason else "")
        return {"ok": reason is None, "firing": firing, "reason": reason, "guards": guards.status(incident_id, target),
                "lock": target_key(target)}
