"""What happened to incidents and actions, as /metrics counters and lifecycle transitions.

    identified(lifecycle, incident, "proposed restart checkout")   # first time: time to diagnose
    finished(lifecycle, incident, "resolved", "verified healthy")  # terminal: outcome, time to resolve
    ACTIONS.labels(action="restart", result="done").inc()

Plain ``prometheus_client`` metrics: st2lite runs actions with ``PROMETHEUS_MULTIPROC_DIR``
set and merges them into its ``/metrics`` (on st2, expose them with a multiprocess collector
over the action runners' directory). The share resolved without a human is
``sum(aegis_incidents_total{outcome="resolved"}) / sum(aegis_incidents_total)``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lifecycle import TERMINAL, Lifecycle
from metrics import metric
from prometheus_client import Counter, Histogram
from timestamps import epoch_seconds

LOG = logging.getLogger("aegis.outcomes")
_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf"))

INCIDENTS = metric(Counter, "aegis_incidents", "Incidents ended, by outcome (resolved = by Aegis, without a human).", ("outcome",))
ACTIONS = metric(Counter, "aegis_remediation_actions", "Remediation actions by type and result (done, dry_run, refused, failed).",
                 ("action", "result"))
DIAGNOSE_SECONDS = metric(Histogram, "aegis_time_to_diagnose_seconds", "From the alert's start to a diagnosis acted on.",
                          buckets=_BUCKETS)
RESOLVE_SECONDS = metric(Histogram, "aegis_time_to_resolve_seconds", "From the alert's start to a verified resolution by Aegis.",
                         buckets=_BUCKETS)


def _since_start(incident: dict[str, Any]) -> float | None:
    start = epoch_seconds(incident.get("starts_at") or "") or epoch_seconds(incident.get("opened_at") or "")
    return None if start is None else max(0.0, time.time() - start)


def identified(lifecycle: Lifecycle, incident: dict[str, Any], text: str) -> None:
    """Move to ``identified`` (the diagnosis is being acted on); the first time, observe its delay."""
    state = lifecycle.state(incident["id"])
    if "identified" not in state["transitions"] and state["state"] not in TERMINAL:
        seconds = _since_start(incident)
        if seconds is not None:
            DIAGNOSE_SECONDS.observe(seconds)
    lifecycle.event(incident["id"], "identified", text)


def finished(lifecycle: Lifecycle, incident: dict[str, Any], outcome: str, text: str) -> None:
    """A terminal transition: counted once per incident, whatever retries the workflow makes."""
    before = lifecycle.state(incident["id"])["state"]
    lifecycle.event(incident["id"], outcome, text)
    if before == outcome:
        return
    INCIDENTS.labels(outcome=outcome.replace(" (unrouted)", "_unrouted")).inc()
    if outcome == "resolved":
        seconds = _since_start(incident)
        if seconds is not None:
            RESOLVE_SECONDS.observe(seconds)
