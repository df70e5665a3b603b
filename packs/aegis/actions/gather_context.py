"""aegis.gather_context: logs, deploys and metrics of an incident's workload, for the diagnosis.

    st2 run aegis.gather_context incident_id=inc-0123456789abcdef

Loads the alert from the incident store (never from parameters) and returns the diagnosis
context ``{"alert", "logs", "deploys", "metrics", "sources"}`` (see ``lib/context.py``).
A failing source is noted in ``sources``; the action itself does not fail for it.
"""

from __future__ import annotations

from typing import Any

from base import AegisAction
from context import gather

from knowledge import KnowledgeSettings


class GatherContext(AegisAction):
    def run(self, incident_id: str) -> dict[str, Any]:
        incident = self.load_incident(incident_id)
        config = self.config or {}
        context = gather(incident, config, self.action_service, KnowledgeSettings.from_config(config).runbooks_dir)
        summary = ", ".join(f"{k} {v['status']}" for k, v in context["sources"].items())
        self.lifecycle.event(incident_id, "investigating", f"context gathered: {len(context['logs'])} log lines, "
                                                          f"{len(context['deploys'])} deploys, {len(context['metrics'])} metrics ({summary})")
        return context
