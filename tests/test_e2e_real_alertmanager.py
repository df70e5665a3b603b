"""A real Alertmanager (Debian prometheus-alertmanager) in front of the runtime serving the aegis pack.

Alerts are pushed into Alertmanager through its API v2, as Prometheus does; Alertmanager
groups them, notifies the webhook sensor, re-sends them every repeat_interval, and sends
the resolve. One workflow per alert, however often it is re-sent; the resolve closes it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import pytest
from conftest import REPO, cli_json, wait_for

sys.path.insert(0, str(REPO / "packs" / "aegis" / "tests"))
from servers.alertmanager import Alertmanager, available  # noqa: E402

pytestmark = [pytest.mark.services, pytest.mark.skipif(available() is not None, reason=str(available()))]


def _alerts(starts: datetime, ends: datetime | None = None) -> list[dict]:
    alerts = []
    for service in ("checkout", "cart"):
        alert = {
            "labels": {"alertname": "HighErrorRate", "service": service, "namespace": "shop", "severity": "critical"},
            "annotations": {"summary": f"{service} 5xx ratio above 5% for 10 minutes"},
            "startsAt": starts.isoformat().replace("+00:00", "Z"),
            "generatorURL": "http://prometheus:9090/graph?g0.expr=job%3Ahttp_5xx%3Aratio5m+%3E+0.05",
        }
        if ends is not None:
            alert["endsAt"] = ends.isoformat().replace("+00:00", "Z")
        alerts.append(alert)
    return alerts


def test_real_alertmanager_notifications_repeats_and_resolves(aegis_service, tmp_path):
    url, env = aegis_service
    starts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    with Alertmanager(tmp_path / "am", url, repeat_interval="2s") as am:
        am.post_alerts(_alerts(starts))

        def firing_triggers():
            return [t for t in cli_json(env, "trigger-instance", "list", "--json", "-n", "500", "--trigger", "aegis.alert")
                    if t["payload"]["status"] == "firing"]  # fmt: skip

        wait_for(lambda: len(firing_triggers()) >= 2, timeout=60, what="Alertmanager's first notification")
        # Alertmanager re-sends the still-firing group every repeat_interval: wait for repeats.
        repeats = wait_for(
            lambda: [t for t in firing_triggers() if t["payload"]["repeat"]] or None,
            timeout=60, what="a re-sent notification",
        )  # fmt: skip
        assert {t["payload"]["fingerprint"] for t in repeats} <= {t["payload"]["fingerprint"] for t in firing_triggers()}
        workflows = cli_json(env, "execution", "list", "--json", "--action", "aegis.remediate", "-n", "100")
        assert len(workflows) == 2, "one remediation per alert, however often it is re-sent"
        # The workflow gets the incident id only; the alert is in the incident store.
        stored = {p["name"]: json.loads(p["value"]) for p in cli_json(env, "key", "list", "--prefix", "aegis.incident.inc-", "--json")}
        assert {stored["aegis.incident." + w["parameters"]["incident_id"]]["labels"]["service"] for w in workflows} == {"checkout", "cart"}

        # Resolve both: Alertmanager sends them as resolved (send_resolved defaults to true).
        am.post_alerts(_alerts(starts, ends=datetime.now(UTC) - timedelta(seconds=1)))
        closes = wait_for(
            lambda: (lambda c: c if len(c) == 2 and all(e["status"] == "succeeded" for e in c) else None)(
                cli_json(env, "execution", "list", "--json", "--action", "aegis.close_incident", "-n", "100")
            ),
            # An upper bound, not a wait: the closes queue for the pack's two warm workers behind
            # the remediations' diagnoses, which take a minute on a busy 2-core machine.
            timeout=300, what="both incidents to be closed",
        )  # fmt: skip
        assert {c["rule"] for c in closes} == {"aegis.close_resolved_alert"}

    pairs = cli_json(env, "key", "list", "--prefix", "aegis.incident.inc-", "--json")
    incidents = [json.loads(p["value"]) for p in pairs if not p["name"].endswith(".repeats")]
    assert len(incidents) == 2 and all(i["status"] == "closed" for i in incidents), incidents
    assert len(cli_json(env, "execution", "list", "--json", "--action", "aegis.remediate", "-n", "100")) == 2
