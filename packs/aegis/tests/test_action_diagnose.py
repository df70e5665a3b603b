"""The actions (diagnose, knowledge_search, knowledge_index, learn_incident) and the knowledge
service that keeps the model warm between executions."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

from _diag_fixtures import PACK, REPO, alert, context, fresh_index_config, shared_index_config
from diagnose import DiagnoseAction
from knowledge_index import KnowledgeIndexAction
from knowledge_search import KnowledgeSearchAction
from knowledge_service import TOKEN_KEY, KnowledgeService, ServiceUnavailable, call_service, remember, search
from knowledge_service_sensor import KnowledgeServiceSensor
from learn_incident import LearnIncidentAction
from st2tests.base import BaseActionTestCase, BaseSensorTestCase

from knowledge import KnowledgeSettings

MEM = alert("HighMemoryUsage", deployment="reports", pod="reports-5d-1",
            annotations={"summary": "reports memory working set climbing for 3 days"})


class DiagnoseActionTest(BaseActionTestCase):
    action_cls = DiagnoseAction

    def test_decision_for_an_alert(self):
        ok, result = self.get_action_instance(shared_index_config()).run(
            alert=MEM, logs=["RSS keeps growing, now 1.9GiB of 2GiB limit"], deploys=[], metrics={})
        assert ok
        assert set(result) == {"action", "target", "root_cause", "confidence", "evidence", "reasoning", "safety"}
        assert (result["action"], result["target"]) == ("restart", "reports")

    def test_decision_for_an_incident_id_loads_the_alert_from_the_store(self):
        from incidents import IncidentStore

        action = self.get_action_instance(shared_index_config())
        yaql_target = alert("HighMemoryUsage", deployment="<% 'payments-api' %>", pod="reports-5d-1",
                            annotations={"summary": "reports memory working set climbing for 3 days"})
        incident, _ = IncidentStore(action.action_service).open_or_repeat(yaql_target)
        ok, result = action.run(incident_id=incident["id"], logs=["RSS keeps growing, now 1.9GiB of 2GiB limit"])
        assert ok, result
        assert result["target"] != "payments-api"
        by_alert = action.run(alert=yaql_target, logs=["RSS keeps growing, now 1.9GiB of 2GiB limit"])[1]
        assert result == by_alert, "the same decision as for the alert itself"

    def test_incident_id_and_alert_are_exclusive_and_an_unknown_id_fails(self):
        action = self.get_action_instance(shared_index_config())
        ok, result = action.run(incident_id="inc-0123456789abcdef", alert=MEM)
        assert not ok and "exactly one" in result["error"]
        ok, result = action.run(incident_id="inc-0123456789abcdef")
        assert not ok and "no incident" in result["error"]

    def test_bad_input_fails_the_execution_clearly(self):
        ok, result = self.get_action_instance(shared_index_config()).run(alert={"labels": "nope"})
        assert not ok and "context.alert.labels" in result["error"]

    def test_failed_remediation_is_not_repeated(self):
        config = fresh_index_config()
        settings = KnowledgeSettings.from_config(config)
        incident, _ = remember(settings, signature="HighMemoryUsage|reports", action="restart", outcome="failed",
                               summary="memory climbed back in 20m")
        assert incident["signature"] == "HighMemoryUsage|reports"
        ok, result = self.get_action_instance(config).run(alert=MEM, logs=["RSS keeps growing"])
        assert ok and result["action"] != "restart"
        assert "failed verification" in result["reasoning"]
        # the same alert on another workload is unaffected
        other = alert("HighMemoryUsage", deployment="billing", annotations=MEM["annotations"])
        assert self.get_action_instance(config).run(alert=other, logs=["RSS keeps growing"])[1]["action"] == "restart"
        # once the action works again, it is allowed again
        remember(settings, signature="HighMemoryUsage|reports", action="restart", outcome="resolved")
        assert self.get_action_instance(config).run(alert=MEM, logs=["RSS keeps growing"])[1]["action"] == "restart"



class LearnIncidentActionTest(BaseActionTestCase):
    action_cls = LearnIncidentAction

    def test_learn_incident_requires_a_signature_or_alert(self):
        ok, result = self.get_action_instance(fresh_index_config()).run(action="restart", outcome="failed")
        assert not ok and "signature" in result["error"]

    def test_learn_incident_records_an_outcome(self):
        ok, incident = self.get_action_instance(fresh_index_config()).run(
            alert=MEM, action="restart", outcome="failed", summary="memory climbed back in 20m")
        assert ok and incident["signature"] == "HighMemoryUsage|reports"

    def test_a_learned_incident_is_found_by_the_next_search(self):
        config = fresh_index_config()
        learn = self.get_action_instance(config)
        ok, incident = learn.run(
            alert=alert("QueueBacklog", deployment="billing-worker",
                        annotations={"summary": "billing-worker consumers fell behind a growing invoice queue"}),
            action="scale_up", outcome="resolved", root_cause="too few consumers for the month-end batch")
        assert ok and incident["via"] == "in-process"
        search_action = KnowledgeSearchAction(config=config, action_service=learn.action_service)
        ok, found = search_action.run(text="invoice queue backlog, consumers behind", k=1)
        assert ok and found["hits"][0]["kind"] == "incident"
        assert (found["hits"][0]["signature"], found["hits"][0]["action"]) == ("QueueBacklog|billing-worker", "scale_up")


class KnowledgeActionsTest(BaseActionTestCase):
    action_cls = KnowledgeSearchAction

    def test_search_and_index(self):
        config = fresh_index_config()
        ok, result = self.get_action_instance(config).run(text="no space left on device under /var/log", k=3)
        assert ok and result["via"] == "in-process" and len(result["hits"]) == 3
        assert result["hits"][0]["id"] == "disk-full-logs"


class KnowledgeIndexActionTest(BaseActionTestCase):
    action_cls = KnowledgeIndexAction

    def test_index_is_incremental(self):
        ok, stats = self.get_action_instance(fresh_index_config()).run()
        assert ok and stats["embedded"] == 0 and stats["count"] >= 30


def test_service_answers_searches_and_the_client_prefers_it():
    config = fresh_index_config()
    svc = KnowledgeService(KnowledgeSettings.from_config(config), "s3cret", port=0)
    svc.start()
    try:
        settings = dataclasses.replace(KnowledgeSettings.from_config(
            {"knowledge": {**config["knowledge"], "use_service": True, "service_port": svc.port}}), service_token="s3cret")
        hits, via = search(settings, "TLS certificate expires in 3 days", 2)
        assert via == "service" and hits[0].id == "certificate-expiry"
        assert call_service(settings, "GET", "/healthz")["status"]["runbooks"] >= 30
        # a client configured for another index ignores this service
        other = dataclasses.replace(KnowledgeSettings.from_config(
            {"knowledge": {**config["knowledge"], "index_dir": "/tmp/elsewhere", "service_port": svc.port}}),
            service_token="s3cret")
        try:
            call_service(other, "GET", "/healthz")
            raise AssertionError("a foreign service was trusted")
        except ServiceUnavailable as exc:
            assert "another index" in str(exc)
        # bad requests are answered clearly and the service keeps serving
        try:
            call_service(settings, "POST", "/search", {"text": ""})
            raise AssertionError("empty search accepted")
        except ServiceUnavailable as exc:
            assert "400" in str(exc)

        # an action process answered by the service never imports torch (the 9 s cold start)
        code = (
            "import dataclasses, json, sys\n"
            "from diagnosis import diagnose\n"
            "from knowledge import KnowledgeSettings\n"
            f"cfg = json.loads({json.dumps(json.dumps({**config, 'knowledge': {**config['knowledge'], 'use_service': True, 'service_port': svc.port}}))})\n"
            "settings = dataclasses.replace(KnowledgeSettings.from_config(cfg), service_token='s3cret')\n"
            f"d = diagnose({json.dumps(context(MEM, ['RSS keeps growing']))!r} and json.loads({json.dumps(json.dumps(context(MEM, ['RSS keeps growing'])))}), cfg, settings=settings)\n"
            "print(json.dumps({'action': d['action'], 'torch': 'torch' in sys.modules, "
            "'st': 'sentence_transformers' in sys.modules}))\n"
        )
        env = dict(os.environ)
        env.pop("ANTHROPIC_API_KEY", None)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "st2lite" / "pack_env"), str(PACK / "actions" / "lib")])
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result == {"action": "restart", "torch": False, "st": False}
    finally:
        svc.stop()


class KnowledgeServiceSensorTest(BaseSensorTestCase):
    sensor_cls = KnowledgeServiceSensor

    def test_sensor_hosts_the_service(self):
        import threading
        import time

        config = fresh_index_config()
        config["knowledge"] = {**config["knowledge"], "service_port": 0}
        sensor = self.get_sensor_instance(config=config)
        service = self.sensor_service
        sensor.setup()
        thread = threading.Thread(target=sensor.run, daemon=True)
        thread.start()
        try:
            deadline = time.time() + 60
            while (sensor._server is None or not sensor._server._serving.is_set()) and time.time() < deadline:
                time.sleep(0.05)
            port = sensor._server.port
            # The sensor generated the shared secret into the datastore, encrypted.
            [pair] = service.list_values(local=False, prefix=TOKEN_KEY)
            assert pair.secret
            token = service.get_value(TOKEN_KEY, local=False, decrypt=True)
            settings = dataclasses.replace(KnowledgeSettings.from_config(
                {"knowledge": {**config["knowledge"], "service_port": port}}), service_token=token)
            answer = call_service(settings, "POST", "/search",
                                  {"text": "celery workers died, nothing consumes", "k": 1}, timeout=10)
            assert answer["hits"][0]["id"] == "dead-workers"
        finally:
            sensor.cleanup()
            thread.join(timeout=5)
        assert not thread.is_alive() and self.get_dispatched_triggers() == []
