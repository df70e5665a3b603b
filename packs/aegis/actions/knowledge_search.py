"""aegis.knowledge_search: nearest runbooks and past incidents to a text.

    st2 run aegis.knowledge_search text="pods OOMKilled since the last release" k=3
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from knowledge_service import client_settings, search

from knowledge import KnowledgeError


class KnowledgeSearchAction(AegisAction):
    def run(self, text: str, k: int = 5) -> tuple[bool, Any]:
        try:
            hits, source = search(client_settings(self.config, self.action_service), text, int(k))
        except KnowledgeError as exc:
            return False, {"error": str(exc)}
        return True, {"via": source, "hits": [h.to_dict() for h in hits]}
