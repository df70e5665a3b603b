"""aegis.gather_context: every source, bounded, and a failing source never fails the gathering."""

from __future__ import annotations

import os
import tempfile
import threading
import time
import unittest

from fixtures.alerts import alert
from gather_context import GatherContext
from incidents import IncidentStore
from matched_lines import remember_matched_lines
from record_deploy import RecordDeploy
from servers import prometheus
from servers.standins import KubernetesStandIn, _StandIn
from st2tests.base import BaseActionTestCase


class LokiStandIn(_StandIn):
    """``GET /loki/api/v1/query_range`` answering streams; ``hang`` makes it never answer in time."""

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.status, self.release = status, threading.Event()
        self.hang = False

    def route(self, req):
        if self.hang:
            self.release.wait(30)
        if req["path"] != "/loki/api/v1/query_range":
            return 404, {}
        if self.status != 200:
            return self.status, {"error": "boom"}
        return 200, {"status": "success", "data": {"resultType": "streams", "result": [
            {"stream": {"app": "checkout"}, "values": [["1714557600000000002", "loki line 2"], ["1714557600000000001", "loki line 1"]]}]}}


class GatherContextTest(BaseActionTestCase):
    action_cls = GatherContext

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.service = self.get_action_instance().action_service
        raw = alert("HighErrorRate", service="checkout", namespace="shop", annotations={"summary": "{{ 7*7 }} errors"})
        self.incident, _ = IncidentStore(self.service).open_or_repeat(raw)

    def run_action(self, config):
        return self.get_action_instance(config).run(incident_id=self.incident["id"])

    def test_nothing_configured_gives_the_alert_and_missing_sources(self):
        ctx = self.run_action({})
        self.assertEqual(ctx["alert"]["labels"]["service"], "checkout")
        self.assertEqual(ctx["alert"]["annotations"]["summary"], "{{ 7*7 }} errors")   # data, never rendered
        self.assertEqual((ctx["logs"], ctx["deploys"], ctx["metrics"]), ([], [], {}))
        self.assertEqual({k: v["status"] for k, v in ctx["sources"].items()}, {"logs": "missing", "deploys": "missing", "metrics": "missing"})

    def test_matched_lines_files_loki_and_recorded_deploys(self):
        remember_matched_lines(self.service, {"pattern": "http_5xx", "fields": {"service": "checkout"}, "lines": ["matched 1", "matched 2"],
                                              "last_seen": "2024-05-01T10:00:00Z"})
        remember_matched_lines(self.service, {"pattern": "http_5xx", "fields": {"service": "other"}, "lines": ["not ours"]})
        log = os.path.join(self.tmp.name, "checkout.log")
        with open(log, "w") as fh:
            fh.write("".join(f"file line {i}\n" for i in range(1000)))
        deploy = self.action_cls
        self.action_cls = RecordDeploy
        ok, recorded = self.get_action_instance().run(body={"service": "checkout", "version": "v42", "previous_version": "v41"})
        self.action_cls = deploy
        self.assertTrue(ok)
        with LokiStandIn() as loki:
            config = {"context": {"max_lines": 50, "log_files": {"checkout": [os.path.join(self.tmp.name, "*.log")]},
                                  "loki": {"url": loki.url, "query": '{app="${service}"}'}}}
            ctx = self.run_action(config)
            self.assertEqual(loki.calls("GET")[0]["query"]["query"], ['{app="checkout"}'])
        self.assertEqual(len(ctx["logs"]), 50)                       # bounded, newest kept
        self.assertEqual(ctx["logs"][-2:], ["loki line 1", "loki line 2"])
        self.assertIn("file line 999", ctx["logs"])
        self.assertNotIn("not ours", " ".join(ctx["logs"]))
        full = self.run_action({**config, "context": {**config["context"], "max_lines": 2000, "loki": {}}})
        self.assertIn("2024-05-01T10:00:00Z matched 1", full["logs"])
        self.assertEqual(ctx["deploys"][0]["version"], "v42")
        self.assertEqual(ctx["deploys"][0]["previous_version"], "v41")
        self.assertEqual(ctx["sources"]["logs"]["status"], "ok")

    def test_a_failing_or_hanging_source_is_noted_not_fatal(self):
        log = os.path.join(self.tmp.name, "checkout.log")
        with open(log, "w") as fh:
            fh.write("still here\n")
        with LokiStandIn(status=500) as loki:
            ctx = self.run_action({"context": {"log_files": {"checkout": [log]}, "loki": {"url": loki.url, "query": "{a=\"b\"}"}}})
        self.assertEqual(ctx["logs"], ["still here"])
        self.assertIn("loki: error (HTTPError", ctx["sources"]["logs"]["detail"])
        with LokiStandIn() as loki:
            loki.hang = True
            started = time.monotonic()
            ctx = self.run_action({"context": {"timeout_seconds": 0.5, "loki": {"url": loki.url, "query": "{a=\"b\"}"}}})
            elapsed = time.monotonic() - started
            loki.release.set()
        self.assertEqual(ctx["sources"]["logs"]["status"], "error")
        self.assertIn("timed out", ctx["sources"]["logs"]["detail"])
        self.assertLess(elapsed, 5)

    def test_kubernetes_pod_logs_and_rollout_history(self):
        with KubernetesStandIn() as kube:
            kube.add_deployment("shop", "checkout", image="checkout:3", revisions={2: "checkout:2"})
            kube.logs[("shop", "checkout-00003-abcde")] = "panic: nil map\nretrying\n"
            ctx = self.run_action({"kubernetes": {"host": kube.url}, "context": {"kubernetes_logs": True, "deploy_window_hours": 1e6}})
        self.assertEqual(ctx["logs"], ["checkout-00003-abcde: panic: nil map", "checkout-00003-abcde: retrying"])
        self.assertEqual([(d["version"], d.get("previous_version")) for d in ctx["deploys"]], [("checkout:3", "checkout:2"), ("checkout:2", None)])

    def test_record_deploy_refuses_incomplete_or_bad_input(self):
        self.action_cls = RecordDeploy
        self.assertFalse(self.get_action_instance().run(body={"service": "checkout"})[0])
        ok, err = self.get_action_instance().run(service="a", version="1", at="yesterday")
        self.assertFalse(ok)
        self.assertIn("RFC 3339", err["error"])


SKIP = prometheus.available()


@unittest.skipIf(SKIP, SKIP or "")
class GatherMetricsTest(BaseActionTestCase):
    action_cls = GatherContext

    def test_runbook_and_config_queries_on_a_real_prometheus(self):
        with tempfile.TemporaryDirectory() as tmp:
            exporter = prometheus.Exporter({"checkout_error_ratio": 0.25})
            books = os.path.join(tmp, "runbooks")
            os.makedirs(books)
            with open(os.path.join(books, "error-spike.md"), "w") as fh:
                fh.write("---\nid: error-spike\nsignals: [HighErrorRate]\nqueries:\n  error_ratio: 'checkout_error_ratio{job=\"${job}\"}'\n---\n")
            try:
                with prometheus.Prometheus(tmp, [exporter.address]) as prom:
                    prom.wait_for_value("checkout_error_ratio", 0.25)
                    raw = alert("HighErrorRate", service="checkout", job="exporter")
                    incident, _ = IncidentStore(self.get_action_instance().action_service).open_or_repeat(raw)
                    config = {"prometheus": {"url": prom.url}, "knowledge": {"runbooks_dir": books},
                              "context": {"metrics": {"nothing": "absent_metric_xyz", "broken": "sum("}}}
                    ctx = self.get_action_instance(config).run(incident_id=incident["id"])
            finally:
                exporter.close()
        self.assertEqual(ctx["metrics"]["error_ratio"], {"query": 'checkout_error_ratio{job="${job}"}', "value": 0.25})
        self.assertIsNone(ctx["metrics"]["nothing"]["value"])
        self.assertIn("bad_data", ctx["metrics"]["broken"]["error"])
        self.assertEqual(ctx["sources"]["metrics"]["status"], "ok")
