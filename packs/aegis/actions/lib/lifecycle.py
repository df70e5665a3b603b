"""An incident's lifecycle and timeline, safe under concurrent writers on st2's datastore.

    life = Lifecycle(self.action_service)
    life.event("inc-1", "investigating", "context gathered: logs ok, deploys missing")
    life.event("inc-1", None, "restart checkout: done")           # a timeline entry, no transition
    life.state("inc-1")        # {"state": "investigating", "since": ..., "transitions": {...}, "mttr_seconds": None}
    life.timeline("inc-1")     # every event, oldest first

States: ``detected → investigating → identified → resolving → resolved | escalated |
false_positive`` (:data:`STATES`); ``escalated (unrouted)`` is ``escalated`` whose report
reached no one.

Every event is its own write-once key ``aegis.timeline.<incident>.<ns-time>-<random>``:
st2's datastore has no compare-and-set, so instead of a read-modify-write of one record
(where two workflows would lose each other's updates) each writer adds a key nobody else
writes, and readers fold them in time order. The state is the last transition's; a
terminal state is never left except to ``resolved`` (an escalated incident whose alert
later resolves) and ``false_positive`` (a human's verdict).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from timestamps import epoch_seconds, utc_iso

PREFIX = "aegis.timeline."
STATES = ("detected", "investigating", "identified", "resolving", "resolved", "escalated", "escalated (unrouted)", "false_positive")
TERMINAL = ("resolved", "escalated", "escalated (unrouted)", "false_positive")
LEAVES_TERMINAL = ("resolved", "false_positive")


class Lifecycle:
    def __init__(self, datastore: Any, clock: Any = time.time) -> None:
        self._ds = datastore
        self._clock = clock

    def event(self, incident_id: str, state: str | None, text: str, **data: Any) -> dict[str, Any]:
        """Add a timeline entry; with ``state``, a transition to it (ignored if not allowed)."""
        if state is not None and state not in STATES:
            raise ValueError(f"unknown incident state {state!r}")
        now = self._clock()
        entry = {"at": utc_iso(now), "ts": now, "state": state, "event": text[:500], **data}
        key = f"{PREFIX}{incident_id}.{int(now * 1e9):020d}-{os.urandom(4).hex()}"
        self._ds.set_value(key, json.dumps(entry, default=str), local=False)
        return entry

    def timeline(self, incident_id: str) -> list[dict[str, Any]]:
        pairs = self._ds.list_values(local=False, prefix=f"{PREFIX}{incident_id}.") or []
        entries = []
        for pair in sorted(pairs, key=lambda p: p.name):
            try:
                entries.append(json.loads(pair.value))
            except ValueError:
                continue
        return entries

    def state(self, incident_id: str, detected_at: str | None = None) -> dict[str, Any]:
        """The folded state: current state, first time of each state, MTTR when resolved."""
        state, since, transitions = "detected", None, {}
        if detected_at:
            transitions["detected"] = detected_at
        for entry in self.timeline(incident_id):
            new = entry.get("state")
            if not new or new == state:
                continue
            if state in TERMINAL and new not in LEAVES_TERMINAL:
                continue
            state, since = new, entry["at"]
            transitions.setdefault(new, entry["at"])
        mttr = None
        start = epoch_seconds(transitions.get("detected", "")) if transitions.get("detected") else None
        if state == "resolved" and start is not None and since:
            end = epoch_seconds(since)
            # A clock stepped back between the two writes must not give a negative MTTR.
            mttr = round(max(0.0, end - start), 3) if end is not None else None
        return {"state": state, "since": since, "transitions": transitions, "mttr_seconds": mttr}
