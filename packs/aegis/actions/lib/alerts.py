"""Alertmanager webhook (payload version 4) parsing and validation, as plain functions.

Used by ``aegis.AlertmanagerWebhookSensor`` and by ``aegis.split_alert_group`` (the
``core.st2.webhook`` path); no I/O here, so every rule about what Alertmanager may send
lives in one place and is unit-testable.

    >>> body = b'{"version": "4", "status": "firing", "receiver": "aegis", "groupKey": "{}:{}",'
    ...        b' "alerts": [{"status": "firing", "labels": {"alertname": "Down"}, "annotations": {},'
    ...        b' "startsAt": "2024-05-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",'
    ...        b' "generatorURL": "", "fingerprint": "c0ffee0123456789"}]}'
    >>> batch = parse_webhook(decode_json(body))
    >>> [a["labels"]["alertname"] for a in batch.alerts], batch.rejected
    (['Down'], [])

Whole-request problems raise :class:`WebhookError` with the HTTP status to answer (always
a 4xx: such a request will never become valid, so Alertmanager must not retry it). A bad
alert inside an otherwise valid group is reported in ``WebhookBatch.rejected`` and the
valid alerts are kept, so one malformed alert never hides the others: whatever goes wrong
while validating one alert (even an exception nobody foresaw, such as a timestamp whose
UTC conversion overflows) rejects that alert, never the request. Alertmanager retries a
5xx forever, so one poison alert answered 503 would block its whole group.

Fingerprints: Alertmanager sends 16 hex digits; compatible senders may send any other
string. Any non-empty printable string of at most :data:`MAX_FINGERPRINT` characters is
kept as given (16-hex ones lower-cased, as Alertmanager writes them); when it is missing
(or empty), the fingerprint is derived from the labels exactly as Alertmanager derives it
(:func:`label_fingerprint`). Identifiers built from it (incident ids) are hashes, so a
sender's fingerprint never has to be a safe token itself.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SUPPORTED_VERSION = "4"
STATUSES = ("firing", "resolved")
# Alertmanager sends endsAt as Go's zero time while an alert fires.
ZERO_TIME = "0001-01-01T00:00:00Z"
# Real payloads are at most 3 levels deep (group -> alerts[] -> alert -> labels); anything
# much deeper is junk, and refusing it early keeps json/recursion costs bounded.
MAX_DEPTH = 8
MAX_LABELS = 256
MAX_LABEL_VALUE = 16 * 1024

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
MAX_FINGERPRINT = 128
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEX_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{16}$")
# A lone UTF-16 surrogate ("\ud800" in JSON) decodes into a str that cannot be encoded
# as UTF-8: it would fail later, when stored or shown, far from the door.
_SURROGATE = re.compile("[\ud800-\udfff]")

# FNV-1a, 64 bits: what Prometheus' model.LabelSet.Fingerprint() (and so Alertmanager) uses.
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK64 = (1 << 64) - 1


class WebhookError(Exception):
    """A request that can never be accepted: ``status`` is the HTTP code, ``reason`` one line."""

    def __init__(self, status: int, reason: str, metric_reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.metric_reason = metric_reason  # a small, fixed label value for metrics


@dataclass
class WebhookBatch:
    """A parsed notification: the group's fields, its valid alerts, and what was rejected."""

    group: dict[str, Any]
    alerts: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def decode_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Decode a request body as strict UTF-8 JSON, refusing junk nested deeper than ``max_depth``.

    Raises :class:`WebhookError` (400) for invalid UTF-8, invalid JSON and deep nesting.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookError(400, f"body is not valid UTF-8 (byte {exc.start})", "invalid_utf8") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        # json's C scanner recurses per level and gives up near the interpreter's limit.
        raise WebhookError(400, f"JSON nested too deeply (limit {max_depth})", "too_deep") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise WebhookError(400, f"malformed JSON: {exc}", "malformed_json") from None
    depth = _max_nesting(doc)
    if depth > max_depth:
        raise WebhookError(400, f"JSON nested {depth} levels deep (limit {max_depth})", "too_deep")
    return doc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _max_nesting(doc: Any) -> int:
    """The deepest container nesting of a decoded JSON value (level by level: junk may be deep)."""
    depth, level = 0, [doc] if type(doc) in (dict, list) else []
    while level:
        depth += 1
        deeper = []
        for value in level:
            for child in value.values() if type(value) is dict else value:
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        level = deeper
    return depth


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp as Alertmanager writes it (nanoseconds allowed)."""
    match = _RFC3339.match(value)
    if not match:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp")
    frac = (match.group(7) or "")[1:7].ljust(6, "0") if match.group(7) else "000000"
    tz = match.group(8).upper()
    iso = f"{match.group(1)}-{match.group(2)}-{match.group(3)}T{match.group(4)}:{match.group(5)}:{match.group(6)}.{frac}"
    iso += "+00:00" if tz == "Z" else tz
    stamp = datetime.fromisoformat(iso)
    return stamp.astimezone(timezone.utc)


@functools.lru_cache(maxsize=4096)
def _time_problem(value: str) -> str | None:
    """Why ``value`` is not a usable timestamp, or None (cached: a storm repeats a few values)."""
    try:
        parse_time(value)
    except (ValueError, OverflowError) as exc:  # 9999-12-31T23:59:59-23:59 overflows in UTC
        return f"{_printable(value)} is not a usable RFC 3339 timestamp ({exc})"
    return None


@functools.lru_cache(maxsize=4096)
def _label_name_ok(name: str) -> bool:
    return _LABEL_NAME.match(name) is not None


def label_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: 16 hex digits.

    Prometheus' ``labelSetToFingerprint``: FNV-1a 64 over the UTF-8 bytes of each label
    name and value, sorted by name, each followed by the separator byte 0xff.

        >>> label_fingerprint({"alertname": "Down", "instance": "db-1"}) == label_fingerprint({"instance": "db-1", "alertname": "Down"})
        True
    """
    digest = _FNV_OFFSET
    for name in sorted(labels):  # code point order is UTF-8 byte order, as Go sorts
        for part in (name, labels[name]):
            for byte in part.encode("utf-8"):
                digest = ((digest ^ byte) * _FNV_PRIME) & _MASK64
            digest = ((digest ^ 0xFF) * _FNV_PRIME) & _MASK64
    return f"{digest:016x}"


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _check_string_map(value: Any, what: str) -> str | None:
    if not isinstance(value, dict):
        return f"{what} must be an object of strings, got {type(value).__name__}"
    if len(value) > MAX_LABELS:
        return f"{what} has {len(value)} entries (limit {MAX_LABELS})"
    for key, item in value.items():
        if not isinstance(item, str):
            return f"{what}.{key} must be a string, got {type(item).__name__}"
        if len(item) > MAX_LABEL_VALUE:
            return f"{what}.{key} is {len(item)} characters long (limit {MAX_LABEL_VALUE})"
        if _has_surrogate(key) or _has_surrogate(item):
            return f"{what}.{_printable(key)} holds a lone UTF-16 surrogate (not valid Unicode text)"
    return None


def _repair(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD: for the group's own fields, which
    only label the notification; an alert's own labels are rejected instead (they name it)."""
    return _SURROGATE.sub("\ufffd", text) if not text.isascii() else text


def _printable(text: str) -> str:
    """``text`` safe to put in a one-line reason: surrogates and controls escaped, clipped."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text[:64]).encode("unicode_escape").decode("ascii")


def _check_fingerprint(value: Any, labels: dict[str, str]) -> tuple[str | None, str | None]:
    """``(fingerprint, None)`` to keep, or ``(None, reason)``; derives it from the labels when absent."""
    if value is None or value == "":
        return label_fingerprint(labels), None
    if not isinstance(value, str):
        return None, f"fingerprint must be a string, got {type(value).__name__}"
    if len(value) > MAX_FINGERPRINT:
        return None, f"fingerprint is {len(value)} characters long (limit {MAX_FINGERPRINT})"
    if not value.isprintable() or _has_surrogate(value):
        return None, "fingerprint holds control or non-printable characters"
    return (value.lower() if _HEX_FINGERPRINT.match(value) else value), None


def validate_alert(alert: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Check one entry of ``alerts[]``; return ``(alert, None)`` or ``(None, reason)``.

    The returned alert has exactly the fields Alertmanager documents, ``annotations`` and
    ``generatorURL`` defaulted when absent (older senders omit them) and ``fingerprint``
    derived from the labels when absent. Never raises: an unforeseen error in checking one
    alert is that alert's rejection reason.
    """
    try:
        return _validate_alert(alert)
    except Exception as exc:  # noqa: BLE001 (one alert's problem must never become the request's)
        return None, f"invalid alert ({type(exc).__name__}: {_printable(str(exc))})"


def _validate_alert(alert: Any) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(alert, dict):
        return None, f"alert must be an object, got {type(alert).__name__}"
    for name in ("status", "labels", "startsAt"):
        if name not in alert:
            return None, f"missing field {name}"
    status = alert["status"]
    if status not in STATUSES:
        return None, f"status must be one of {', '.join(STATUSES)}, got {status!r}"
    problem = _check_string_map(alert["labels"], "labels")
    if problem:
        return None, problem
    if not alert["labels"]:
        return None, "labels must not be empty"
    bad = next((k for k in alert["labels"] if not _label_name_ok(k)), None)
    if bad is not None:
        return None, f"label name {bad!r} is not a valid Prometheus label name"
    annotations = alert.get("annotations", {})
    problem = _check_string_map(annotations, "annotations")
    if problem:
        return None, problem
    fingerprint, problem = _check_fingerprint(alert.get("fingerprint"), alert["labels"])
    if problem:
        return None, problem
    for name in ("startsAt", "endsAt"):
        value = alert.get(name, ZERO_TIME)
        if not isinstance(value, str):
            return None, f"{name} must be a string, got {type(value).__name__}"
        problem = _time_problem(value)
        if problem:
            return None, f"{name}: {problem}"
    generator_url = alert.get("generatorURL", "")
    if not isinstance(generator_url, str):
        return None, f"generatorURL must be a string, got {type(generator_url).__name__}"
    if _has_surrogate(generator_url):
        return None, "generatorURL holds a lone UTF-16 surrogate (not valid Unicode text)"
    return {
        "status": status,
        "labels": dict(alert["labels"]),
        "annotations": dict(annotations),
        "startsAt": alert["startsAt"],
        "endsAt": alert.get("endsAt", ZERO_TIME),
        "generatorURL": generator_url,
        "fingerprint": fingerprint,
    }, None


_GROUP_STRINGS = ("receiver", "groupKey")
_GROUP_MAPS = ("groupLabels", "commonLabels", "commonAnnotations")


def parse_webhook(doc: Any, max_alerts: int = 10_000) -> WebhookBatch:
    """Validate a decoded version-4 notification and split it into valid and rejected alerts.

    Raises :class:`WebhookError` (400/422) when the group itself is unusable.
    """
    if not isinstance(doc, dict):
        raise WebhookError(400, f"body must be a JSON object, got {type(doc).__name__}", "wrong_type")
    if "version" not in doc:
        raise WebhookError(400, "missing field version", "missing_field")
    if doc["version"] != SUPPORTED_VERSION:
        raise WebhookError(
            422, f"unsupported payload version {doc['version']!r} (supported: {SUPPORTED_VERSION!r})", "unknown_version"
        )
    for name in ("status", "alerts", *_GROUP_STRINGS):
        if name not in doc:
            raise WebhookError(400, f"missing field {name}", "missing_field")
    if doc["status"] not in STATUSES:
        raise WebhookError(400, f"status must be one of {', '.join(STATUSES)}, got {doc['status']!r}", "wrong_type")
    doc = dict(doc)
    for name in _GROUP_STRINGS + ("externalURL",):
        if name in doc and not isinstance(doc[name], str):
            raise WebhookError(400, f"{name} must be a string, got {type(doc[name]).__name__}", "wrong_type")
        if name in doc:
            doc[name] = _repair(doc[name])
    for name in _GROUP_MAPS:
        if name in doc:
            if isinstance(doc[name], dict):
                doc[name] = {_repair(k): _repair(v) if isinstance(v, str) else v for k, v in doc[name].items()}
            problem = _check_string_map(doc[name], name)
            if problem:
                raise WebhookError(400, problem, "wrong_type")
    truncated = doc.get("truncatedAlerts", 0)
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise WebhookError(400, "truncatedAlerts must be a non-negative integer", "wrong_type")
    alerts = doc["alerts"]
    if not isinstance(alerts, list):
        raise WebhookError(400, f"alerts must be an array, got {type(alerts).__name__}", "wrong_type")
    if not alerts:
        raise WebhookError(400, "alerts is empty", "missing_field")
    if len(alerts) > max_alerts:
        raise WebhookError(413, f"{len(alerts)} alerts in one request (limit {max_alerts})", "too_many_alerts")

    group = {
        "receiver": doc["receiver"],
        "status": doc["status"],
        "groupKey": doc["groupKey"],
        "externalURL": doc.get("externalURL", ""),
        "groupLabels": doc.get("groupLabels", {}),
        "commonLabels": doc.get("commonLabels", {}),
        "commonAnnotations": doc.get("commonAnnotations", {}),
        "truncatedAlerts": truncated,
    }
    batch = WebhookBatch(group=group)
    for index, raw in enumerate(alerts):
        alert, reason = validate_alert(raw)
        if alert is None:
            fingerprint = raw.get("fingerprint") if isinstance(raw, dict) else None
            if not isinstance(fingerprint, str) or len(fingerprint) > MAX_FINGERPRINT:
                fingerprint = None  # echo back only what identifies the alert, never bulk
            batch.rejected.append({"index": index, "fingerprint": fingerprint, "reason": reason})
        else:
            batch.alerts.append(alert)
    return batch


def trigger_payload(alert: dict[str, Any], group: dict[str, Any], incident_id: str, repeat: bool) -> dict[str, Any]:
    """The ``aegis.alert`` trigger payload for one validated alert of a group."""
    return {
        **alert,
        "alertname": alert["labels"].get("alertname", ""),
        "receiver": group["receiver"],
        "groupKey": group["groupKey"],
        "externalURL": group["externalURL"],
        "repeat": repeat,
        "incident_id": incident_id,
    }


def split_notification(doc: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Validate a whole notification (e.g. a ``core.st2.webhook`` body) into per-alert payloads.

    Returns ``(alerts, rejected)``; each alert is the ``aegis.alert`` payload shape minus
    ``repeat``/``incident_id`` (the caller decides those).
    """
    batch = parse_webhook(doc)
    alerts = [
        {**a, "alertname": a["labels"].get("alertname", ""), "receiver": batch.group["receiver"],
         "groupKey": batch.group["groupKey"], "externalURL": batch.group["externalURL"]}
        for a in batch.alerts
    ]  # fmt: skip
    return alerts, batch.rejected
