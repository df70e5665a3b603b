"""The base class of Aegis's python actions: pack config sections and shared stores.

    from base import AegisAction

    class RecordIncident(AegisAction):
        def run(self, **alert):
            return self.incidents.record(alert)

Small on purpose: clients (Slack, Kubernetes, ...) are built lazily by the actions that
need them, from ``self.section(name)``, so an action pays only for what it uses.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from incidents import IncidentStore
from lifecycle import Lifecycle
from st2common.runners.base_action import Action


class AegisAction(Action):
    """An st2 ``Action`` with Aegis's config helpers and incident store."""

    def section(self, name: str) -> dict[str, Any]:
        """A config section as a dict (``{}`` when absent or null, so callers can ``.get``)."""
        value = (self.config or {}).get(name)
        return value if isinstance(value, dict) else {}

    @cached_property
    def incidents(self) -> IncidentStore:
        if self.action_service is None:
            raise RuntimeError(f"{type(self).__name__} needs an action_service (the st2 datastore) for incidents")
        return IncidentStore(self.action_service)

    @cached_property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.action_service)

    def load_incident(self, incident_id: str) -> dict[str, Any]:
        """The stored incident (alert content comes from here, never from parameters);
        raises ``incidents.UnknownIncident`` (a clear failure) when there is none."""
        return self.incidents.load(incident_id)
