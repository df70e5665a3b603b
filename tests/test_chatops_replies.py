"""What the channel shows for every aegis command: the pack's aliases run by the runtime (st2's
alias execution: match, immutable parameters from the context, the action, ``result.format``).

Incidents are stored as the sensor stores them, with alert text that tries to act on Slack
(``<!channel>``, a link, ``&``): every reply shows it escaped. Silences go to a real
Alertmanager (Debian ``prometheus-alertmanager``) on loopback.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
import requests
import yaml
from conftest import REPO, free_port

from st2lite.aliases import AliasExecutor

sys.path.insert(0, str(REPO / "packs" / "aegis" / "tests"))
from servers.alertmanager import Alertmanager, available  # noqa: E402

INC = "inc-00000000000000a1"
CLOSED = "inc-00000000000000b2"
HOSTILE = "<!channel> disk & <https://evil.example|click>"
ESCAPED = "&lt;!channel&gt; disk &amp; &lt;https://evil.example|click&gt;"


def _incident(inc_id: str, status: str, opened_at: str) -> dict:
    return {
        "id": inc_id, "fingerprint": inc_id[-8:] + "f00d", "status": status, "alertname": "DiskFull",
        "labels": {"alertname": "DiskFull", "service": "db", "instance": "db-1:9100"},
        "annotations": {"summary": HOSTILE, "description": "Disk at 97% <b>"}, "starts_at": "2026-11-30T02:50:00Z",
        "ends_at": None, "opened_at": opened_at, "closed_at": None, "close_reason": None if status == "open" else "resolved",
        "receiver": "aegis", "group_key": "{}:{}", "external_url": "", "generator_url": "",
    }  # fmt: skip


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    if available() is not None:
        pytest.skip(str(available()))
    with Alertmanager(tmp_path_factory.mktemp("am"), "http://127.0.0.1:9/unused") as am:
        yield am


@pytest.fixture
def chat(make_runtime, tmp_path, alertmanager):
    home = tmp_path / "home"
    (home / "configs").mkdir(parents=True)
    config = {
        "mode": "advisory", "chatops": {"approvers": ["alice"], "st2_api_url": f"http://127.0.0.1:{free_port()}/v1"},
        "alertmanager_api": {"url": alertmanager.url},
        "knowledge": {"index_dir": str(tmp_path / "index"), "service_port": free_port()},
    }  # fmt: skip
    (home / "configs" / "aegis.yaml").write_text(yaml.safe_dump(config))
    runtime = make_runtime(REPO / "packs" / "aegis", home=home)
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(time.time() - 600))
    for inc in (_incident(INC, "open", now), _incident(CLOSED, "closed", now)):
        runtime.store.set(f"aegis.incident.{inc['id']}", json.dumps(inc))
    runtime.store.set(f"aegis.incident_open.{INC[-8:]}f00d", INC)
    runtime.store.set(f"aegis.timeline.{INC}.{int(time.time() * 1e9):020d}-0001",
                      json.dumps({"at": now[:19] + "Z", "ts": time.time() - 600, "state": "escalated", "event": "escalation: " + HOSTILE}))  # fmt: skip
    runtime.store.set(f"aegis.safety.incident.{INC}", json.dumps(["restart"]))
    executor = AliasExecutor(runtime)

    def say(command: str, user: str = "alice") -> dict:
        return executor.execute(command, user=user, channel="#ops", timeout=300)

    return runtime, say


def test_status_incidents_and_incident(chat) -> None:
    runtime, say = chat
    status = say("aegis status")
    assert status["alias"] == "aegis.status" and status["ack"] == "Checking Aegis…"
    lines = status["result"].splitlines()
    assert lines[0] == "*Aegis is in advisory mode* (from config)"
    assert lines[1:3] == ["Open incidents: *1*", "Automated actions, incidents of the last 24 h: *1*"]
    assert lines[3].startswith(f"Last escalation: `{INC}` 10m ago — escalation: {ESCAPED}")

    open_ = say("aegis incidents")
    assert open_["ack"] == "Listing open incidents…"
    assert open_["result"].splitlines()[0] == "*1 open incident*"
    assert f"`{INC}` *escalated* DiskFull (db) — {ESCAPED} · opened 10m ago" in open_["result"]
    every = say("aegis incidents all")["result"]
    assert every.startswith("*2 incidents*") and CLOSED in every

    one = say(f"aegis incident {INC}")
    assert one["ack"] == f"Fetching `{INC}`…"
    assert "> Disk at 97% &lt;b&gt;" in one["result"] and f"→ *escalated* escalation: {ESCAPED}" in one["result"]
    missing = say("aegis incident inc-ffffffffffffffff")
    assert missing["status"] == "failed" and missing["result"].startswith("No such incident")
    assert "<" not in say("aegis incident <!here>")["result"]  # the id itself is escaped too


def test_approve_deny_without_a_pending_approval_and_refusals(chat) -> None:
    runtime, say = chat
    refused = say(f"aegis approve {INC}", user="mallory")
    assert refused["status"] == "failed"
    assert refused["result"] == ":no_entry: mallory, you may not approve remediations. Ask an on-call approver (config chatops.approvers)."
    timeline = [json.loads(p.value)["event"] for p in runtime.store.list(prefix=f"aegis.timeline.{INC}.")]
    assert "approve refused: mallory is not an approver (chat #ops)" in timeline
    deny = say(f"aegis deny {INC} not now", user="alice")
    assert deny["ack"] == f"Denying `{INC}`…"
    # No st2 API answers at the configured URL: a clear failure, nothing decided.
    assert deny["status"] == "failed" and deny["result"].startswith(f"Could not deny `{INC}`: st2 API GET /inquiries")
    execution = runtime.records.get_execution(deny["execution_id"])
    assert execution["parameters"] == {"incident_id": INC, "reason": "not now", "decision": "deny", "chat_user": "alice", "channel": "#ops"}


def test_mode_pause_resume(chat) -> None:
    runtime, say = chat
    assert say("aegis pause drill", user="bob")["result"].startswith(":no_entry: bob, you may not change Aegis's mode")
    assert runtime.store.get("aegis.mode") is None
    paused = say("aegis pause drill")
    assert paused["ack"] == "Pausing Aegis (monitor mode)…"
    assert paused["result"] == "Aegis mode is now *monitor* (was advisory, from datastore), set by alice — drill"
    assert say("aegis mode")["result"] == "Aegis mode: *monitor* (from datastore)."
    resumed = say("aegis resume drill over")
    assert resumed["result"] == "Aegis mode is now *advisory* (was monitor, from config), set by alice — drill over"
    assert say("aegis mode auto")["result"].startswith("Aegis mode is now *auto*")
    audit = [json.loads(p.value)["event"] for p in runtime.store.list(prefix="aegis.chatops.audit.")]
    assert audit[0] == "mode monitor refused: bob is not an approver" and "mode advisory -> monitor by alice" in audit


def test_silence_and_unsilence_on_alertmanager(chat, alertmanager) -> None:
    runtime, say = chat
    assert say(f"aegis silence {INC} 2h", user="mallory")["result"].startswith(":no_entry: mallory, you may not silence alerts")
    silenced = say(f"aegis silence {INC} 2h")
    assert silenced["status"] == "succeeded", silenced
    assert silenced["result"].startswith(f":mute: Silenced `{INC}` until ")
    silence_id = runtime.store.get(f"aegis.chat_silence.{INC}")
    silence = requests.get(f"{alertmanager.url}/api/v2/silence/{silence_id}", timeout=10).json()
    assert silence["status"]["state"] == "active" and "silenced from chat by alice" in silence["comment"]
    assert {m["name"]: m["value"] for m in silence["matchers"]} == {"alertname": "DiskFull", "service": "db", "instance": "db-1:9100"}
    assert say(f"aegis silence {INC} forever")["result"] == f"Could not silence `{INC}`: 'forever' is not a duration (say 30m, 2h or 1d)"
    unsilenced = say(f"aegis unsilence {INC}")
    assert unsilenced["result"] == f":loud_sound: Unsilenced `{INC}` (silence `{silence_id}` expired)."
    assert requests.get(f"{alertmanager.url}/api/v2/silence/{silence_id}", timeout=10).json()["status"]["state"] == "expired"
    assert say(f"aegis unsilence {INC}")["result"] == f"No chat silence on `{INC}`."


def test_help_and_unknown_commands(chat) -> None:
    _runtime, say = chat
    listing = say("aegis")
    assert listing["alias"] == "aegis.help" and listing["ack"] is None
    # In Slack mrkdwn even code needs &lt; &gt; (Slack shows them as < >).
    assert "`aegis approve &lt;incident&gt;`" in listing["result"]
    assert "`aegis silence &lt;incident&gt; [duration, e.g. 2h]`" in listing["result"]
    typo = say("aegis incidnets")["result"]
    assert typo.startswith("I don't know “aegis incidnets”. Did you mean:") and "• `aegis incidents [open|all]`" in typo
    assert say("aegis approve")["result"].splitlines()[1] == "• `aegis approve &lt;incident&gt;`"
    assert "Try `!st2help aegis`" in say("aegis <!channel> zzz qqq")["result"]
    assert "&lt;!channel&gt;" in say("aegis <!channel> zzz qqq")["result"]


def test_runbook_and_dry_run_diagnosis(chat) -> None:
    runtime, say = chat
    runbook = say("aegis runbook disk full on the database host")
    assert runbook["status"] == "succeeded", runbook
    assert runbook["result"].startswith("*Closest to* “disk full on the database host”")
    assert "• runbook *" in runbook["result"]
    diagnosis = say(f"aegis diagnose {INC}")
    assert diagnosis["status"] == "succeeded", diagnosis
    assert diagnosis["ack"] == f"Diagnosing `{INC}` (dry run)…"
    assert diagnosis["result"].startswith(f"*Dry run — nothing was done.* Diagnosis of `{INC}` (DiskFull)")
    assert "Would do: *" in diagnosis["result"]
    assert [e for e in runtime.records.list_executions(limit=100) if e["action"] not in ("aegis.chat_diagnose", "aegis.chat_runbook")] == []
    closed = say(f"aegis diagnose {CLOSED}")
    assert closed["status"] == "failed" and "is closed" in closed["result"]


# Every alias of the pack, each command once with st2's alias semantics (the server-side
# match over all aliases, extracted parameters with defaults, immutable parameters from the
# context, the action, the rendered ``result``): alias, the action's parameters, the reply's
# start. runbook and diagnose are rendered in test_runbook_and_dry_run_diagnosis (they load
# the embedding model).
EVERY_ALIAS = [
    ("aegis status", "aegis.status", {}, "*Aegis is in advisory mode* (from config)"),
    ("aegis incidents", "aegis.incidents", {"which": "open"}, "*1 open incident*"),
    (f"aegis incident {INC}", "aegis.incident", {"incident_id": INC}, f"`{INC}` *escalated* DiskFull (db) — {ESCAPED}"),
    (f"aegis approve {INC}", "aegis.approve", {"incident_id": INC, "decision": "approve", "chat_user": "alice", "channel": "#ops"},
     f"Could not approve `{INC}`: st2 API GET /inquiries"),
    (f"aegis deny {INC}", "aegis.deny", {"incident_id": INC, "reason": "", "decision": "deny", "chat_user": "alice", "channel": "#ops"},
     f"Could not deny `{INC}`: st2 API GET /inquiries"),
    ("aegis mode", "aegis.get_mode", {}, "Aegis mode: *advisory* (from config)."),
    ("aegis mode auto tested", "aegis.set_mode", {"mode": "auto", "reason": "tested", "chat_user": "alice", "channel": "#ops"},
     "Aegis mode is now *auto* (was advisory, from datastore), set by alice — tested"),
    ("aegis pause", "aegis.pause", {"reason": "", "mode": "monitor", "chat_user": "alice", "channel": "#ops"},
     "Aegis mode is now *monitor* (was auto, from datastore), set by alice"),
    ("aegis resume", "aegis.resume", {"reason": "", "mode": "clear", "chat_user": "alice", "channel": "#ops"},
     "Aegis mode is now *advisory* (was monitor, from config), set by alice"),
    (f"aegis silence {INC}", "aegis.silence", {"incident_id": INC, "duration": "1h", "operation": "create", "chat_user": "alice",
                                               "channel": "#ops"}, f":mute: Silenced `{INC}` until "),
    (f"aegis unsilence {INC}", "aegis.unsilence", {"incident_id": INC, "operation": "expire", "chat_user": "alice", "channel": "#ops"},
     f":loud_sound: Unsilenced `{INC}` (silence `"),
    ("aegis statsu", "aegis.help", {"text": "statsu"}, "I don't know “aegis statsu”. Did you mean:"),
]  # fmt: skip


def test_every_alias_matches_gets_its_parameters_and_renders_its_reply(chat) -> None:
    runtime, say = chat
    aliases = {f"aegis.{path.stem}" for path in (REPO / "packs" / "aegis" / "aliases").glob("*.yaml")}
    assert {alias for _, alias, _, _ in EVERY_ALIAS} | {"aegis.runbook", "aegis.diagnose"} == aliases
    for command, alias, parameters, reply in EVERY_ALIAS:
        said = say(command)
        assert said["alias"] == alias, (command, said)
        assert runtime.records.get_execution(said["execution_id"])["parameters"] == parameters, command
        assert said["result"].startswith(reply), (command, said["result"])
        assert ":warning: Aegis could not answer" not in said["result"], command
