"""The demo end to end: a real victim under supervisord, real Prometheus and Alertmanager, the
runtime serving the aegis pack in auto mode, Slack and PagerDuty stand-ins.

Each scenario breaks the victim for real and follows Aegis from Alertmanager's notification to
its outcome (``demo.scenarios.run_scenario``), then checks, from the outside: the right action
ran (and nothing else acted), verification passed against Prometheus' real metrics, the
incident is resolved in the runtime's history, Alertmanager sent the resolve, and the other
programs kept their processes. The full data volume has no safe fix: it must end in an
escalation whose complete report reached the Slack and PagerDuty stand-ins, with nothing
deleted. One stack serves all scenarios (starting it loads the embedding model); they run in
the demo's order (bad_release last: a recent deploy is a suspect for any later alert).
"""

from __future__ import annotations

import json

import pytest
import requests
from conftest import VIRTUALENVS

from demo.scenarios import SCENARIOS, run_scenario, settle
from demo.stack import Stack, missing_packages

pytestmark = [pytest.mark.services, pytest.mark.skipif(bool(missing_packages()),
                                                       reason=f"missing Debian packages: {missing_packages()}")]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("demo"), virtualenvs=VIRTUALENVS) as s:
        yield s
    assert s.listening_ports() == [], "the stack left something listening"


def _check_resolved(stack: Stack, name: str):
    settle(stack)
    result = run_scenario(stack, SCENARIOS[name])
    assert result.ok, result.problems
    run = result.run
    # The right action ran, once, and succeeded; no other acting task ran.
    acts = [t for t in run.tasks if t["task_name"] in ("act", "propose", "propose_for_approval")]
    assert [t["task_name"] for t in acts] == ["act"], [t["task_name"] for t in acts]
    assert acts[0]["status"] == "succeeded" and acts[0]["result"]["result"]["outcome"] == "done", acts[0]["result"]
    # Verification passed on Prometheus samples (not on an empty or failing query).
    verify = run.task("verify")["result"]["result"]
    assert verify["healthy"] is True, verify
    queried = [c for c in verify["last"] if "query" in c["check"]]
    assert queried and all(c["healthy"] and c["detail"].startswith("values") for c in queried), verify["last"]
    # The incident is resolved in the history, with its MTTR; Alertmanager sent the resolve.
    assert run.lifecycle["state"] == "resolved" and run.lifecycle["mttr_seconds"] is not None, run.lifecycle
    assert run.outcome == "resolved" and run.result["outcome"] == "resolved"
    # Alertmanager shows it resolved (no longer active). Its resolve notification to the
    # webhook is not asserted: an alert that resolves while Aegis's silence still covers it
    # is muted, so whether the resolve is sent depends on which comes first.
    assert result.alert_resolved
    assert not [a for a in stack.alerts(active_only=True) if a["fingerprint"] == run.fingerprint]
    return result


def test_memory_leak_is_fixed_by_restarting_the_victim(stack):
    before = stack.programs()["victim"]["pid"]
    result = _check_resolved(stack, "memory_leak")
    assert result.run.action == "restart victim"
    assert stack.programs()["victim"]["pid"] != before
    rss = float(stack.prometheus_query('process_resident_memory_bytes{job="victim"}')[0]["value"][1])
    assert rss < 150e6


def test_log_volume_is_cleaned_and_the_data_volume_is_left_alone(stack):
    data = sorted(p.name for p in (stack.base / "volumes" / "data").iterdir())
    before = stack.programs()["victim"]["pid"]
    result = _check_resolved(stack, "disk")
    assert result.run.action == "cleanup_disk demo-host"
    assert not list((stack.base / "volumes" / "logs").glob("victim.log.*")), "rotated logs are gone"
    assert sorted(p.name for p in (stack.base / "volumes" / "data").iterdir()) == data
    assert stack.programs()["victim"]["pid"] == before, "cleaning a disk restarts nothing"


def test_full_data_volume_escalates_with_a_complete_report(stack):
    slack_before, pd_before = len(stack.slack.requests), len(stack.pagerduty.requests)
    settle(stack)
    result = run_scenario(stack, SCENARIOS["data_volume"])
    assert result.ok, result.problems
    run = result.run
    assert run.outcome == "escalated" and run.lifecycle["state"] == "escalated"
    assert not run.acted and run.task("propose_for_approval") is None, "nothing acted, nothing proposed"
    assert run.diagnosis["action"] == "escalate" and run.diagnosis["safety"] == "forbidden"
    # The stand-ins got the whole report.
    posts = [r for r in stack.slack.requests[slack_before:] if r["path"] == "/api/chat.postMessage"]
    assert len(posts) == 1, posts
    text = json.dumps(posts[0]["body"]["blocks"])
    for part in ("Aegis escalates", "Diagnosis:* escalate", run.diagnosis["root_cause"], "mountpoint=/data",
                 "Timeline", "Evidence:", "Next:", "alert: http"):
        assert part in text, (part, text)
    assert posts[0]["headers"]["authorization"] == f"Bearer {stack.slack_token}"
    events = [r["body"] for r in stack.pagerduty.requests[pd_before:] if r["path"] == "/v2/enqueue"]
    assert len(events) == 1, events
    event = events[0]
    assert event["event_action"] == "trigger" and event["routing_key"] == stack.pagerduty_key
    assert event["dedup_key"] == run.fingerprint
    details = event["payload"]["custom_details"]["report"]
    for part in ("Impact:", "Diagnosis: escalate", "Timeline:", "Evidence:", "Next:", "alert: http"):
        assert part in details, (part, details)


def test_bad_release_is_rolled_back(stack):
    result = _check_resolved(stack, "bad_release")
    assert result.run.action == "rollback victim"
    act = json.dumps(result.run.task("act")["result"]["result"])
    assert '"v2"' in act and '"v1"' in act, act  # both versions recorded
    assert requests.get(stack.victim_url + "/health", timeout=5).json()["version"] == "v1"
