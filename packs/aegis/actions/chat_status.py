"""aegis.chat_status: the one-screen answer to "what is Aegis doing?" (``aegis status``).

    st2 run aegis.chat_status       ->  {mode, mode_source, open_incidents, actions_24h, last_escalation, reply}

Automated actions are counted over the incidents opened in the last 24 h (the safety
guards' per-incident record); the last escalation is the newest ``escalated`` transition
of any incident's timeline.
"""

from __future__ import annotations

import json
import time
from typing import Any

from base import AegisAction
from chatops import status_reply
from lifecycle import PREFIX as TIMELINE_PREFIX
from lifecycle import epoch_seconds
from mode import effective_mode
from safety import INCIDENT_PREFIX

DAY = 86400


class ChatStatus(AegisAction):
    def run(self) -> dict[str, Any]:
        read = lambda key: self.action_service.get_value(key, local=False)  # noqa: E731
        mode, source = effective_mode(self.config, read)
        incidents = self.incidents.list()
        now = time.time()
        recent = [i["id"] for i in incidents if (epoch_seconds(i.get("opened_at") or "") or 0) >= now - DAY]
        actions = 0
        for incident_id in recent:
            raw = read(INCIDENT_PREFIX + incident_id)
            actions += len(json.loads(raw)) if raw else 0
        last = None
        for pair in self.action_service.list_values(local=False, prefix=TIMELINE_PREFIX) or []:
            entry = json.loads(pair.value)
            if str(entry.get("state") or "").startswith("escalated") and (last is None or entry["ts"] > last["ts"]):
                last = {**entry, "incident_id": pair.name[len(TIMELINE_PREFIX):].rsplit(".", 1)[0]}
        last_change = json.loads(read("aegis.mode.last_change") or "null")
        status = {
            "mode": mode, "mode_source": source, "mode_change": last_change,
            "open_incidents": sum(1 for i in incidents if i["status"] == "open"), "actions_24h": actions,
            "last_escalation": {k: last[k] for k in ("incident_id", "at", "state", "event")} if last else None,
        }  # fmt: skip
        return {**status, "reply": status_reply(status)}
