"""aegis.precheck and aegis.silence against a real Alertmanager (API v2)."""

from __future__ import annotations

import tempfile
import time
import unittest
from datetime import datetime, timedelta, timezone

import requests
from fixtures.alerts import alert
from incidents import IncidentStore
from precheck import Precheck
from servers import alertmanager
from silence import Silence
from st2tests.base import BaseActionTestCase

SKIP = alertmanager.available()


def _rfc(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@unittest.skipIf(SKIP, SKIP or "")
class AlertmanagerActionsTest(BaseActionTestCase):
    action_cls = Precheck

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.am = alertmanager.Alertmanager(cls.tmp.name, "http://127.0.0.1:9/unused")
        cls.am.start()

    @classmethod
    def tearDownClass(cls):
        cls.am.stop()
        cls.tmp.cleanup()

    def fire(self, **labels) -> dict:
        """Post an alert as Prometheus does; return the incident stored for it (AM's real fingerprint)."""
        labels = {"alertname": "VictimDown", "severity": "critical", **labels}
        self.am.post_alerts([{"labels": labels, "annotations": {"summary": "victim is down"}}])
        deadline = time.monotonic() + 20
        while True:
            found = [a for a in requests.get(self.am.url + "/api/v2/alerts", timeout=5).json() if a["labels"] == labels]
            if found:
                break
            self.assertLess(time.monotonic(), deadline, "alert not in Alertmanager")
            time.sleep(0.05)
        raw = alert("VictimDown", **{k: v for k, v in labels.items() if k != "alertname"})
        raw["fingerprint"] = found[0]["fingerprint"]
        incident, _ = IncidentStore(self.action_service()).open_or_repeat(raw)
        return incident

    def action_service(self):
        return self.get_action_instance().action_service

    def config(self):
        return {"mode": "auto", "alertmanager_api": {"url": self.am.url}}

    def silence_action(self):
        self.action_cls = Silence
        try:
            return self.get_action_instance(self.config())
        finally:
            self.action_cls = Precheck

    def am_alert(self, fingerprint: str) -> dict:
        return next(a for a in requests.get(self.am.url + "/api/v2/alerts", timeout=5).json() if a["fingerprint"] == fingerprint)

    def test_precheck_passes_for_a_firing_alert(self):
        inc = self.fire(instance="victim-1")
        result = self.get_action_instance(self.config()).run(incident_id=inc["id"], action="restart", target="victim")
        self.assertEqual((result["ok"], result["firing"], result["reason"]), (True, True, None))

    def test_precheck_refuses_once_the_alert_resolved(self):
        labels = {"alertname": "VictimDown", "severity": "critical", "instance": "victim-2"}
        inc = self.fire(instance="victim-2")
        now = datetime.now(timezone.utc)
        self.am.post_alerts([{"labels": labels, "startsAt": _rfc(now - timedelta(minutes=5)), "endsAt": _rfc(now - timedelta(seconds=1))}])
        result = self.get_action_instance(self.config()).run(incident_id=inc["id"], action="restart", target="victim")
        self.assertEqual((result["ok"], result["firing"]), (False, False))
        self.assertEqual(result["reason"], "the alert is no longer firing")

    def test_precheck_refuses_when_alertmanager_cannot_be_asked(self):
        inc = self.fire(instance="victim-3")
        config = {"mode": "auto", "alertmanager_api": {"url": "http://127.0.0.1:9"}}
        result = self.get_action_instance(config).run(incident_id=inc["id"], action="restart", target="victim")
        self.assertFalse(result["ok"])
        self.assertIn("cannot confirm the alert still fires", result["reason"])

    def test_silence_covers_exactly_the_alert_then_expires(self):
        inc = self.fire(instance="victim-4")
        other = self.fire(instance="victim-5")
        created = self.silence_action().run(incident_id=inc["id"], operation="create", minutes=10, action="restart", target="victim")
        sid = created["silence_id"]
        silence = requests.get(f"{self.am.url}/api/v2/silence/{sid}", timeout=5).json()
        self.assertEqual(silence["status"]["state"], "active")
        self.assertIn(inc["id"], silence["comment"])
        self.assertEqual({m["name"]: m["value"] for m in silence["matchers"]}, inc["labels"])
        self.assertTrue(all(m["isEqual"] and not m["isRegex"] for m in silence["matchers"]))
        ends = datetime.fromisoformat(silence["endsAt"].replace("Z", "+00:00"))
        self.assertLessEqual(ends, datetime.now(timezone.utc) + timedelta(minutes=10))
        deadline = time.monotonic() + 20
        while self.am_alert(inc["fingerprint"])["status"]["state"] != "suppressed":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual(self.am_alert(inc["fingerprint"])["status"]["silencedBy"], [sid])
        self.assertEqual(self.am_alert(other["fingerprint"])["status"]["silencedBy"], [])
        self.silence_action().run(incident_id=inc["id"], operation="expire", silence_id=sid)
        self.assertEqual(requests.get(f"{self.am.url}/api/v2/silence/{sid}", timeout=5).json()["status"]["state"], "expired")

    def test_silence_deleted_at_once_on_failure(self):
        inc = self.fire(instance="victim-6")
        sid = self.silence_action().run(incident_id=inc["id"], operation="create", minutes=10)["silence_id"]
        self.silence_action().run(incident_id=inc["id"], operation="delete", silence_id=sid)
        self.assertEqual(requests.get(f"{self.am.url}/api/v2/silence/{sid}", timeout=5).json()["status"]["state"], "expired")
        timeline = [e["event"] for e in self.get_action_instance().lifecycle.timeline(inc["id"])]
        self.assertEqual(timeline[-2:], [timeline[-2], f"silence {sid} deleted"])
        self.assertTrue(timeline[-2].startswith(f"silence {sid} created"))
