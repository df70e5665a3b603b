"""A real Alertmanager delivering to the sensor, which records into a real history database.

Alertmanager (Debian ``prometheus-alertmanager``) runs on loopback with clustering off and
second-scale timings; alerts are pushed through its API v2 as Prometheus would. The sensor
runs with st2lite's real ``SensorService`` over temporary ``Records`` and ``KeyValueStore``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
import requests
import yaml
from alerts import label_fingerprint
from close_incident import CloseIncident
from fixtures.alerts import rfc3339
from fixtures.rules import rule_matches
from fixtures.waiting import wait_for
from incidents import IncidentStore
from pack_runtime.datastore import DatastoreService, KeyValueStore
from pack_runtime.records import Records
from pack_runtime.sensor_service import SensorService
from servers import alertmanager
from servers.webhook import running_webhook_sensor

pytestmark = [pytest.mark.services]
if alertmanager.available():
    pytestmark.append(pytest.mark.skip(reason=alertmanager.available()))

SENSORS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sensors")
TOKEN = "am-to-aegis-token"
# seconds: bounds on waits for Alertmanager's notifications, only reached when one never
# comes (Alertmanager's group_wait and repeat timers run late on a busy machine).
BOUND = 60


def trigger_types(sensor_file: str) -> dict:
    with open(os.path.join(SENSORS_DIR, sensor_file)) as fh:
        meta = yaml.safe_load(fh)
    return {f"aegis.{t['name']}": t for t in meta["trigger_types"]}


def test_real_alertmanager_fire_repeat_resolve(tmp_path):
    records = Records(str(tmp_path / "history.sqlite"))
    store = KeyValueStore(str(tmp_path / "datastore.sqlite"))
    service = SensorService("aegis", "AlertmanagerWebhookSensor", trigger_types("alertmanager_webhook_sensor.yaml"), records, store)
    config = {"alertmanager": {"auth": {"type": "bearer", "token": TOKEN}}}

    def alerts(status=None):
        found = [ti["payload"] for ti in reversed(records.list_trigger_instances("aegis.alert", limit=1000))]
        return [p for p in found if status is None or p["status"] == status]

    started = datetime.now(timezone.utc).replace(microsecond=0)
    pushed = [
        {"labels": {"alertname": "AegisTestDown", "instance": f"db-{i}:9100", "severity": "critical"},
         "annotations": {"summary": f"db-{i} is down"}, "startsAt": rfc3339(started),
         "generatorURL": "http://prometheus.test/graph?g0.expr=up"}
        for i in (1, 2)
    ]  # fmt: skip

    with running_webhook_sensor(service, config) as (_sensor, url):
        with alertmanager.Alertmanager(str(tmp_path / "am"), url, bearer_token=TOKEN, repeat_interval="2s") as am:
            am.post_alerts(pushed)
            firing = wait_for(lambda: len(alerts("firing")) >= 2 and alerts("firing"), BOUND, "two firing triggers", server=am)
            first_two = firing[:2]
            assert sorted(p["labels"]["instance"] for p in first_two) == ["db-1:9100", "db-2:9100"]
            for payload in first_two:
                assert payload["repeat"] is False
                assert payload["receiver"] == "aegis"
                assert payload["externalURL"].startswith("http")
                assert payload["groupKey"] == '{}:{alertname="AegisTestDown"}'
                assert payload["annotations"]["summary"].endswith("is down")
                assert payload["generatorURL"] == "http://prometheus.test/graph?g0.expr=up"
                assert len(payload["fingerprint"]) == 16
                assert payload["endsAt"] == "0001-01-01T00:00:00Z"

            # repeat_interval re-sends the group: recorded, flagged, counted, not remediated.
            wait_for(lambda: sum(p["repeat"] for p in alerts("firing")) >= 2, BOUND, "repeat notifications", server=am)
            incidents = IncidentStore(service)
            open_incidents = incidents.list(status="open")
            assert len(open_incidents) == 2
            assert all(i["repeats"] >= 1 for i in open_incidents)
            remediations = [p for p in alerts("firing") if rule_matches("remediate_firing_alert.yaml", p)]
            assert sorted(p["labels"]["instance"] for p in remediations) == ["db-1:9100", "db-2:9100"]

            # Resolve: same labels and startsAt, endsAt in the past.
            ended = rfc3339(datetime.now(timezone.utc) - timedelta(seconds=1))
            am.post_alerts([{**a, "endsAt": ended} for a in pushed])
            resolved = wait_for(lambda: len(alerts("resolved")) >= 2 and alerts("resolved"), BOUND, "resolved triggers", server=am)

    # The close rule's action, run for each resolved trigger as the rules engine would.
    closer = CloseIncident(config={}, action_service=DatastoreService(store, "aegis", "CloseIncident"))
    for payload in resolved:
        assert rule_matches("close_resolved_alert.yaml", payload)
        closer.run(fingerprint=payload["fingerprint"], starts_at=payload["startsAt"], ends_at=payload["endsAt"],
                   incident_id=payload["incident_id"])  # fmt: skip
    closed = incidents.list(status="closed")
    assert sorted(i["labels"]["instance"] for i in closed) == ["db-1:9100", "db-2:9100"]
    assert incidents.list(status="open") == []
    assert {p["incident_id"] for p in resolved} == {i["id"] for i in closed}
    # Every recorded trigger instance is pending for the rules engine, none was lost.
    assert all(ti["status"] == "pending" for ti in records.list_trigger_instances("aegis.alert", limit=1000))


def test_derived_fingerprints_equal_the_real_alertmanagers(tmp_path):
    """label_fingerprint() gives what Alertmanager computes, for awkward label sets too."""
    records = Records(str(tmp_path / "history.sqlite"))
    store = KeyValueStore(str(tmp_path / "datastore.sqlite"))
    service = SensorService("aegis", "AlertmanagerWebhookSensor", trigger_types("alertmanager_webhook_sensor.yaml"), records, store)
    label_sets = [
        {"alertname": "FpCheck", "instance": "db-1:9100"},
        {"alertname": "FpCheck", "Zone": "eu-west", "a_b": "x", "_hidden": "1"},  # upper case sorts first
        {"alertname": "FpCheck", "service": "café", "team": "日本", "emoji": "🔥"},  # multi-byte UTF-8
        {"alertname": "FpCheck", "query": 'rate(x{job="api"}[5m]) > 0.5', "path": "/var/log\\n"},
    ]
    started = rfc3339(datetime.now(timezone.utc).replace(microsecond=0))
    with running_webhook_sensor(service) as (_sensor, url):
        with alertmanager.Alertmanager(str(tmp_path / "am"), url) as am:
            am.post_alerts([{"labels": labels, "startsAt": started} for labels in label_sets])
            payloads = wait_for(lambda: len(records.list_trigger_instances("aegis.alert")) >= len(label_sets)
                                and [t["payload"] for t in records.list_trigger_instances("aegis.alert")],
                                BOUND, "the alerts to be delivered", server=am)  # fmt: skip
            from_api = {a["fingerprint"]: a["labels"] for a in requests.get(am.url + "/api/v2/alerts", timeout=BOUND).json()}
        # The same alerts from a sender that leaves the fingerprint out: the sensor derives Alertmanager's.
        unsigned = [{k: v for k, v in p.items() if k in ("status", "labels", "annotations", "startsAt", "endsAt")}
                    for p in payloads]  # fmt: skip
        body = {"version": "4", "status": "firing", "receiver": "script", "groupKey": "{}:{}", "alerts": unsigned}
        resent = requests.post(url, json=body, timeout=BOUND).json()
    assert sorted(sorted(d.items()) for d in from_api.values()) == sorted(sorted(d.items()) for d in label_sets)
    for payload in payloads:
        assert from_api[payload["fingerprint"]] == payload["labels"]
        assert label_fingerprint(payload["labels"]) == payload["fingerprint"]
    derived = [records.get_trigger_instance(i)["payload"] for i in resent["trigger_instances"]]
    assert sorted(p["fingerprint"] for p in derived) == sorted(from_api)
    assert all(p["repeat"] for p in derived), "same fingerprint and startsAt: the same episodes"
