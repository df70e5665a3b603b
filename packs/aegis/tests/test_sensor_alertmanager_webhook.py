"""aegis.AlertmanagerWebhookSensor over real HTTP, with st2's recording sensor service."""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import threading

import requests
from alertmanager_webhook_sensor import AlertmanagerWebhookSensor, ConfigError
from fixtures.alerts import alert, load, notification
from fixtures.rules import rule_matches
from fixtures.waiting import post_at_once
from incidents import IncidentStore, incident_id
from prometheus_client import REGISTRY
from servers.webhook import running_webhook_sensor
from st2tests.base import BaseSensorTestCase

# seconds: a bound on each request, only reached when the sensor does not answer at all
# (a busy CI machine can stall a process for seconds; a tight bound would fail there).
BOUND = 60


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class AlertmanagerWebhookSensorTest(BaseSensorTestCase):
    sensor_cls = AlertmanagerWebhookSensor

    def run_sensor(self, config=None):
        return running_webhook_sensor(self.sensor_service, config)

    def payloads(self):
        return [t["payload"] for t in self.get_dispatched_triggers()]

    def test_dispatches_one_trigger_per_alert_with_every_field(self):
        body = load("alertmanager_firing_two_alerts.json")
        with self.run_sensor() as (_sensor, url):
            resp = requests.post(url, json=body, timeout=BOUND)
        self.assertEqual(resp.status_code, 200, resp.text)
        answer = resp.json()
        self.assertEqual((answer["status"], answer["dispatched"], answer["repeats"]), ("success", 2, 0))
        self.assertEqual(len(answer["trigger_instances"]), 2)
        first = body["alerts"][0]
        expected = {
            **first,
            "alertname": "InstanceDown",
            "receiver": "aegis",
            "groupKey": body["groupKey"],
            "externalURL": "http://alertmanager:9093",
            "repeat": False,
            "incident_id": incident_id(first["fingerprint"], first["startsAt"]),
        }
        self.assertTriggerDispatched(trigger="aegis.alert", payload=expected)
        self.assertEqual([p["labels"]["instance"] for p in self.payloads()], ["db-1:9100", "db-2:9100"])
        self.assertEqual(self.sensor_service.rejected_triggers, [])
        incidents = IncidentStore(self.sensor_service).list(status="open")
        self.assertEqual(sorted(i["fingerprint"] for i in incidents), sorted(a["fingerprint"] for a in body["alerts"]))
        self.assertTrue(all(rule_matches("remediate_firing_alert.yaml", p) for p in self.payloads()))

    def test_resent_firing_alert_is_a_repeat_and_does_not_match_the_remediation_rule(self):
        body = notification([alert(instance="db-1")])
        repeats_before = metric("aegis_alerts_repeated_total")
        with self.run_sensor() as (_sensor, url):
            first = requests.post(url, json=body, timeout=BOUND).json()
            again = requests.post(url, json=body, timeout=BOUND).json()
            third = requests.post(url, json=body, timeout=BOUND).json()
        self.assertEqual((first["repeats"], again["repeats"], third["repeats"]), (0, 1, 1))
        repeat_flags = [p["repeat"] for p in self.payloads()]
        self.assertEqual(repeat_flags, [False, True, True])
        self.assertEqual([rule_matches("remediate_firing_alert.yaml", p) for p in self.payloads()], [True, False, False])
        incident = IncidentStore(self.sensor_service).get(self.payloads()[0]["incident_id"])
        self.assertEqual((incident["status"], incident["repeats"]), ("open", 2))
        self.assertEqual(metric("aegis_alerts_repeated_total") - repeats_before, 2)

    def test_new_episode_of_same_series_is_not_a_repeat_and_supersedes_the_unresolved_one(self):
        old = alert(instance="db-1", starts_at="2024-05-01T10:00:00Z")
        new = alert(instance="db-1", starts_at="2024-05-01T12:00:00Z")
        with self.run_sensor() as (_sensor, url):
            requests.post(url, json=notification([old]), timeout=BOUND).raise_for_status()
            requests.post(url, json=notification([new]), timeout=BOUND).raise_for_status()
        self.assertEqual([p["repeat"] for p in self.payloads()], [False, False])
        store = IncidentStore(self.sensor_service)
        superseded = store.get(incident_id(old["fingerprint"], old["startsAt"]))
        self.assertEqual((superseded["status"], superseded["close_reason"]), ("closed", "superseded"))
        self.assertEqual(store.open_incident_for(new["fingerprint"])["starts_at"], "2024-05-01T12:00:00Z")

    def test_resolved_alert_is_dispatched_for_the_close_rule(self):
        firing = alert(instance="db-1")
        resolved = {**firing, "status": "resolved", "endsAt": "2024-05-01T10:09:00Z"}
        with self.run_sensor() as (_sensor, url):
            requests.post(url, json=notification([firing]), timeout=BOUND).raise_for_status()
            resp = requests.post(url, json=notification([resolved]), timeout=BOUND)
        self.assertEqual(resp.status_code, 200)
        last = self.payloads()[-1]
        self.assertEqual((last["status"], last["repeat"], last["endsAt"]), ("resolved", False, "2024-05-01T10:09:00Z"))
        self.assertEqual(last["incident_id"], self.payloads()[0]["incident_id"])
        self.assertTrue(rule_matches("close_resolved_alert.yaml", last))
        self.assertFalse(rule_matches("remediate_firing_alert.yaml", last))

    def test_ha_duplicates_arriving_at_once_start_one_remediation(self):
        body = notification([alert(instance=f"web-{i}") for i in range(5)])
        with self.run_sensor({"alertmanager": {"max_concurrent_requests": 32}}) as (_sensor, url):
            codes = post_at_once(url, body, 8)
        self.assertEqual(codes, [200] * 8)
        fresh = [p for p in self.payloads() if not p["repeat"]]
        self.assertEqual(len(self.payloads()), 40)
        self.assertEqual(sorted(p["labels"]["instance"] for p in fresh), [f"web-{i}" for i in range(5)])

    def test_unrecordable_alerts_get_503_and_the_retry_is_not_a_repeat(self):
        body = notification([alert(instance="db-1")])
        with self.run_sensor() as (_sensor, url):
            self.sensor_service.fail_dispatch = OSError("disk full")
            failed = requests.post(url, json=body, timeout=BOUND)
            self.sensor_service.fail_dispatch = None
            retried = requests.post(url, json=body, timeout=BOUND)
        self.assertEqual(failed.status_code, 503)
        self.assertIn("could not record", failed.json()["error"])
        self.assertEqual(retried.status_code, 200)
        self.assertEqual([p["repeat"] for p in self.payloads()], [False])

    def test_answers_only_after_every_dispatch_returned(self):
        # The client reads from a raw socket; each dispatch looks (without waiting) into the
        # client's receive queue. Loopback delivers a send before it returns, so an answer
        # sent before this dispatch would already be there.
        body = json.dumps(notification([alert(instance="a"), alert(instance="b")])).encode()
        real_dispatch = self.sensor_service.dispatch
        seen_early: list[bytes] = []
        with self.run_sensor() as (sensor, _url):
            client = socket.create_connection(("127.0.0.1", sensor.port), timeout=30)

            def peeking_dispatch(*args, **kwargs):
                if select.select([client], [], [], 0)[0]:  # readable now: bytes (an answer) are waiting
                    seen_early.append(client.recv(64, socket.MSG_PEEK))
                return real_dispatch(*args, **kwargs)

            self.sensor_service.dispatch = peeking_dispatch
            with client:
                client.sendall(b"POST /alertmanager HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
                response = http.client.HTTPResponse(client)
                response.begin()
                answer = json.loads(response.read())
        self.assertEqual(seen_early, [], "answered before every trigger was recorded")
        self.assertEqual((response.status, answer["dispatched"]), (200, 2))
        self.assertEqual(len(self.get_dispatched_triggers()), 2)

    def test_overload_answers_503_so_alertmanager_retries(self):
        entered, release = threading.Event(), threading.Event()
        real_dispatch = self.sensor_service.dispatch

        def held_dispatch(*args, **kwargs):
            entered.set()
            release.wait(30)
            return real_dispatch(*args, **kwargs)

        self.sensor_service.dispatch = held_dispatch
        with self.run_sensor({"alertmanager": {"max_concurrent_requests": 1}}) as (_sensor, url):
            result = {}
            blocked = threading.Thread(target=lambda: result.update(r=requests.post(url, json=notification([alert()]), timeout=30)))
            blocked.start()
            self.assertTrue(entered.wait(30), "the first request never reached dispatch")
            resp = requests.post(url, json=notification([alert(instance="x")]), timeout=30)  # the only slot is taken
            release.set()
            blocked.join(BOUND)
        self.assertFalse(blocked.is_alive(), "the held request was never answered")
        self.assertEqual(resp.status_code, 503)
        self.assertEqual(resp.headers["Retry-After"], "1")
        self.assertEqual(result["r"].status_code, 200)

    def test_bearer_token_auth(self):
        config = {"alertmanager": {"auth": {"type": "bearer", "token": "s3cret-token"}}}
        before = metric("aegis_webhook_requests_total", code="401")
        with self.run_sensor(config) as (_sensor, url):
            body = notification([alert()])
            missing = requests.post(url, json=body, timeout=BOUND)
            wrong = requests.post(url, json=body, headers={"Authorization": "Bearer s3cret-tokeN"}, timeout=BOUND)
            wrong_scheme = requests.post(url, json=body, headers={"Authorization": "Basic s3cret-token"}, timeout=BOUND)
            good = requests.post(url, json=body, headers={"Authorization": "Bearer s3cret-token"}, timeout=BOUND)
        self.assertEqual([r.status_code for r in (missing, wrong, wrong_scheme, good)], [401, 401, 401, 200])
        self.assertEqual(missing.headers["WWW-Authenticate"], 'Bearer realm="aegis"')
        self.assertEqual(len(self.get_dispatched_triggers()), 1)
        self.assertEqual(metric("aegis_webhook_requests_total", code="401") - before, 3)

    def test_basic_auth(self):
        config = {"alertmanager": {"auth": {"type": "basic", "username": "am", "password": "pw:with:colons"}}}
        with self.run_sensor(config) as (_sensor, url):
            body = notification([alert()])
            bad = requests.post(url, json=body, auth=("am", "nope"), timeout=BOUND)
            good = requests.post(url, json=body, auth=("am", "pw:with:colons"), timeout=BOUND)
        self.assertEqual((bad.status_code, good.status_code), (401, 200))

    def test_source_allowlist(self):
        with self.run_sensor({"alertmanager": {"allowed_sources": ["10.0.0.0/8"]}}) as (_sensor, url):
            denied = requests.post(url, json=notification([alert()]), timeout=BOUND)
        with self.run_sensor({"alertmanager": {"allowed_sources": ["10.0.0.0/8", "127.0.0.1/32"]}}) as (_sensor, url):
            allowed = requests.post(url, json=notification([alert()]), timeout=BOUND)
        self.assertEqual((denied.status_code, allowed.status_code), (403, 200))

    def test_config_errors_are_reported_at_setup(self):
        cases = {
            "auth.type must be none, bearer or basic": {"auth": {"type": "digest"}},
            "alertmanager.auth.token is empty": {"auth": {"type": "bearer", "token": ""}},
            "unrendered template": {"auth": {"type": "bearer", "token": "{{ st2kv.system.aegis.token }}"}},
            "allowed_sources": {"allowed_sources": ["10.0.0.0/33"]},
            "max_body_bytes must be a positive integer": {"max_body_bytes": 0},
            "path must start with": {"path": "alertmanager"},
        }
        for message, section in cases.items():
            sensor = self.get_sensor_instance(config={"alertmanager": {"port": 0, **section}})
            with self.assertRaises(ConfigError) as caught:
                sensor.setup()
            self.assertIn(message, str(caught.exception))

    def test_get_health_and_unknown_paths(self):
        with self.run_sensor() as (sensor, url):
            base = url.rsplit("/", 1)[0]
            get = requests.get(url, timeout=BOUND)
            health = requests.get(base + "/healthz", timeout=BOUND)
            other = requests.post(base + "/other", json={}, timeout=BOUND)
        self.assertEqual((get.status_code, get.headers["Allow"]), (405, "POST"))
        self.assertEqual(health.json(), {"status": "ok"})
        self.assertEqual(other.status_code, 404)

    def test_keep_alive_connection_serves_many_requests(self):
        with self.run_sensor() as (_sensor, url), requests.Session() as session:
            codes = [session.post(url, json=notification([alert(instance=f"i{n}")]), timeout=BOUND).status_code for n in range(20)]
        self.assertEqual(codes, [200] * 20)
        self.assertEqual(len(self.get_dispatched_triggers()), 20)

    def test_metrics_count_received_rejected_dispatched(self):
        before = {
            "received": metric("aegis_alerts_received_total"),
            "rejected": metric("aegis_alerts_rejected_total", reason="invalid_alert"),
            "dispatched": metric("aegis_alerts_dispatched_total", status="firing"),
        }
        body = notification([alert(instance="ok"), {"status": "firing"}])
        with self.run_sensor() as (_sensor, url):
            requests.post(url, json=body, timeout=BOUND)
        self.assertEqual(metric("aegis_alerts_received_total") - before["received"], 2)
        self.assertEqual(metric("aegis_alerts_rejected_total", reason="invalid_alert") - before["rejected"], 1)
        self.assertEqual(metric("aegis_alerts_dispatched_total", status="firing") - before["dispatched"], 1)

    def test_cleanup_releases_the_port(self):
        with self.run_sensor() as (sensor, _url):
            port = sensor.port
        with socket.socket() as probe:
            self.assertNotEqual(probe.connect_ex(("127.0.0.1", port)), 0)

    def test_basic_header_is_constant_time_compared_against_the_whole_credential(self):
        sensor = self.get_sensor_instance(config={"alertmanager": {"auth": {"type": "basic", "username": "a", "password": "b"}}})
        sensor.settings = __import__("alertmanager_webhook_sensor")._settings(sensor.config)
        good = "Basic " + base64.b64encode(b"a:b").decode()
        self.assertIsNone(sensor.authorize("127.0.0.1", good))
        self.assertEqual(sensor.authorize("127.0.0.1", good + "x")[0], 401)
        self.assertEqual(sensor.authorize("127.0.0.1", None)[0], 401)

    def test_response_body_is_json_with_rejections(self):
        body = notification([alert(instance="a"), {"status": "firing", "labels": {"alertname": "X"}}])
        with self.run_sensor() as (_sensor, url):
            resp = requests.post(url, data=json.dumps(body), headers={"Content-Type": "application/json; charset=utf-8"}, timeout=BOUND)
        answer = resp.json()
        self.assertEqual((resp.status_code, answer["status"], answer["dispatched"]), (200, "partial", 1))
        self.assertEqual(answer["rejected"], [{"index": 1, "fingerprint": None, "reason": "missing field startsAt"}])
