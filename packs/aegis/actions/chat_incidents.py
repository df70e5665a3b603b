"""aegis.chat_incidents: the incident list for chat (``aegis incidents [open|all]``).

    st2 run aegis.chat_incidents which=all
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from chatops import incidents_reply


class ChatIncidents(AegisAction):
    def run(self, which: str = "open") -> dict[str, Any]:
        records = self.incidents.list(status="open" if which == "open" else None)
        records.reverse()  # newest first: the one that woke you up is on top
        rows = [(r, self.lifecycle.state(r["id"], r.get("opened_at"))["state"]) for r in records]
        return {"which": which, "count": len(rows), "incidents": [{"id": r["id"], "state": s} for r, s in rows],
                "reply": incidents_reply(rows, which)}  # fmt: skip
