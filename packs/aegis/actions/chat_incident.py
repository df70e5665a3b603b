"""aegis.chat_incident: one incident and its timeline, for chat (``aegis incident <id>``).

    st2 run aegis.chat_incident incident_id=inc-0123456789abcdef
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from chatops import incident_reply, slack_escape
from incidents import UnknownIncident


class ChatIncident(AegisAction):
    def run(self, incident_id: str) -> tuple[bool, dict[str, Any]]:
        try:
            incident = self.incidents.load(incident_id.strip())
        except UnknownIncident as exc:
            return False, {"reply": f"No such incident: {slack_escape(exc, 200)}. Try `!st2 aegis incidents all`."}
        state = self.lifecycle.state(incident["id"], incident.get("opened_at"))
        timeline = self.lifecycle.timeline(incident["id"])
        return True, {"incident": incident, "state": state, "timeline": timeline,
                      "reply": incident_reply(incident, state, timeline)}  # fmt: skip
