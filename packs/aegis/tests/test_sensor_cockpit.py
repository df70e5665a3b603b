"""aegis.CockpitSensor as st2's sensor container runs it: it binds its port in setup(), answers
nothing without a session, and builds its views from the datastore (the browser tests, with
a real runtime, st2 API and Chromium, are tests/test_e2e_cockpit.py)."""

from __future__ import annotations

import http.client
import json
import socket
import threading

from cockpit_data import CockpitData, mttr_svg
from cockpit_sensor import CockpitSensor
from incidents import IncidentStore
from lifecycle import Lifecycle
from st2tests.base import BaseSensorTestCase

ALERT = {"status": "firing", "labels": {"alertname": "DiskFull", "service": "db", "severity": "critical"},
         "annotations": {"summary": "<script>alert(1)</script> disk 95%"}, "startsAt": "2026-11-30T01:00:00Z",
         "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "00aa11bb22cc33dd"}  # fmt: skip


class CockpitSensorTest(BaseSensorTestCase):
    sensor_cls = CockpitSensor

    def setUp(self) -> None:
        super().setUp()
        config = {"cockpit": {"host": "127.0.0.1", "port": 0, "cost_per_minute": 10, "manual_mttr_minutes": 30}}
        self.sensor = self.get_sensor_instance(config=config)
        self.sensor.setup()
        self.thread = threading.Thread(target=self.sensor.run, daemon=True)
        self.thread.start()

    def tearDown(self) -> None:
        self.sensor.cleanup()
        self.thread.join(timeout=10)
        super().tearDown()

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.sensor._server.port, timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response

    def test_nothing_answers_without_a_session(self) -> None:
        for path in ("/api/incidents", "/api/mode", "/api/approvals", "/events", "/static/app.js", "/api/impact/mttr.svg"):
            self.assertEqual(self.request("GET", path).status, 401, path)
        page = self.request("GET", "/")
        self.assertEqual((page.status, page.getheader("Location")), (303, "/login"))
        login = self.request("GET", "/login")
        self.assertEqual(login.status, 200)
        self.assertIn("frame-ancestors 'none'", login.getheader("Content-Security-Policy"))
        self.assertEqual(login.getheader("X-Content-Type-Options"), "nosniff")
        # A POST from another site is refused before anything else.
        refused = self.request("POST", "/login", {"Origin": "http://evil.example", "Content-Length": "0"}, b"")
        self.assertEqual(refused.status, 403)

    def test_a_disabled_cockpit_stays_idle_until_cleanup(self) -> None:
        # Exiting would make st2's sensor container restart it in a loop; it waits instead.
        idle = self.get_sensor_instance(config={"cockpit": {"enabled": False}})
        idle.setup()
        runner = threading.Thread(target=idle.run, daemon=True)
        runner.start()
        self.assertIsNone(idle._server)
        self.assertTrue(runner.is_alive())
        idle.cleanup()
        runner.join(timeout=10)
        self.assertFalse(runner.is_alive())

    def test_cleanup_before_run_releases_the_port_at_once(self) -> None:
        # st2 may stop a sensor between setup() and run(): the bound port is released
        # (socketserver's shutdown() would wait forever for a server that never served).
        early = self.get_sensor_instance(config={"cockpit": {"host": "127.0.0.1", "port": 0}})
        early.setup()
        port = early._server.port
        stopping = threading.Thread(target=early.cleanup, daemon=True)
        stopping.start()
        stopping.join(timeout=10)
        self.assertFalse(stopping.is_alive())
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))  # free again
        early.run()  # returns at once: it was stopped

    def test_views_from_the_datastore(self) -> None:
        store, life = IncidentStore(self.sensor_service), Lifecycle(self.sensor_service)
        incident, _ = store.open_or_repeat(ALERT)
        life.event(incident["id"], "identified", "proposed cleanup_disk db")
        life.event(incident["id"], "resolving", "cleanup_disk db: done")
        life.event(incident["id"], "resolved", "verified healthy")
        data = CockpitData(self.sensor_service, {"cockpit": {"cost_per_minute": 10, "manual_mttr_minutes": 30}})
        (row,) = data.incident_rows(service="db")
        self.assertEqual((row["state"], row["alert"], row["service"]), ("resolved", "DiskFull", "db"))
        self.assertEqual(row["summary"], ALERT["annotations"]["summary"])  # data, escaped by the page
        self.assertEqual(data.incident_rows(state="escalated"), [])
        detail = data.incident_detail(incident["id"], api=None)
        stages = {s["stage"]: s for s in detail["stages"]}
        self.assertEqual(stages["outcome"]["label"], "resolved")
        self.assertIn("no st2 API", detail["api_error"])
        self.assertIsNone(data.incident_detail("inc-../../etc", api=None))
        impact = data.impact()
        self.assertEqual((impact["ended"], impact["resolved_without_human"], impact["share_without_human"]), (1, 1, 1.0))
        self.assertGreater(impact["cost_avoided"], 290)  # resolved in seconds vs a 30 min manual MTTR at 10/min
        self.assertEqual(sum(b["count"] for b in impact["mttr_buckets"]), 1)
        svg = mttr_svg(impact["mttr_buckets"])
        self.assertTrue(svg.startswith("<svg") and "&lt;1 min" in svg and "<script" not in svg)
        self.assertEqual(json.loads(json.dumps(data.mode()))["mode"], "advisory")
