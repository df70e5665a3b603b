"""The incident context the diagnoser reads: validated, typed, and honest about what was gathered.

    from alert_context import normalize_context
    ctx = normalize_context({"alert": {...}, "logs": [...], "deploys": [...], "metrics": {...},
                             "sources": {"logs": {"status": "ok"}, "deploys": {"status": "missing"}}})
    ctx.gathered("deploys")   # "ok" | "missing" | "error" | "unknown" (no ``sources``: today's eval cases)
    ctx.metric("hpa", "max")  # first numeric sample whose name has every fragment, else None

This is the shared contract ``aegis.gather_context`` produces. ``metrics`` values may be
plain numbers (old cases) or ``{"query", "value"}`` objects (gather_context). Log lines,
annotations and label values are untrusted text: they are matched, never followed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SOURCES = ("logs", "deploys", "metrics")
SOURCE_STATUSES = ("ok", "missing", "error")
MAX_LOG_LINES = 200


class DiagnosisInputError(ValueError):
    """The incident context is malformed; the message says which part."""


@dataclass
class Context:
    alert: dict[str, Any]
    labels: dict[str, str]
    annotations: dict[str, str]
    logs: list[str]
    deploys: list[dict[str, Any]]
    metrics: dict[str, float]
    starts_at: datetime
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def annotation_text(self) -> str:
        return " ".join(str(v) for v in self.annotations.values())

    @property
    def log_text(self) -> str:
        return "\n".join(self.logs)

    @property
    def label_text(self) -> str:
        return " ".join(self.labels.values())

    @property
    def all_text(self) -> str:
        labels = " ".join(f"{k}={v}" for k, v in self.labels.items())
        return f"{self.alertname}\n{labels}\n{self.annotation_text}\n{self.log_text}"

    def gathered(self, source: str) -> str:
        """``ok``/``missing``/``error`` as gather_context reported; ``unknown`` without ``sources``.

        A context without ``sources`` (today's eval cases, a caller passing logs by hand)
        counts what it carries: logs present are ``ok``; absent, ``unknown``.
        """
        status = (self.sources.get(source) or {}).get("status")
        if status in SOURCE_STATUSES:
            return str(status)
        if source == "logs" and self.logs or source == "deploys" and self.deploys or source == "metrics" and self.metrics:
            return "ok"
        return "unknown"

    def seen(self, source: str) -> bool:
        """Was this source looked at (so its absence of findings means something)?"""
        return self.gathered(source) == "ok"

    def metric(self, *fragments: str) -> float | None:
        """The first numeric sample whose name contains all ``fragments`` (case-insensitive)."""
        for key, value in self.metrics.items():
            if all(f in key.lower() for f in fragments):
                return value
        return None


def parse_time(value: Any, what: str) -> datetime:
    """RFC 3339 (Alertmanager sends nanoseconds; Python keeps microseconds)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value.strip():
        raise DiagnosisInputError(f"{what} must be an RFC 3339 timestamp, got {value!r}")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DiagnosisInputError(f"{what} is not an RFC 3339 timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _number(value: Any) -> float | None:
    if isinstance(value, dict):  # gather_context: {"query": ..., "value": float | null}
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _sources(raw: Any) -> dict[str, dict[str, str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DiagnosisInputError("context.sources must be an object {logs|deploys|metrics: {status, detail}}")
    out: dict[str, dict[str, str]] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or entry.get("status") not in SOURCE_STATUSES:
            raise DiagnosisInputError(f"context.sources.{name}.status must be one of {', '.join(SOURCE_STATUSES)}")
        out[str(name)] = {"status": str(entry["status"]), "detail": str(entry.get("detail") or "")[:300]}
    return out


def normalize_context(context: Any) -> Context:
    """Validate the incident context and give it a typed shape; bad input raises clearly."""
    if isinstance(context, Context):
        return context
    if not isinstance(context, dict):
        raise DiagnosisInputError("context must be an object with an 'alert'")
    alert = context.get("alert")
    if not isinstance(alert, dict):
        raise DiagnosisInputError("context.alert must be an Alertmanager alert object")
    labels = alert.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise DiagnosisInputError("context.alert.labels must be a non-empty object")
    annotations = alert.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise DiagnosisInputError("context.alert.annotations must be an object")
    logs = context.get("logs") or []
    if not isinstance(logs, list):
        raise DiagnosisInputError("context.logs must be a list of strings")
    deploys = context.get("deploys") or []
    if not isinstance(deploys, list) or not all(isinstance(d, dict) for d in deploys):
        raise DiagnosisInputError("context.deploys must be a list of objects {service, version, at}")
    for i, dep in enumerate(deploys):
        if not dep.get("service") or not dep.get("at"):
            raise DiagnosisInputError(f"context.deploys[{i}] needs 'service' and 'at'")
    metrics = context.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise DiagnosisInputError("context.metrics must be an object")
    starts = alert.get("startsAt")
    starts_at = parse_time(starts, "alert.startsAt") if starts else datetime.now(timezone.utc)
    numbers = {str(k): n for k, v in metrics.items() if (n := _number(v)) is not None}
    return Context(
        alert=alert,
        labels={str(k): str(v) for k, v in labels.items()},
        annotations={str(k): str(v) for k, v in annotations.items()},
        logs=[str(line) for line in logs][-MAX_LOG_LINES:],
        deploys=deploys,
        metrics=numbers,
        starts_at=starts_at,
        sources=_sources(context.get("sources")),
    )
