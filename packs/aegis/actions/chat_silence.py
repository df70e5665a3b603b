"""aegis.chat_silence: silence or unsilence an incident's alert in Alertmanager, from chat.

    !st2 aegis silence inc-0123456789abcdef 2h          # approvers only
    !st2 aegis unsilence inc-0123456789abcdef

An Alertmanager API v2 silence over exactly the alert's labels (``lib/alertmanager_api.py``,
the code the remediation's own silences use), its comment naming the incident and who
asked; its id is kept in ``aegis.chat_silence.<incident>`` for ``unsilence``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from alertmanager_api import AlertmanagerAPI, AlertmanagerError
from base import AegisAction
from chatops import Permissions, parse_duration, slack_escape
from incidents import UnknownIncident

SILENCE_KEY = "aegis.chat_silence."


class ChatSilence(AegisAction):
    def run(self, incident_id: str, operation: str = "create", duration: str = "1h", chat_user: str = "",
            channel: str = "") -> tuple[bool, dict[str, Any]]:
        try:
            incident = self.incidents.load(incident_id.strip())
        except UnknownIncident as exc:
            return False, {"reply": f"No such incident: {slack_escape(exc, 200)}"}
        what = "silence" if operation == "create" else "unsilence"
        read = lambda key: self.action_service.get_value(key, local=False)  # noqa: E731
        refusal = Permissions(self.config, read).refusal(chat_user, what) if chat_user else None
        if refusal:
            self.lifecycle.event(incident["id"], None, f"{what} refused: {chat_user} is not an approver", user=chat_user)
            return False, {"refused": True, "reply": refusal}
        who = chat_user or "st2"
        try:
            am = AlertmanagerAPI.from_config(self.config or {})
            if operation == "create":
                seconds = parse_duration(duration)
                ends_at = datetime.now(timezone.utc) + timedelta(seconds=seconds)
                sid = am.silence(incident.get("labels") or {}, ends_at, f"Aegis incident {incident['id']}: silenced from chat by {who}",
                                 created_by=f"aegis/{who}")  # fmt: skip
                self.action_service.set_value(SILENCE_KEY + incident["id"], sid, local=False)
                self.lifecycle.event(incident["id"], None, f"silence {sid} by {who} until {ends_at:%H:%M}Z", user=who)
                return True, {"silence_id": sid, "ends_at": ends_at.isoformat(),
                              "reply": f":mute: Silenced `{incident['id']}` until {ends_at:%H:%M} UTC (silence `{sid}`)."}  # fmt: skip
            sid = read(SILENCE_KEY + incident["id"])
            if not sid:
                return False, {"reply": f"No chat silence on `{incident['id']}`."}
            am.expire(sid)
            self.action_service.delete_value(SILENCE_KEY + incident["id"], local=False)
            self.lifecycle.event(incident["id"], None, f"silence {sid} expired by {who}", user=who)
            return True, {"silence_id": sid, "reply": f":loud_sound: Unsilenced `{incident['id']}` (silence `{sid}` expired)."}
        except (AlertmanagerError, ValueError) as exc:
            return False, {"reply": f"Could not {what} `{incident['id']}`: {slack_escape(exc, 300)}"}
