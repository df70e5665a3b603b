"""aegis.chat_runbook: the runbooks and past incidents nearest to a question (``aegis runbook <query>``).

    st2 run aegis.chat_runbook query="disk full on db host"
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from chatops import knowledge_reply, slack_escape
from knowledge_service import search

from knowledge import KnowledgeError, KnowledgeSettings


class ChatRunbook(AegisAction):
    def run(self, query: str, k: int = 3) -> tuple[bool, dict[str, Any]]:
        try:
            hits, source = search(KnowledgeSettings.from_config(self.config), query, int(k))
        except KnowledgeError as exc:
            return False, {"reply": f"The knowledge index cannot answer now: {slack_escape(exc, 300)}"}
        found = [h.to_dict() for h in hits]
        return True, {"via": source, "hits": found, "reply": knowledge_reply(query, found)}
