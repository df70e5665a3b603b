"""aegis.remediate through the runtime, on real servers: supervisord runs the victims,
Prometheus scrapes them, Alertmanager holds the alerts and silences; Slack and PagerDuty are
stand-ins that record what they got.

Each test uses its own victim (a supervisord program), so cooldowns and learned outcomes of
one test never reach another. A victim serves ``victim_memory_ratio`` = the number in its
state file *when it started*: writing a new number and restarting it is the fix (the leak
is gone), leaving the file alone makes the restart useless (verification fails).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import requests
import yaml
from conftest import REPO, VIRTUALENVS
from remediation_world import CACHE_SUMMARY, RedisCli, World, fire, missing

sys.path.insert(0, str(REPO / "packs" / "aegis" / "actions" / "lib"))   # stdlib-only modules: incidents, safety

if missing():
    pytest.skip(missing(), allow_module_level=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with World(tmp_path_factory.mktemp("world")) as w:
        yield w


@pytest.fixture(scope="module")
def runtime(world, tmp_path_factory):
    from st2lite.engine import Runtime
    from st2lite.settings import Settings

    home = tmp_path_factory.mktemp("home")
    (home / "configs").mkdir()
    (home / "configs" / "aegis.yaml").write_text(yaml.safe_dump(world.config(tmp_path_factory.mktemp("index"))))
    rt = Runtime(Settings.from_env(home=home, packs_dir=REPO / "packs", virtualenvs_dir=VIRTUALENVS))
    rt.inquiries.interval = 0        # inquiries time out when a test says so (expire(now=...))
    rt.start(sensors=False)
    yield rt
    rt.stop()


@pytest.fixture(autouse=True)
def default_mode(runtime):
    runtime.store.delete("aegis.mode")
    yield


def RuntimeDatastore(store):  # noqa: N802 (a factory: st2's action service datastore calls on the runtime's store)
    from st2lite.pack_env.pack_runtime.datastore import DatastoreService

    return DatastoreService(store, "aegis", "tests")


def remediate(runtime, am_alert: dict, annotations: dict | None = None, wait: bool = True) -> dict:
    """Record the incident as the sensor does, start aegis.remediate as rule
    aegis.remediate_firing_alert does (the incident id only), and wait for it."""
    from incidents import IncidentStore

    alert = {"fingerprint": am_alert["fingerprint"], "startsAt": am_alert["startsAt"], "status": "firing",
             "alertname": am_alert["labels"]["alertname"], "labels": am_alert["labels"],
             "annotations": annotations or am_alert["annotations"], "generatorURL": am_alert.get("generatorURL", ""),
             "endsAt": "0001-01-01T00:00:00Z"}
    incident, repeat = IncidentStore(RuntimeDatastore(runtime.store)).open_or_repeat(alert)
    assert not repeat
    ex_id = runtime.execute("aegis.remediate", {"incident_id": incident["id"]})
    return runtime.wait(ex_id, timeout=240) if wait else {"id": ex_id}


def tasks(runtime, record: dict) -> list[dict]:
    return runtime.records.list_executions(parent=record["id"], newest_first=False, limit=100)


def task_names(runtime, record: dict) -> list[str]:
    return [t["task_name"] for t in tasks(runtime, record)]


def output(record: dict) -> dict:
    assert record["status"] == "succeeded", json.dumps(record.get("result"), default=str)[:3000]
    return record["result"]["output"]


def pid(world: World, name: str) -> int:
    return world.sv.wait_running(name)["pid"]


def silence_states(world: World, incident_id: str) -> list[str]:
    return [s["status"]["state"] for s in requests.get(world.am.url + "/api/v2/silences", timeout=5).json()
            if incident_id in s["comment"]]


def slack_texts(world: World, incident_id: str) -> list[str]:
    return [json.dumps(c["body"]) for c in world.slack.calls("POST", "chat.postMessage") if incident_id in json.dumps(c["body"])]


def pd_events(world: World, fingerprint: str) -> list[dict]:
    return [c["body"] for c in world.pd.calls("POST", "/v2/enqueue") if c["body"].get("dedup_key") == fingerprint]


def test_success_restart_verified_learned_resolved(world, runtime):
    before = pid(world, "victim-ok")
    (world.tmp / "victim-ok.state").write_text("0.2")     # the restart will fix it
    am_alert = fire(world, "victim-ok")
    record = remediate(runtime, am_alert)
    out = output(record)
    assert out["outcome"] == "resolved", out
    names = task_names(runtime, record)
    assert names[:9] == ["record_incident", "get_mode", "gather_context", "diagnose", "precheck", "silence", "act", "verify",
                         "expire_silence"]
    assert sorted(names[9:]) == ["learn_success", "notify_resolved"]   # side by side
    assert [(a["action"], a["target"], a["outcome"]) for a in out["attempts"]] == [("restart", "victim-ok", "done")]
    assert pid(world, "victim-ok") != before
    incident_id = out["incident"]["id"]
    assert silence_states(world, incident_id) == ["expired"]
    assert [e["event_action"] for e in pd_events(world, am_alert["fingerprint"])] == ["resolve"]
    assert "Aegis resolved" in slack_texts(world, incident_id)[0]
    act = next(t for t in tasks(runtime, record) if t["task_name"] == "act")
    assert act["action"] == "aegis.restart" and act["parameters"]["dry_run"] is False

    # The incident at 3 a.m.: its state, MTTR and timeline, from the pack CLI.
    env = {**os.environ, "AEGIS_HOME": str(runtime.settings.home), "AEGIS_VIRTUALENVS": str(VIRTUALENVS),
           "AEGIS_PACKS_DIR": str(REPO / "packs")}
    shown = subprocess.run([sys.executable, "-m", "st2lite.cli", "incident", "show", incident_id], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert f"{incident_id}  HighMemoryUsage  [RESOLVED]  MTTR" in shown.stdout
    for line in ("investigating", "identified", "restart victim-ok: done", "verification: healthy", "resolved"):
        assert line in shown.stdout, shown.stdout
    listed = subprocess.run([sys.executable, "-m", "st2lite.cli", "incident", "list", "--json"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    row = next(r for r in json.loads(listed.stdout) if r["id"] == incident_id)
    assert row["state"] == "resolved" and row["mttr_seconds"] > 0

    metrics = runtime.metrics.exposition().decode()
    assert 'aegis_remediation_actions_total{action="restart",result="done"}' in metrics
    assert 'aegis_incidents_total{outcome="resolved"}' in metrics
    assert "aegis_time_to_resolve_seconds_count" in metrics and "aegis_time_to_diagnose_seconds_count" in metrics


def test_advisory_dry_runs_and_notifies_exactly_what_it_would_do(world, runtime):
    runtime.store.set("aegis.mode", "advisory")
    before = pid(world, "victim-advise")
    am_alert = fire(world, "victim-advise")
    out = output(remediate(runtime, am_alert))
    assert out["outcome"] == "advised" and out["mode"] == "advisory"
    assert out["attempts"][0]["outcome"] == "dry_run"
    assert out["attempts"][0]["plan"]["commands"] == ["supervisor.stopProcess('victim-advise')", "supervisor.startProcess('victim-advise')"]
    assert pid(world, "victim-advise") == before
    text = slack_texts(world, out["incident"]["id"])[0]
    assert "Aegis proposes" in text and "supervisor.stopProcess('victim-advise')" in text
    assert silence_states(world, out["incident"]["id"]) == []


def test_verify_failure_then_one_more_try_then_escalation(world, runtime):
    before = pid(world, "victim-stuck")        # its state file stays 0.95: restarting does not help
    am_alert = fire(world, "victim-stuck")
    record = remediate(runtime, am_alert)
    out = output(record)
    assert out["outcome"] == "escalated", out
    names = task_names(runtime, record)
    assert names[:12] == ["record_incident", "get_mode", "gather_context", "diagnose", "precheck", "silence", "act", "verify",
                          "unsilence_failed", "learn_failure", "diagnose", names[11]]
    assert names[-1] == "escalate"
    assert names.count("act") <= 2 and len(out["attempts"]) <= 2
    assert out["attempts"][0]["outcome"] == "done" and pid(world, "victim-stuck") != before
    # The failed restart was learned: the second diagnosis does not propose it again.
    assert out["diagnosis"]["action"] != "restart" or out["attempts"][-1]["outcome"] == "refused"
    incident_id = out["incident"]["id"]
    assert set(silence_states(world, incident_id)) == {"expired"}
    assert [e["event_action"] for e in pd_events(world, am_alert["fingerprint"])] == ["trigger"]
    report = pd_events(world, am_alert["fingerprint"])[0]["payload"]["custom_details"]["report"]
    assert "restart victim-stuck: done (not healthy for 2 polls in a row within 8s)" in report
    assert "Timeline:" in report and "verification: not healthy" in report


def test_monitor_switched_mid_workflow_stops_the_action(world, runtime):
    before = pid(world, "victim-monitor")
    am_alert = fire(world, "victim-monitor")
    # The mode flips after the pre-check passed, while the silence is being created.
    world.proxy.hooks[("POST", "/api/v2/silences")] = lambda: runtime.store.set("aegis.mode", "monitor")
    record = remediate(runtime, am_alert)
    out = output(record)
    assert out["mode"] == "auto" and out["outcome"] == "escalated"
    assert out["attempts"][0]["outcome"] == "refused"
    assert "mode is monitor (datastore)" in out["attempts"][0]["reason"]
    assert pid(world, "victim-monitor") == before
    assert task_names(runtime, record)[-3:] == ["act", "unsilence_refused", "escalate"]
    assert silence_states(world, out["incident"]["id"]) == ["expired"]


def test_monitor_from_the_start_only_escalates(world, runtime):
    runtime.store.set("aegis.mode", "monitor")
    am_alert = fire(world, "victim-crash")
    record = remediate(runtime, am_alert)
    out = output(record)
    assert out["outcome"] == "escalated" and out["attempts"] == []
    assert "mode monitor" in out["note"]
    assert "act" not in task_names(runtime, record)


def test_alert_resolved_before_the_precheck(world, runtime):
    before = pid(world, "victim-gone")
    am_alert = fire(world, "victim-gone")
    ends = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")   # after startsAt, not in the future
    world.am.post_alerts([{"labels": am_alert["labels"], "startsAt": am_alert["startsAt"], "endsAt": ends}])
    record = remediate(runtime, am_alert)
    out = output(record)
    assert out["outcome"] == "resolved_before_action"
    assert task_names(runtime, record)[-2:] == ["precheck", "notify_self_resolved"]
    assert pid(world, "victim-gone") == before


def _seed_guards(runtime, incident_id: str, entries: list[tuple[str, str]]) -> None:
    from safety import Guards

    guards = Guards(RuntimeDatastore(runtime.store), {})
    for action, target in entries:
        guards.record(incident_id, action, target)


def test_loop_guard(world, runtime):
    from incidents import incident_id

    am_alert = fire(world, "victim-loop")
    inc = incident_id(am_alert["fingerprint"], am_alert["startsAt"])
    _seed_guards(runtime, inc, [("restart", "elsewhere-1"), ("scale_up", "elsewhere-2")])
    before = pid(world, "victim-loop")
    out = output(remediate(runtime, am_alert))
    assert out["outcome"] == "escalated"
    assert out["note"] == "not acting"
    assert out["refusal"]["reason"].startswith("loop guard: incident " + inc)
    assert pid(world, "victim-loop") == before


def test_rate_limit(world, runtime):
    _seed_guards(runtime, "inc-earlier", [("scale_up", "victim-rate"), ("rollback", "victim-rate"), ("cleanup_disk", "victim-rate")])
    before = pid(world, "victim-rate")
    out = output(remediate(runtime, fire(world, "victim-rate")))
    assert out["outcome"] == "escalated"
    assert "rate limit: 3 actions on victim-rate in the last hour" in out["refusal"]["reason"]
    report = pd_events(world, out["incident"]["fingerprint"])[0]["payload"]["custom_details"]["report"]
    assert "Note: not acting: rate limit: 3 actions on victim-rate" in report
    assert pid(world, "victim-rate") == before


def test_alert_text_with_template_syntax_stays_data(world, runtime, tmp_path):
    canary = tmp_path / "pwned"
    evil = {"summary": "victim-template memory leak {{ 7*7 }} <% 6*7 %>",
            "description": "{{ lipsum.__globals__.os.popen('touch " + str(canary) + "').read() }}"}
    (world.tmp / "victim-template.state").write_text("0.2")
    am_alert = fire(world, "victim-template")
    out = output(remediate(runtime, am_alert, annotations=evil))
    assert out["incident"]["annotations"] == evil
    assert not canary.exists()
    text = " ".join(slack_texts(world, out["incident"]["id"]))
    assert "{{ 7*7 }} &lt;% 6*7 %&gt;" in text


def _ask_approval(world, runtime, cache: str) -> tuple[str, dict, RedisCli]:
    r = RedisCli(world.redis.port)
    r.set(f"{cache}:a", "1"), r.set(f"{cache}:b", "2"), r.set(f"session:{cache}", "keep")
    am_alert = fire(world, cache, alertname="RedisOutOfMemory", summary=CACHE_SUMMARY)
    record = remediate(runtime, am_alert, wait=False)
    paused = runtime.wait(record["id"], timeout=240)
    assert paused["status"] == "paused", json.dumps(paused.get("result"), default=str)[:2000]
    inquiry = next(q for q in runtime.inquiries.list() if q["parent"] == paused["id"])
    assert inquiry["result"]["route"] == "aegis" and inquiry["result"]["ttl"] == 30
    assert r.exists(f"{cache}:a") == 1                         # nothing cleared before the answer
    return paused["id"], inquiry, r


def _finished(runtime, ex_id: str) -> dict:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        record = runtime.records.get_execution(ex_id)
        if record["status"] in ("succeeded", "failed"):
            return record
        time.sleep(0.1)
    raise AssertionError("the workflow did not finish")


def test_caution_action_runs_after_approval(world, runtime):
    ex_id, inquiry, r = _ask_approval(world, runtime, "cache-yes")
    runtime.inquiries.respond(inquiry["id"], {"approved": True}, user="oncall")
    out = output(_finished(runtime, ex_id))
    assert out["diagnosis"]["action"] == "clear_cache" and out["diagnosis"]["safety"] == "caution"
    assert out["outcome"] == "resolved", out
    assert (r.exists("cache-yes:a"), r.exists("cache-yes:b"), r.get("session:cache-yes")) == (0, 0, b"keep")
    approval = [t for t in slack_texts(world, out["incident"]["id"]) if "Aegis asks for approval" in t]
    assert approval and "SCAN MATCH cache-yes:* + UNLINK (2 keys)" in approval[0]


def test_caution_action_declined(world, runtime):
    ex_id, inquiry, r = _ask_approval(world, runtime, "cache-no")
    runtime.inquiries.respond(inquiry["id"], {"approved": False, "reason": "cold cache would hurt the DB"}, user="oncall")
    out = output(_finished(runtime, ex_id))
    assert out["outcome"] == "declined"
    assert out["note"] == "a human declined the action"
    assert out["refusal"] == {"approved": False, "reason": "cold cache would hurt the DB"}
    assert "a human declined the action: cold cache would hurt the DB" in " ".join(slack_texts(world, out["incident"]["id"]))
    assert r.exists("cache-no:a") == 1
    assert pd_events(world, out["incident"]["fingerprint"]) == []


def test_caution_action_unanswered_escalates(world, runtime):
    ex_id, inquiry, r = _ask_approval(world, runtime, "cache-late")
    assert runtime.inquiries.expire(now=time.time() + 31 * 60 + 1) == [inquiry["id"]]
    out = output(_finished(runtime, ex_id))
    assert out["outcome"] == "escalated" and out["note"] == "no approval within 30 minutes"
    assert r.exists("cache-late:a") == 1
    assert [e["event_action"] for e in pd_events(world, out["incident"]["fingerprint"])] == ["trigger"]


def test_a_target_label_holding_an_expression_is_not_rewritten(world, runtime):
    """orquesta evaluates a string an expression returns once more: the workflow passes the
    decision object, so "<% 'victim-bystander' %>" stays that literal name and names no process."""
    before = pid(world, "victim-bystander")
    am_alert = fire(world, "<% 'victim-bystander' %>", port_of="victim-bystander")
    out = output(remediate(runtime, am_alert))
    assert pid(world, "victim-bystander") == before
    assert out["diagnosis"]["target"] == "<% 'victim-bystander' %>"
    assert out["outcome"] == "escalated"
    assert all(a.get("target") == "<% 'victim-bystander' %>" for a in out["attempts"])
