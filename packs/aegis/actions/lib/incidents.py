"""Incidents, kept in the st2 datastore so every sensor and action on any st2 node shares them.

    >>> store = IncidentStore(self.sensor_service)        # or self.action_service
    >>> incident, repeat = store.open_or_repeat(alert)     # alert: an aegis.alert payload
    >>> store.close(incident["id"], ends_at="2024-05-01T10:09:00Z")

Keys (all ``local=False``, JSON values, in scope ``system``):

- ``aegis.incident.<id>`` — the incident record (see :data:`FIELDS`).
- ``aegis.incident.<id>.repeats`` — how many repeat notifications arrived. Kept apart from
  the record because the sensor increments it while the workflow's ``record_incident``
  rewrites the record; two writers of one key would lose updates.
- ``aegis.incident_open.<fingerprint>`` — the id of the open incident of an alert series
  (:func:`open_index_key`: a fingerprint that is not a safe token is hashed).

An incident id is derived from the alert's fingerprint and ``startsAt``: Alertmanager keeps
both fixed for one firing episode (a re-fire after a resolve gets a new startsAt), so the
id names the episode and every duplicate of it, from any HA peer, maps to the same key.

Alert text is data: the sensor (or ``aegis.split_alert_group``) writes the alert here, and
workflows carry only the incident id (:data:`INCIDENT_ID_PATTERN`), never labels or
annotations: orquesta evaluates every workflow input value as an expression.

    >>> alert = load_alert(store, "inc-0123456789abcdef")   # the v4 alert of an incident
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Protocol

from timestamps import utc_iso

KEY_PREFIX = "aegis.incident."
OPEN_PREFIX = "aegis.incident_open."
OPEN = "open"
CLOSED = "closed"
FIELDS = (
    "id", "fingerprint", "status", "alertname", "labels", "annotations", "starts_at", "ends_at",
    "opened_at", "closed_at", "close_reason", "repeats", "receiver", "group_key", "external_url",
    "generator_url",
)  # fmt: skip
#: What an incident id looks like; action parameter schemas carry the same pattern, so
#: nothing expression-like can be passed where an id is expected.
INCIDENT_ID_PATTERN = r"^inc-[0-9a-f]{16}$"
_INCIDENT_ID = re.compile(INCIDENT_ID_PATTERN)


class UnknownIncident(LookupError):
    """An incident id that names no stored incident (or is not an incident id at all)."""


class Datastore(Protocol):
    """What st2's sensor service and action service both offer."""

    def get_value(self, name: str, local: bool = ..., scope: str = ..., decrypt: bool = ...) -> Any: ...
    def set_value(self, name: str, value: Any, ttl: int | None = ..., local: bool = ..., scope: str = ..., encrypt: bool = ...) -> Any: ...
    def list_values(self, local: bool = ..., prefix: str | None = ..., limit: Any = ..., offset: Any = ...) -> Any: ...
    def delete_value(self, name: str, local: bool = ..., scope: str = ...) -> Any: ...


def incident_id(fingerprint: str, starts_at: str) -> str:
    """The id of the firing episode ``(fingerprint, startsAt)``: ``inc-`` and 16 hex digits."""
    digest = hashlib.sha256(f"{fingerprint.lower()}|{starts_at}".encode()).hexdigest()
    return f"inc-{digest[:16]}"


def is_incident_id(value: object) -> bool:
    """True for ``inc-`` and 16 lowercase hex digits (what :func:`incident_id` makes)."""
    return isinstance(value, str) and _INCIDENT_ID.match(value) is not None


def alert_of(incident: dict[str, Any]) -> dict[str, Any]:
    """The Alertmanager v4 alert an incident was recorded from (the diagnosis context's ``alert``)."""
    return {
        "status": "firing" if incident.get("status") == OPEN else "resolved",
        "labels": dict(incident.get("labels") or {}),
        "annotations": dict(incident.get("annotations") or {}),
        "startsAt": incident.get("starts_at") or "",
        "endsAt": incident.get("ends_at") or "0001-01-01T00:00:00Z",
        "generatorURL": incident.get("generator_url") or "",
        "fingerprint": incident.get("fingerprint") or "",
    }


_HEX_FINGERPRINT = re.compile(r"[0-9a-fA-F]{16}")
_SAFE_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def open_index_key(fingerprint: str) -> str:
    """The datastore key naming the open incident of a series (``aegis.incident_open.<...>``).

    Alertmanager's hex fingerprint (lower-cased) or any other safe token as it is; a
    fingerprint with other characters (other senders may send ``/``, spaces, ...) is hashed,
    so no key holds characters st2's API or CLI would trip on.
    """
    if _HEX_FINGERPRINT.fullmatch(fingerprint):
        return OPEN_PREFIX + fingerprint.lower()
    if _SAFE_TOKEN.fullmatch(fingerprint):
        return OPEN_PREFIX + fingerprint
    return OPEN_PREFIX + "sha256-" + hashlib.sha256(fingerprint.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def record_from_alert(alert: dict[str, Any]) -> dict[str, Any]:
    """A new open incident record from an ``aegis.alert`` payload."""
    labels = alert.get("labels") or {}
    return {
        "id": alert.get("incident_id") or incident_id(alert["fingerprint"], alert["startsAt"]),
        "fingerprint": alert["fingerprint"],
        "status": OPEN,
        "alertname": alert.get("alertname") or labels.get("alertname", ""),
        "labels": labels,
        "annotations": alert.get("annotations") or {},
        "starts_at": alert["startsAt"],
        "ends_at": None,
        "opened_at": utc_iso(),
        "closed_at": None,
        "close_reason": None,
        "repeats": 0,
        "receiver": alert.get("receiver", ""),
        "group_key": alert.get("groupKey", ""),
        "external_url": alert.get("externalURL", ""),
        "generator_url": alert.get("generatorURL", ""),
    }


# What record() never overwrites in an existing incident: its lifecycle belongs to
# open_or_repeat() and close().
_KEPT_ON_RECORD = ("status", "opened_at", "closed_at", "close_reason", "ends_at", "repeats")


class IncidentStore:
    """Incident records in an st2 datastore (a sensor service or an action service)."""

    def __init__(self, datastore: Datastore) -> None:
        self._ds = datastore

    # -- reads -------------------------------------------------------------------------

    def get(self, incident_id: str) -> dict[str, Any] | None:
        """The incident with its current repeat count, or None."""
        if not is_incident_id(incident_id):
            return None
        raw = self._ds.get_value(KEY_PREFIX + incident_id, local=False)
        if raw is None:
            return None
        record = json.loads(raw)
        repeats = self._ds.get_value(KEY_PREFIX + incident_id + ".repeats", local=False)
        record["repeats"] = int(repeats) if repeats else 0
        return record

    def load(self, incident_id: str) -> dict[str, Any]:
        """The incident ``incident_id``; :class:`UnknownIncident` when there is none."""
        if not is_incident_id(incident_id):
            raise UnknownIncident(f"{incident_id!r} is not an incident id (inc- and 16 hex digits)")
        record = self.get(incident_id)
        if record is None:
            raise UnknownIncident(f"no incident {incident_id} in the datastore (the sensor records it first)")
        return record

    def open_incident_for(self, fingerprint: str) -> dict[str, Any] | None:
        """The open incident of an alert series, whatever its startsAt."""
        inc_id = self._ds.get_value(open_index_key(fingerprint), local=False)
        if not inc_id:
            return None
        record = self.get(inc_id)
        return record if record and record["status"] == OPEN else None

    def list(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every incident (optionally only ``open`` or ``closed`` ones), oldest first."""
        pairs = self._ds.list_values(local=False, prefix=KEY_PREFIX) or []
        records, repeats = [], {}
        for pair in pairs:
            name = pair.name[len(KEY_PREFIX):]
            if name.endswith(".repeats"):
                repeats[name[: -len(".repeats")]] = int(pair.value or 0)
            else:
                records.append(json.loads(pair.value))
        for record in records:
            record["repeats"] = repeats.get(record["id"], 0)
        if status:
            records = [r for r in records if r["status"] == status]
        return sorted(records, key=lambda r: r.get("opened_at") or "")

    def prefetch(self, alerts: list[dict[str, Any]]) -> None:
        """Load what deciding ``alerts`` will read, in one query, where the datastore can.

        st2lite's sensor service offers ``prefetch_values`` inside a group commit; st2's
        has none, and then this does nothing (each read queries on its own).
        """
        fetch = getattr(self._ds, "prefetch_values", None)
        if fetch is None:
            return
        records = [KEY_PREFIX + incident_id(a["fingerprint"], a["startsAt"]) for a in alerts]
        fetch(records + [open_index_key(a["fingerprint"]) for a in alerts], local=False)
        # A repeat count is read only for an incident that exists (a repeat).
        known = [key + ".repeats" for key in records if self._ds.get_value(key, local=False) is not None]
        if known:
            fetch(known, local=False)

    # -- writes ------------------------------------------------------------------------

    def save(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write a record (its ``repeats`` lives in its own key and is not written here)."""
        body = {k: record.get(k) for k in FIELDS if k != "repeats"}
        self._ds.set_value(KEY_PREFIX + record["id"], json.dumps(body), local=False)  # FIELDS order
        index = open_index_key(record["fingerprint"])
        if record["status"] == OPEN:
            self._ds.set_value(index, record["id"], local=False)
        elif self._ds.get_value(index, local=False) == record["id"]:
            self._ds.delete_value(index, local=False)
        return {**body, "repeats": record.get("repeats", 0)}

    def open_or_repeat(self, alert: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Decide whether a firing alert starts an incident or repeats a known one.

        Returns ``(incident, repeat)``. A new episode is written as open at once so that the
        decision survives a restart and is seen by every node. The caller must serialize
        calls per fingerprint (the sensor does) and call :meth:`forget` if it then fails to
        dispatch, or the retry would be taken for a repeat and never remediated.

        An episode already known, open or closed, is a repeat: a closed one means a late
        duplicate (an HA peer's copy arriving after the resolve), which must not reopen it.
        """
        inc_id = incident_id(alert["fingerprint"], alert["startsAt"])
        existing = self.get(inc_id)
        if existing is not None:
            return existing, True
        # A new episode of a series whose previous one never got its resolve (a lost
        # notification): that one is over, or Alertmanager would not have a new startsAt.
        previous = self.open_incident_for(alert["fingerprint"])
        if previous is not None:
            self.close(previous["id"], ends_at=alert["startsAt"], reason="superseded")
        record = record_from_alert({**alert, "incident_id": inc_id})
        return self.save(record), False

    def forget(self, incident_id: str) -> None:
        """Undo :meth:`open_or_repeat` for an episode whose trigger could not be dispatched."""
        record = self.get(incident_id)
        if record is None:
            return
        self._ds.delete_value(KEY_PREFIX + incident_id, local=False)
        self._ds.delete_value(KEY_PREFIX + incident_id + ".repeats", local=False)
        if self._ds.get_value(open_index_key(record["fingerprint"]), local=False) == incident_id:
            self._ds.delete_value(open_index_key(record["fingerprint"]), local=False)

    def count_repeat(self, incident_id: str) -> int:
        """Add one to the incident's repeat count; return the new count."""
        key = KEY_PREFIX + incident_id + ".repeats"
        count = int(self._ds.get_value(key, local=False) or 0) + 1
        self._ds.set_value(key, str(count), local=False)
        return count

    def record(self, alert: dict[str, Any]) -> dict[str, Any]:
        """Write the full incident of an ``aegis.alert`` payload, keeping what is known.

        Idempotent: an existing record keeps its ``opened_at``, status (a resolve that
        overtook the workflow is not undone) and repeat count; new alert data wins.
        """
        fresh = record_from_alert(alert)
        existing = self.get(fresh["id"])
        if existing is None:
            return self.save(fresh)
        merged = {**existing, **{k: v for k, v in fresh.items() if k not in _KEPT_ON_RECORD}}
        return self.save(merged)

    def close(self, incident_id: str, ends_at: str | None = None, reason: str = "resolved") -> dict[str, Any] | None:
        """Close an incident; returns it, or None when there is no such incident.

        Closing a closed incident changes nothing (HA peers resolve twice).
        """
        record = self.get(incident_id)
        if record is None:
            return None
        if record["status"] == CLOSED:
            return record
        record.update(status=CLOSED, ends_at=ends_at or record.get("ends_at"), closed_at=utc_iso(), close_reason=reason)
        return self.save(record)
