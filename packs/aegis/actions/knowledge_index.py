"""aegis.knowledge_index: build or incrementally update the runbook/incident index.

    st2 run aegis.knowledge_index            # re-embeds only changed runbooks/incidents
    st2 run aegis.knowledge_index force=true # re-embeds everything (e.g. after a model change)
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from knowledge_service import client_settings, rebuild

from knowledge import KnowledgeError


class KnowledgeIndexAction(AegisAction):
    def run(self, force: bool = False) -> tuple[bool, Any]:
        settings = client_settings(self.config, self.action_service)
        try:
            stats, source = rebuild(settings, force=bool(force))
        except KnowledgeError as exc:
            return False, {"error": str(exc)}
        return True, {**stats, "index_dir": str(settings.index_dir), "via": source}
