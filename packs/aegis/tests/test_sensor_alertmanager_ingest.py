"""The webhook over st2lite's real sensor service: what is answered 200 is in the history.

The sensor records into real SQLite stores (``Records``, ``KeyValueStore``) through
``SensorService``, whose ``transaction()`` makes one request one commit per store. A
poison alert is rejected on its own; a request whose recording fails leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3

import pytest
import requests
import yaml
from alerts import label_fingerprint
from fixtures.alerts import alert, notification
from fixtures.waiting import post_at_once
from incidents import IncidentStore, incident_id
from pack_runtime.datastore import KeyValueStore
from pack_runtime.records import Records
from pack_runtime.sensor_service import SensorService
from servers.webhook import running_webhook_sensor

SENSOR_META = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sensors",
                           "alertmanager_webhook_sensor.yaml")  # fmt: skip
SAFE_TOKEN = re.compile(r"^[A-Za-z0-9._:-]+$")


@pytest.fixture
def stores(tmp_path):
    with open(SENSOR_META) as fh:
        trigger_types = {f"aegis.{t['name']}": t for t in yaml.safe_load(fh)["trigger_types"]}
    records = Records(str(tmp_path / "history.sqlite"))
    store = KeyValueStore(str(tmp_path / "datastore.sqlite"))
    service = SensorService("aegis", "AlertmanagerWebhookSensor", trigger_types, records, store)
    return service, records, tmp_path


def recorded(records: Records) -> list[dict]:
    return [ti["payload"] for ti in reversed(records.list_trigger_instances("aegis.alert", limit=10_000))]


def post_raw(url: str, body: bytes) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)


def test_a_poison_alert_is_rejected_and_its_neighbours_are_recorded(stores):
    service, records, _ = stores
    poison = {**alert(instance="poison"), "startsAt": "9999-12-31T23:59:59-23:59"}  # overflows when made UTC
    body = notification([alert(instance="db-1"), poison, alert(instance="db-2")])
    with running_webhook_sensor(service) as (_sensor, url):
        resp = requests.post(url, json=body, timeout=30)
        again = requests.post(url, json=body, timeout=30)  # Alertmanager's next send: same answer, never a 503
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert (answer["status"], answer["dispatched"]) == ("partial", 2)
    (rejected,) = answer["rejected"]
    assert rejected["index"] == 1 and rejected["fingerprint"] == poison["fingerprint"]
    assert "startsAt" in rejected["reason"] and "9999-12-31T23:59:59-23:59" in rejected["reason"]
    assert again.status_code == 200 and again.json()["rejected"] == answer["rejected"]
    # Answered 200: both neighbours are durable, and their incidents are open.
    ids = answer["trigger_instances"]
    assert [records.get_trigger_instance(i)["payload"]["labels"]["instance"] for i in ids] == ["db-1", "db-2"]
    assert [p["repeat"] for p in recorded(records)] == [False, False, True, True]
    incidents = IncidentStore(service).list(status="open")
    assert sorted(i["labels"]["instance"] for i in incidents) == ["db-1", "db-2"]


def test_a_lone_surrogate_is_rejected_at_the_door(stores):
    service, records, _ = stores
    body = json.dumps(notification([alert(instance="LONE"), alert(instance="db-3")], groupKey="{}:{g=\"LONE\"}"))
    body = body.replace("LONE", "\\ud800")  # JSON can spell a lone surrogate; UTF-8 cannot carry it
    with running_webhook_sensor(service) as (_sensor, url):
        resp = post_raw(url, body.encode())
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["dispatched"] == 1
    (rejected,) = answer["rejected"]
    assert rejected["index"] == 0 and "surrogate" in rejected["reason"]
    (payload,) = recorded(records)
    assert payload["labels"]["instance"] == "db-3"
    # What was kept is valid Unicode all through: the group's own key was repaired, not kept broken.
    assert payload["groupKey"] == '{}:{g="\ufffd"}'
    json.dumps(payload, ensure_ascii=False).encode("utf-8")


def test_a_request_that_cannot_be_recorded_leaves_nothing_and_its_retry_is_not_a_repeat(stores):
    service, records, tmp_path = stores
    body = notification([alert(instance="a"), alert(instance="b"), alert(instance="c")])
    db = sqlite3.connect(str(tmp_path / "history.sqlite"))
    # The history refuses the third alert's trigger instance, as a full disk would refuse it.
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON trigger_instances WHEN NEW.payload LIKE '%\"instance\": \"c\"%'"
               " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")  # fmt: skip
    db.commit()
    with running_webhook_sensor(service) as (_sensor, url):
        failed = requests.post(url, json=body, timeout=30)
        assert failed.status_code == 503 and failed.headers["Retry-After"] == "5", failed.text
        assert recorded(records) == [], "a request answered 503 records nothing"
        assert IncidentStore(service).list() == [], "and opens no incident"
        db.execute("DROP TRIGGER refuse")
        db.commit()
        retried = requests.post(url, json=body, timeout=30)
    db.close()
    assert retried.status_code == 200, retried.text
    assert [(p["labels"]["instance"], p["repeat"]) for p in recorded(records)] == [("a", False), ("b", False), ("c", False)]


def test_ha_duplicates_arriving_at_once_start_one_remediation_each(stores):
    service, records, _ = stores
    body = notification([alert(instance=f"web-{i}") for i in range(5)])
    with running_webhook_sensor(service, {"alertmanager": {"max_concurrent_requests": 32}}) as (_sensor, url):
        codes = post_at_once(url, body, 8)
    assert codes == [200] * 8
    payloads = recorded(records)
    assert len(payloads) == 40
    assert sorted(p["labels"]["instance"] for p in payloads if not p["repeat"]) == [f"web-{i}" for i in range(5)]


def test_fingerprints_from_other_senders_are_kept_and_missing_ones_derived(stores):
    service, records, _ = stores
    grafana = {**alert(instance="g-1"), "fingerprint": "grafana/rule=abc uid:42"}  # not hex, has a space and slash
    missing = {k: v for k, v in alert(instance="m-1").items() if k != "fingerprint"}
    empty = {**alert(instance="e-1"), "fingerprint": ""}
    with running_webhook_sensor(service) as (_sensor, url):
        resp = requests.post(url, json=notification([grafana, missing, empty]), timeout=30)
    assert resp.status_code == 200 and resp.json()["rejected"] == [], resp.text
    by_instance = {p["labels"]["instance"]: p for p in recorded(records)}
    assert by_instance["g-1"]["fingerprint"] == "grafana/rule=abc uid:42"
    assert by_instance["m-1"]["fingerprint"] == label_fingerprint(missing["labels"])
    assert by_instance["e-1"]["fingerprint"] == label_fingerprint(empty["labels"])
    for payload in by_instance.values():
        # the workflow's identifier is a hash whatever the sender's fingerprint holds
        assert re.fullmatch(r"inc-[0-9a-f]{16}", payload["incident_id"]) and SAFE_TOKEN.match(payload["incident_id"])
        assert payload["incident_id"] == incident_id(payload["fingerprint"], payload["startsAt"])


def test_a_series_with_an_unsafe_fingerprint_is_tracked_under_a_safe_key(stores):
    service, records, tmp_path = stores
    fingerprint = "team/payments rule 7"  # '/' and spaces: no datastore key should hold them
    old = {**alert(instance="p-1", starts_at="2024-05-01T10:00:00Z"), "fingerprint": fingerprint}
    new = {**alert(instance="p-1", starts_at="2024-05-01T12:00:00Z"), "fingerprint": fingerprint}
    with running_webhook_sensor(service) as (_sensor, url):
        assert requests.post(url, json=notification([old]), timeout=30).status_code == 200
        assert requests.post(url, json=notification([new]), timeout=30).status_code == 200
    store = IncidentStore(service)
    superseded = store.get(incident_id(fingerprint, old["startsAt"]))
    assert (superseded["status"], superseded["close_reason"]) == ("closed", "superseded")
    assert store.open_incident_for(fingerprint)["starts_at"] == "2024-05-01T12:00:00Z"
    keys = [p.name for p in KeyValueStore(str(tmp_path / "datastore.sqlite")).list(prefix="aegis.incident")]
    assert keys and all(SAFE_TOKEN.match(k) for k in keys), keys
