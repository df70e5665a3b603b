"""End to end: the runtime serves the real aegis pack; an Alertmanager v4 notification becomes workflows."""

from __future__ import annotations

import json

import requests
from conftest import REPO, run_cli, wait_for

NOTIFICATION = json.loads((REPO / "tests" / "fixtures" / "alertmanager" / "two_firing.json").read_text())


def executions(env, *args):
    result = run_cli(["execution", "list", "--json", *args], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_two_alerts_become_two_remediate_workflows_with_stored_incidents(aegis_service):
    url, env = aegis_service
    response = requests.post(url, json=NOTIFICATION, timeout=10)
    assert response.status_code == 200, response.text

    def two_done():
        done = [e for e in executions(env, "--action", "aegis.remediate") if e["status"] in ("succeeded", "failed")]
        return done if len(done) == 2 else None

    done = wait_for(two_done, timeout=120, what="two aegis.remediate workflows to complete")
    assert all(e["status"] == "succeeded" for e in done), [e["result"] for e in done]
    # The workflow's only input is the incident id; the alert comes from the incident store.
    assert all(set(e["parameters"]) == {"incident_id"} for e in done), [e["parameters"] for e in done]
    by_fingerprint = {e["result"]["output"]["incident"]["fingerprint"]: e for e in done}
    assert set(by_fingerprint) == {a["fingerprint"] for a in NOTIFICATION["alerts"]}
    for alert in NOTIFICATION["alerts"]:
        workflow = by_fingerprint[alert["fingerprint"]]
        assert workflow["rule"] == "aegis.remediate_firing_alert"
        assert workflow["children"], "each workflow task is a child execution"
        tasks = {c["task_name"]: c for c in executions(env, "--all", "-n", "500") if c["parent"] == workflow["id"]}
        assert tasks["record_incident"]["status"] == "succeeded"
        incident = workflow["result"]["output"]["incident"]
        assert incident["fingerprint"] == alert["fingerprint"]
        assert incident["labels"] == alert["labels"]
        assert incident["annotations"] == alert["annotations"]
        assert incident["status"] == "open"
        diagnosis = workflow["result"]["output"]["diagnosis"]
        assert tasks["diagnose"]["status"] == "succeeded"
        assert diagnosis["action"] in {"restart", "scale_up", "rollback", "cleanup_disk", "cancel_query", "clear_cache", "noop", "escalate"}
        # A crash loop with no deploy on record is not something to restart or roll back blindly.
        assert diagnosis["action"] == "escalate", diagnosis
        assert 0 <= diagnosis["confidence"] <= 1 and diagnosis["evidence"]

    # The incidents are in the datastore, where st2 keeps them too.
    keys = run_cli(["key", "list", "--prefix", "aegis.incident"], env).stdout
    for alert in NOTIFICATION["alerts"]:
        assert alert["fingerprint"] in keys

    triggers = json.loads(run_cli(["trigger-instance", "list", "--json", "--trigger", "aegis.alert"], env).stdout)
    assert len(triggers) == 2 and all(t["status"] == "processed" for t in triggers)

    # The sensor's own counters, from its process, in the runtime's /metrics.
    metrics = requests.get(f"http://{env['AEGIS_API_LISTEN']}/metrics", timeout=5).text
    assert "aegis_alerts_received_total 2.0" in metrics
    assert 'aegis_alerts_dispatched_total{status="firing"} 2.0' in metrics
    assert 'aegis_webhook_requests_total{code="200"} 1.0' in metrics
    bad = requests.post(url, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=10)
    assert bad.status_code == 400
    metrics = requests.get(f"http://{env['AEGIS_API_LISTEN']}/metrics", timeout=5).text
    assert 'aegis_webhook_requests_total{code="400"} 1.0' in metrics
