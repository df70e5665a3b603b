"""The guards every acting action passes right before it acts.

    guard = Guards(self.action_service, self.config)
    refusal = guard.refusal(incident_id="inc-1", action="restart", target="checkout")
    if refusal is None:
        guard.record(incident_id="inc-1", action="restart", target="checkout")
        ...act...

Checked in this order, the first that fails is the refusal (a sentence for the humans):

| guard        | rule (config ``safety``)                                                   |
|--------------|-----------------------------------------------------------------------------|
| mode         | only ``auto`` acts (``aegis.mode`` in the datastore overrides the config)   |
| loop guard   | at most ``max_actions_per_incident`` (2) automated actions per incident     |
| cooldown     | no second ``action`` on one target within ``cooldown_seconds`` (600)        |
| rate limit   | at most ``max_actions_per_target_per_hour`` (3) actions on one target       |

State lives in the st2 datastore (``local=False``), so every action runner of a real
StackStorm sees it. The check and the record are not one atomic step: two workflows acting on
one target at once are kept apart by the ``action.concurrency.attr`` policy on ``target``
of each acting action (``policies/*_per_target.yaml``), which st2 enforces with its
coordination service. An action is recorded *before* it runs, so a crash mid-action still
counts against the budget (failing closed).

Keys: ``aegis.safety.history.<target-key>`` (JSON ``[[epoch, action, incident], ...]``, the
last hour) and ``aegis.safety.incident.<incident>`` (JSON list of actions taken).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from typing import Any

from mode import effective_mode

HISTORY_PREFIX = "aegis.safety.history."
INCIDENT_PREFIX = "aegis.safety.incident."
DEFAULTS = {"cooldown_seconds": 600, "max_actions_per_target_per_hour": 3, "max_actions_per_incident": 2}
HOUR = 3600


def target_key(target: str) -> str:
    """A datastore-safe key for any target string (readable prefix + hash, so no collisions)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", target)[:64]
    return f"{slug}-{hashlib.sha256(target.encode()).hexdigest()[:12]}"


class Guards:
    """Mode, loop guard, cooldown and rate limit over an st2 datastore (action service)."""

    def __init__(self, datastore: Any, config: dict[str, Any] | None, clock: Callable[[], float] = time.time) -> None:
        self._ds = datastore
        self._config = config or {}
        section = self._config.get("safety") if isinstance(self._config.get("safety"), dict) else {}
        self.settings = {k: section.get(k, v) for k, v in DEFAULTS.items()}
        self._clock = clock

    def mode(self) -> tuple[str, str]:
        """The mode in force now, read from the datastore each time (the off switch)."""
        return effective_mode(self._config, lambda key: self._ds.get_value(key, local=False))

    def _load(self, key: str) -> list:
        raw = self._ds.get_value(key, local=False)
        try:
            value = json.loads(raw) if raw else []
        except ValueError:
            value = []
        return value if isinstance(value, list) else []

    def history(self, target: str) -> list[list]:
        """``[[epoch, action, incident], ...]`` of the last hour on ``target``, oldest first."""
        cutoff = self._clock() - HOUR
        return [h for h in self._load(HISTORY_PREFIX + target_key(target)) if h and h[0] >= cutoff]

    def incident_actions(self, incident_id: str) -> list[str]:
        return [str(a) for a in self._load(INCIDENT_PREFIX + incident_id)]

    def refusal(self, incident_id: str, action: str, target: str, check_mode: bool = True) -> str | None:
        """Why this action must not run now, or None when every guard allows it."""
        if check_mode:
            mode, source = self.mode()
            if mode != "auto":
                return f"mode is {mode} ({source}): Aegis does not act"
        taken = self.incident_actions(incident_id)
        limit = int(self.settings["max_actions_per_incident"])
        if len(taken) >= limit:
            return f"loop guard: incident {incident_id} already had {len(taken)} automated actions ({', '.join(taken)}); limit {limit}"
        now = self._clock()
        history = self.history(target)
        cooldown = float(self.settings["cooldown_seconds"])
        same = [h for h in history if h[1] == action and now - h[0] < cooldown]
        if same:
            ago = int(now - same[-1][0])
            return f"cooldown: {action} of {target} ran {ago}s ago (incident {same[-1][2]}); wait {int(cooldown)}s between them"
        rate = int(self.settings["max_actions_per_target_per_hour"])
        if len(history) >= rate:
            return f"rate limit: {len(history)} actions on {target} in the last hour; limit {rate}"
        return None

    def record(self, incident_id: str, action: str, target: str) -> None:
        """Count an action against the target's and the incident's budgets (before it runs)."""
        history = self.history(target) + [[self._clock(), action, incident_id]]
        self._ds.set_value(HISTORY_PREFIX + target_key(target), json.dumps(history), ttl=HOUR, local=False)
        taken = self.incident_actions(incident_id) + [action]
        self._ds.set_value(INCIDENT_PREFIX + incident_id, json.dumps(taken), local=False)

    def status(self, incident_id: str, target: str) -> dict[str, Any]:
        """What the guards know, for the pre-check's report."""
        mode, source = self.mode()
        return {"mode": mode, "mode_source": source, "incident_actions": self.incident_actions(incident_id),
                "target_actions_last_hour": len(self.history(target)), **self.settings}
