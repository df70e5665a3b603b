"""Log lines the log-pattern sensor matched, kept per service for context gathering.

    remember_matched_lines(sensor_service, payload)       # the sensor, after each dispatch
    matched_lines(action_service, "checkout")             # aegis.gather_context

Key ``aegis.matched_lines.<service key>`` (``local=False``, JSON ``[{"at", "pattern",
"line"}, ...]``, the last :data:`KEEP`, expiring an hour after the last match). The service
is the trigger's ``fields.service`` (else ``app``, ``process``, ``container``, else the
source file). One writer (the sensor), so the read-modify-write loses nothing.
"""

from __future__ import annotations

import json
from typing import Any

from safety import target_key

PREFIX = "aegis.matched_lines."
KEEP = 50
TTL = 3600
SERVICE_FIELDS = ("service", "app", "process", "container", "deployment", "job")


def service_of(payload: dict[str, Any]) -> str:
    fields = payload.get("fields") or {}
    return next((str(fields[f]) for f in SERVICE_FIELDS if fields.get(f)), str(payload.get("source", "")))


def remember_matched_lines(datastore: Any, payload: dict[str, Any]) -> bool:
    """Best effort: the trigger is already recorded, so a datastore hiccup here loses only context."""
    key = PREFIX + target_key(service_of(payload))
    try:
        try:
            kept = json.loads(datastore.get_value(key, local=False) or "[]")
        except ValueError:
            kept = []
        kept += [{"at": payload.get("last_seen"), "pattern": payload.get("pattern"), "line": line} for line in payload.get("lines") or []]
        datastore.set_value(key, json.dumps(kept[-KEEP:]), ttl=TTL, local=False)
    except Exception:  # noqa: BLE001
        return False
    return True


def matched_lines(datastore: Any, service: str) -> list[dict[str, Any]]:
    raw = datastore.get_value(PREFIX + target_key(service), local=False)
    try:
        return json.loads(raw) if raw else []
    except ValueError:
        return []
