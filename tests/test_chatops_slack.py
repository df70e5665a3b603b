"""Approve from the Slack message, on the real remediation path.

An alert on a Redis cache (a ``caution``-class runbook) in mode ``auto`` makes the real
``aegis.remediate`` dry-run ``clear_cache`` and pause on ``core.ask``; ``aegis.request_approval``
posts ONE message to the Slack stand-in (slack_sdk's production path, pointed at it by
``slack.base_url``): the plan and the Approve/Deny buttons. Clicks are POSTed to the pack's
interactivity sensor as Slack sends them: a form with a JSON ``payload``, signed with
``X-Slack-Request-Timestamp`` and ``X-Slack-Signature``. The workflow resumes through st2's
inquiry API and acts on the real Redis (or escalates), and ``chat.update`` edits that same
message to say who decided and when. Alertmanager, Redis and Prometheus are real servers
(``remediation_world``); the stand-in refuses what Slack would refuse.

No test here talks to the real Slack (there is no internet on the test machines).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import urlencode

import pytest
import requests
from chatops_env import SIGNING_SECRET, SLACK_CHANNEL, ChatOpsEnv
from conftest import wait_for
from remediation_world import World, missing

from st2lite.aliases import AliasExecutor

if missing():
    pytest.skip(missing(), allow_module_level=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with World(tmp_path_factory.mktemp("world")) as w:
        yield w


@pytest.fixture
def env(tmp_path, make_runtime, world):
    chat = ChatOpsEnv(tmp_path, make_runtime, world, interactivity=True)
    yield chat
    chat.close()


def click(env: ChatOpsEnv, inquiry_id: str, incident_id: str, action: str = "aegis_approve", user_id: str = "U0ALICE01",
          username: str = "alice", secret: str = SIGNING_SECRET, timestamp: int | None = None,
          message_ts: str | None = None, body: bytes | None = None) -> requests.Response:  # fmt: skip
    """A button click as Slack POSTs it to the app's Request URL."""
    request = env.approval_request(inquiry_id)
    payload = {
        "type": "block_actions", "user": {"id": user_id, "username": username, "name": username, "team_id": "T0001"},
        "api_app_id": "A0001", "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": message_ts or request["ts"], "channel_id": request["channel"]},
        "channel": {"id": request["channel"], "name": "incidents"}, "response_url": env.slack.url + "/response_url",
        "actions": [{"type": "button", "action_id": action, "block_id": f"aegis_approval_{inquiry_id}",
                     "value": f"{inquiry_id}|{incident_id}", "action_ts": str(time.time())}],
    }  # fmt: skip
    body = body if body is not None else urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
    return requests.post(env.interactivity_url, data=body, headers=headers, timeout=30)


def approval_posts(env: ChatOpsEnv, inc: str) -> list[dict]:
    return [b for b in env.slack_calls("chat.postMessage", inc) if "Aegis asks for approval" in json.dumps(b)]


def buttons(blocks: list[dict]) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]}


def silences(env: ChatOpsEnv, inc: str) -> list[str]:
    return [s["status"]["state"] for s in requests.get(env.world.am.url + "/api/v2/silences", timeout=5).json() if inc in s["comment"]]


def held(env: ChatOpsEnv, inc: str) -> tuple[dict, dict]:
    """The incident's remediation, paused on its approval; the one approval message."""
    inquiry = env.wait_inquiry(inc)
    workflow = env.workflow_of(inc)
    assert workflow["status"] in ("pausing", "paused"), workflow
    tasks = env.tasks(workflow["id"])
    assert tasks["propose_for_approval"]["parameters"]["dry_run"] is True
    assert tasks["notify_approval"]["result"]["result"]["delivery"]["slack"]["status"] == "deferred"
    assert tasks["approve"]["action"] == "core.ask" and tasks["approve"]["id"] == inquiry["id"]
    assert "silence" not in tasks and "act" not in tasks
    [post] = approval_posts(env, inc)
    return inquiry, post


def test_one_message_a_valid_click_resumes_the_remediation_and_edits_that_message(env: ChatOpsEnv) -> None:
    inc = env.post_alert("cache-click")
    inquiry, post = held(env, inc)
    assert env.cache_keys("cache-click") == (1, 1, b"keep")  # nothing cleared before the answer
    request = env.approval_request(inquiry["id"])
    assert request["state"] == "pending" and (request["channel"], request["ts"]) == (SLACK_CHANNEL, env.message(request)["ts"])
    # One message: the plan (the dry run's exact commands) and the buttons bound to this inquiry.
    assert post["channel"] == SLACK_CHANNEL
    assert buttons(post["blocks"]) == {"aegis_approve": f"{inquiry['id']}|{inc}", "aegis_deny": f"{inquiry['id']}|{inc}"}
    plan = json.dumps(post["blocks"])
    assert "SCAN MATCH cache-click:* + UNLINK (2 keys)" in plan and "clear_cache" in plan and "Approve or Deny below" in plan
    # The plain-text fallback carries the plan and the chat commands.
    assert "SCAN MATCH cache-click:* + UNLINK (2 keys)" in post["text"] and f"!st2 aegis approve {inc}" in post["text"]

    response = click(env, inquiry["id"], inc)
    assert response.status_code == 200 and response.text == "approved", response.text

    workflow = env.wait_workflow(inc)
    assert workflow["status"] == "succeeded", workflow
    out = workflow["result"]["output"]
    assert out["outcome"] == "resolved", out
    assert [(a["action"], a["target"], a["outcome"]) for a in out["attempts"]] == [("clear_cache", "cache-click", "done")]
    tasks = env.tasks(workflow["id"])
    assert tasks["approve"]["result"]["response"] == {"approved": True}
    assert env.cache_keys("cache-click") == (0, 0, b"keep")  # the prefix went, nothing else
    assert silences(env, inc) == ["expired"]
    # That same message now says who decided and when; no buttons are left to click.
    [update] = env.slack_calls("chat.update", inc)
    assert (update["channel"], update["ts"]) == (request["channel"], request["ts"])
    decided = env.message(request)
    assert buttons(decided["blocks"]) == {}
    shown = json.dumps(decided["blocks"])
    assert "*Approved* by alice at 20" in shown and "SCAN MATCH cache-click:*" in shown  # who, when, and the plan stays
    assert len(approval_posts(env, inc)) == 1  # nothing else to click
    record = env.approval_request(inquiry["id"])
    assert (record["state"], record["decided_by"], record["update"]) == ("approved", "alice", "chat.update")
    assert any("approved by alice (U0ALICE01) via Slack button" in e["event"] for e in env.timeline(inc))


def test_forged_replayed_moved_unauthorized_and_second_clicks_change_nothing_deny_escalates(env: ChatOpsEnv) -> None:
    inc = env.post_alert("cache-forged")
    inquiry, _post = held(env, inc)
    request = env.approval_request(inquiry["id"])

    def unchanged() -> None:
        assert env.runtime.records.get_execution(inquiry["id"])["status"] == "pending"
        assert env.approval_request(inquiry["id"])["state"] == "pending"
        assert env.slack_calls("chat.update", inc) == []
        assert buttons(env.message(request)["blocks"])  # still clickable
        assert env.cache_keys("cache-forged") == (1, 1, b"keep")

    # Forged: signed with another secret.
    forged = click(env, inquiry["id"], inc, secret="not-the-signing-secret")
    assert forged.status_code == 401 and "bad signature" in forged.text
    unchanged()
    # Replayed: correctly signed, but older than 5 minutes.
    replay = click(env, inquiry["id"], inc, timestamp=int(time.time()) - 301)
    assert replay.status_code == 401 and "replay" in replay.text
    unchanged()
    audited = [e["event"] for e in env.audit()]
    assert audited[0] == "slack request refused: bad signature", audited
    assert audited[1].startswith("slack request refused: timestamp ") and audited[1].endswith("(replay?)"), audited
    # Unauthorized: a workspace member who is not on the approvers list.
    mallory = click(env, inquiry["id"], inc, user_id="U0MALLORY", username="mallory")
    assert mallory.status_code == 200 and mallory.text == "refused"
    unchanged()
    assert any("refused: mallory (U0MALLORY) is not an approver" in e["event"] for e in env.timeline(inc))
    ephemeral = [r["body"] for r in env.slack.calls("POST", r"/response_url$")]
    assert ephemeral and ephemeral[-1]["response_type"] == "ephemeral" and "may not" in ephemeral[-1]["text"]
    # A button that is not on the approval message (another message's ts).
    moved = click(env, inquiry["id"], inc, message_ts="1700000000.000001")
    assert moved.status_code == 200 and moved.text == "moved"
    unchanged()
    assert len(env.audit()) == 2  # the other refusals went to the incident's timeline

    # The approver denies: nothing is done, the incident goes to the humans.
    deny = click(env, inquiry["id"], inc, action="aegis_deny")
    assert deny.status_code == 200 and deny.text == "denied"
    workflow = env.wait_workflow(inc)
    out = workflow["result"]["output"]
    assert out["outcome"] == "declined" and out["note"] == "a human declined the action", out
    tasks = env.tasks(workflow["id"])
    assert tasks["approve"]["result"]["response"] == {"approved": False}
    assert "silence" not in tasks and "act" not in tasks
    assert tasks["notify_declined"]["result"]["result"]["state"] == "escalated"
    assert env.cache_keys("cache-forged") == (1, 1, b"keep")
    [update] = env.slack_calls("chat.update", inc)
    assert (update["channel"], update["ts"]) == (request["channel"], request["ts"])
    assert "*Denied* by alice at 20" in json.dumps(env.message(request)["blocks"]) and not buttons(env.message(request)["blocks"])
    # A second click (approve after the deny) changes nothing: no answer, no new update.
    second = click(env, inquiry["id"], inc)
    assert second.status_code == 200 and second.text == "already decided"
    assert env.runtime.records.get_execution(inquiry["id"])["result"]["response"] == {"approved": False}
    assert len(env.slack_calls("chat.update", inc)) == 1
    assert any("ignored: already denied by alice" in e["event"] for e in env.timeline(inc))


def test_unanswered_approval_times_out_escalates_and_the_buttons_go(env: ChatOpsEnv) -> None:
    inc = env.post_alert("cache-expire")
    inquiry, _post = held(env, inc)
    request = env.approval_request(inquiry["id"])
    # The inquiry's ttl (30 minutes) passes: st2's garbage collector times it out.
    assert env.runtime.inquiries.expire(now=time.time() + 31 * 60) == [inquiry["id"]]
    workflow = env.wait_workflow(inc)
    out = workflow["result"]["output"]
    assert out["outcome"] == "escalated" and out["note"] == "no approval within 30 minutes", out
    assert "act" not in env.tasks(workflow["id"])
    assert env.cache_keys("cache-expire") == (1, 1, b"keep")
    pages = [c["body"]["event_action"] for c in env.world.pd.calls("POST", "/v2/enqueue")
             if c["body"].get("dedup_key") == out["incident"]["fingerprint"]]  # fmt: skip
    assert pages == ["trigger"]
    # The escalation took the buttons off the request: it says why, in place.
    [update] = env.slack_calls("chat.update", inc)
    assert (update["channel"], update["ts"]) == (request["channel"], request["ts"])
    shown = json.dumps(env.message(request)["blocks"])
    assert "*Closed* at 20" in shown and "no approval within 30 minutes" in shown and not buttons(env.message(request)["blocks"])
    # A click on the stale message (a client that still shows it) changes nothing and is recorded.
    stale = click(env, inquiry["id"], inc)
    assert stale.status_code == 200 and stale.text == "already decided"
    assert env.runtime.records.get_execution(inquiry["id"])["status"] == "timeout"
    assert len(env.slack_calls("chat.update", inc)) == 1
    wait_for(lambda: any("ignored: already closed" in e["event"] for e in env.timeline(inc)), what="the stale click on record")


def test_answered_outside_slack_the_buttons_go_when_the_workflow_goes_on(env: ChatOpsEnv) -> None:
    """`st2 inquiry respond` (neither a click nor chat): the resolution notice takes the
    buttons off the request, so nobody clicks a decided approval."""
    inc = env.post_alert("cache-cli")
    inquiry, _post = held(env, inc)
    request = env.approval_request(inquiry["id"])
    env.runtime.inquiries.respond(inquiry["id"], {"approved": True}, user="oncall")
    assert env.wait_workflow(inc)["result"]["output"]["outcome"] == "resolved"
    assert env.cache_keys("cache-cli") == (0, 0, b"keep")
    [update] = env.slack_calls("chat.update", inc)
    assert (update["channel"], update["ts"]) == (request["channel"], request["ts"])
    shown = env.message(request)["blocks"]
    assert "*Closed* at 20" in json.dumps(shown) and "incident resolved" in json.dumps(shown) and not buttons(shown)
    late = click(env, inquiry["id"], inc)
    assert late.status_code == 200 and late.text == "already decided"
    assert len(env.slack_calls("chat.update", inc)) == 1


def test_approve_and_deny_from_chat_edit_the_same_message(env: ChatOpsEnv) -> None:
    """st2's alias execution (as err-stackstorm drives it): the rendered reply, and the
    message in the channel loses its buttons for the chat decision too."""
    chat = AliasExecutor(env.runtime)
    yes, no = env.post_alert("cache-chat-yes"), env.post_alert("cache-chat-no")
    for inc in (yes, no):
        held(env, inc)

    approved = chat.execute(f"aegis approve {yes}", user="alice", channel="#incidents", timeout=120)
    assert approved["ack"] == f"Approving `{yes}`…"
    assert approved["result"] == f":white_check_mark: *Approved* `{yes}` by alice — the remediation continues."
    denied = chat.execute(f"aegis deny {no} wait for the DBA", user="alice", channel="#incidents", timeout=120)
    assert denied["result"] == f":x: *Denied* `{no}` by alice — Aegis will not act; it escalates."

    assert env.wait_workflow(yes)["result"]["output"]["outcome"] == "resolved"
    assert env.cache_keys("cache-chat-yes") == (0, 0, b"keep")
    out = env.wait_workflow(no)["result"]["output"]
    assert out["outcome"] == "declined" and out["refusal"] == {"approved": False, "reason": "wait for the DBA"}
    assert env.cache_keys("cache-chat-no") == (1, 1, b"keep")
    for inc, head in ((yes, "*Approved* by alice at 20"), (no, "*Denied* by alice at 20")):
        assert len(approval_posts(env, inc)) == 1
        request = env.approval_request(env.runtime.store.get(f"aegis.approval_of.{inc}"))
        [update] = env.slack_calls("chat.update", inc)
        assert (update["channel"], update["ts"]) == (request["channel"], request["ts"])
        shown = env.message(request)["blocks"]
        assert head in json.dumps(shown) and not buttons(shown)
        assert (inc == no) == ("wait for the DBA" in json.dumps(shown))
