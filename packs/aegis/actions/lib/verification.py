"""Verification: is the original signal healthy again, for N polls in a row, before a deadline?

    checks = checks_for(config, alertname="HighErrorRate", runbook=meta)
    result = verify(checks, labels, prometheus, deadline_seconds=300)
    result["healthy"], result["polls"]

A check is one of:

- ``{"query": PROMQL}``: an alert-style expression (``error_ratio > 0.05``), healthy when it
  returns nothing.
- ``{"query": PROMQL, "below": 0.05}``: a value, healthy when there are samples and every
  one is under ``below``. No samples is *not* healthy here: a restarted target is briefly
  not scraped, and its series going stale must not pass for a recovery.
  ``${label}`` fills in alert labels (see ``lib/promql.py``).
- ``{"http": URL, "status": 200}``: healthy when a GET answers that status (default any 2xx).

Checks come from config ``verify.checks.<alertname>`` (or ``"*"``), else the matched
runbook's ``verify_checks`` front matter. Polls start every ``interval_seconds`` and back
off by 1.5x up to ``max_interval_seconds``; healthy needs ``consecutive`` healthy polls
in a row (one good sample can be a fluke). A check that errors counts as unhealthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests
from promql import Prometheus, PromQLError

DEFAULTS = {"timeout_seconds": 300.0, "interval_seconds": 5.0, "max_interval_seconds": 30.0, "consecutive": 3}


def settings(config: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    section = config.get("verify") if isinstance(config.get("verify"), dict) else {}
    merged = {k: section.get(k, v) for k, v in DEFAULTS.items()}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return merged


def checks_for(config: dict[str, Any], alertname: str, runbook: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    section = config.get("verify") if isinstance(config.get("verify"), dict) else {}
    table = section.get("checks") if isinstance(section.get("checks"), dict) else {}
    configured = table.get(alertname) or table.get("*")
    if configured:
        return list(configured)
    return list((runbook or {}).get("verify_checks") or [])


def check_once(check: dict[str, Any], labels: dict[str, str], prometheus: Prometheus | None,
               http_timeout: float = 5) -> dict[str, Any]:
    """One evaluation of one check: ``{"check", "healthy", "detail"}``."""
    if "query" in check:
        if prometheus is None:
            return {"check": check, "healthy": False, "detail": "prometheus.url not configured"}
        try:
            samples = prometheus.query(check["query"], labels)
        except PromQLError as exc:
            return {"check": check, "healthy": False, "detail": str(exc)}
        values = [s["value"] for s in samples]
        below = check.get("below")
        healthy = bool(values) and all(v < float(below) for v in values) if below is not None else not values
        return {"check": check, "healthy": healthy, "detail": f"values {values[:5]}" if values else "no samples"}
    if "http" in check:
        try:
            resp = requests.get(check["http"], timeout=http_timeout, allow_redirects=False)
        except requests.RequestException as exc:
            return {"check": check, "healthy": False, "detail": f"{type(exc).__name__}"}
        want = check.get("status")
        healthy = resp.status_code == int(want) if want else 200 <= resp.status_code < 300
        return {"check": check, "healthy": healthy, "detail": f"HTTP {resp.status_code}"}
    return {"check": check, "healthy": False, "detail": "a check needs 'query' or 'http'"}


def verify(checks: list[dict[str, Any]], labels: dict[str, str], prometheus: Prometheus | None,
           timeout_seconds: float = 300, interval_seconds: float = 5, max_interval_seconds: float = 30,
           consecutive: int = 3, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    if not checks:
        return {"healthy": False, "polls": 0, "streak": 0, "last": [], "reason": "no verification checks configured"}
    start = clock()
    deadline = start + float(timeout_seconds)
    interval, streak, polls, last = float(interval_seconds), 0, 0, []
    while True:
        last = [check_once(c, labels, prometheus) for c in checks]
        polls += 1
        streak = streak + 1 if all(r["healthy"] for r in last) else 0
        if streak >= int(consecutive):
            return {"healthy": True, "polls": polls, "streak": streak, "last": last,
                    "seconds": round(clock() - start, 3), "reason": f"{streak} healthy polls in a row"}
        remaining = deadline - clock()
        if remaining <= 0:
            return {"healthy": False, "polls": polls, "streak": streak, "last": last, "seconds": round(clock() - start, 3),
                    "reason": f"not healthy for {consecutive} polls in a row within {timeout_seconds}s"}
        sleep(min(interval, remaining))
        interval = min(interval * 1.5, float(max_interval_seconds))
