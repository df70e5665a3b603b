"""aegis.verify against a real Prometheus scraping a small exporter."""

from __future__ import annotations

import tempfile
import unittest

from fixtures.alerts import alert
from incidents import IncidentStore
from promql import Prometheus as PromClient
from promql import fill
from servers import prometheus
from st2tests.base import BaseActionTestCase
from verification import verify
from verify import Verify

SKIP = prometheus.available()
CHECK = {"query": 'victim_error_ratio{job="${job}"}', "below": 0.1}


@unittest.skipIf(SKIP, SKIP or "")
class VerifyTest(BaseActionTestCase):
    action_cls = Verify

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.exporter = prometheus.Exporter({"victim_error_ratio": 0.9})
        cls.prom = prometheus.Prometheus(cls.tmp.name, [cls.exporter.address])
        cls.prom.start()

    @classmethod
    def tearDownClass(cls):
        cls.prom.stop()
        cls.exporter.close()
        cls.tmp.cleanup()

    def set_value(self, value: float) -> None:
        self.exporter.set("victim_error_ratio", value)
        self.prom.wait_for_value("victim_error_ratio", value)

    def incident(self, **labels):
        store = IncidentStore(self.get_action_instance().action_service)
        incident, _ = store.open_or_repeat(alert("VictimErrors", job="exporter", **labels))
        return incident

    def config(self, **verify_opts):
        return {"prometheus": {"url": self.prom.url},
                "verify": {"checks": {"VictimErrors": [CHECK]}, "interval_seconds": 0.2, "max_interval_seconds": 0.5,
                           "consecutive": 2, "timeout_seconds": 20, **verify_opts}}

    def test_healthy_after_consecutive_good_polls(self):
        self.set_value(0.01)
        inc = self.incident()
        result = self.get_action_instance(self.config()).run(incident_id=inc["id"])
        self.assertTrue(result["healthy"], result)
        self.assertEqual((result["polls"], result["streak"]), (2, 2))
        self.assertIn("values [0.01]", result["last"][0]["detail"])

    def test_unhealthy_until_the_deadline(self):
        self.set_value(0.9)
        inc = self.incident()
        result = self.get_action_instance(self.config(timeout_seconds=1.5)).run(incident_id=inc["id"])
        self.assertFalse(result["healthy"])
        self.assertGreaterEqual(result["polls"], 2)
        self.assertIn("values [0.9]", result["last"][0]["detail"])

    def test_recovers_during_verification(self):
        self.set_value(0.9)
        seen = []

        def sleep(_seconds):   # the target recovers after the first poll; wait for the scrape, not a clock
            if not seen:
                self.set_value(0.0)
            seen.append(1)

        result = verify([CHECK], {"job": "exporter"}, PromClient(self.prom.url), timeout_seconds=30,
                        interval_seconds=0.1, consecutive=2, sleep=sleep)
        self.assertTrue(result["healthy"])
        self.assertEqual(result["polls"], 3)   # bad, good, good

    def test_a_missing_label_or_no_checks_is_not_healthy(self):
        inc = self.incident()
        config = self.config()
        config["verify"]["checks"] = {"VictimErrors": [{"query": 'x{pod="${pod}"}'}]}
        result = self.get_action_instance({**config, "verify": {**config["verify"], "timeout_seconds": 0.3}}).run(incident_id=inc["id"])
        self.assertFalse(result["healthy"])
        self.assertIn("needs label 'pod'", result["last"][0]["detail"])
        none = self.get_action_instance({"prometheus": {"url": self.prom.url}}).run(incident_id=inc["id"])
        self.assertEqual((none["healthy"], none["reason"]), (False, "no verification checks configured"))

    def test_label_values_cannot_extend_the_expression(self):
        evil = 'x"} or vector(1) or up{job="x'
        query = fill('victim_error_ratio{job="${job}"}', {"job": evil})
        self.assertEqual(query, 'victim_error_ratio{job="x\\"} or vector(1) or up{job=\\"x"}')
        self.assertEqual(PromClient(self.prom.url).query('victim_error_ratio{job="${job}"}', {"job": evil}), [])

    def test_http_check(self):
        result = verify([{"http": self.prom.url + "/-/healthy"}, {"http": self.prom.url + "/nope", "status": 404}], {}, None,
                        consecutive=1, interval_seconds=0.1)
        self.assertTrue(result["healthy"], result)

    def test_with_a_threshold_no_samples_is_not_a_recovery(self):
        result = verify([{"query": "victim_error_ratio_absent", "below": 0.1}], {}, PromClient(self.prom.url),
                        timeout_seconds=0.2, interval_seconds=0.1, consecutive=1)
        self.assertFalse(result["healthy"])
        alert_style = verify([{"query": "victim_error_ratio > 5"}], {}, PromClient(self.prom.url), consecutive=1)
        self.assertTrue(alert_style["healthy"])
