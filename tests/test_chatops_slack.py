"""Approve from the Slack message: the pack's interactivity sensor, with requests signed as Slack signs them.

The runtime runs the aegis pack (webhook and Slack interactivity sensors) and a remediation
that waits on ``core.ask``; an alert posted to the webhook sensor becomes an incident whose
workflow waits, and the approval request (with Approve/Deny buttons) is posted to a Slack
stand-in that also records ``chat.update``. Clicks are POSTed to the sensor as Slack does:
a form with a JSON ``payload``, ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature``.
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


@pytest.fixture
def env(tmp_path, make_runtime):
    chat = ChatOpsEnv(tmp_path, make_runtime, interactivity=True)
    yield chat
    chat.close()


def click(env: ChatOpsEnv, inquiry_id: str, incident_id: str, action: str = "aegis_approve", user_id: str = "U0ALICE01",
          username: str = "alice", secret: str = SIGNING_SECRET, timestamp: int | None = None,
          message_ts: str | None = None) -> requests.Response:  # fmt: skip
    request = env.approval_request(inquiry_id)
    payload = {
        "type": "block_actions", "user": {"id": user_id, "username": username, "name": username, "team_id": "T0001"},
        "api_app_id": "A0001", "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": message_ts or request["ts"], "channel_id": request["channel"]},
        "channel": {"id": request["channel"], "name": "incidents"}, "response_url": env.slack.url + "/response_url",
        "actions": [{"type": "button", "action_id": action, "block_id": f"aegis_approval_{inquiry_id}",
                     "value": f"{inquiry_id}|{incident_id}", "action_ts": str(time.time())}],
    }  # fmt: skip
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = "v0=" + hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}
    return requests.post(env.interactivity_url, data=body, headers=headers, timeout=30)


def updates(env: ChatOpsEnv) -> list[dict]:
    return [r["body"] for r in env.slack.calls("POST", r"/api/chat\.update$")]


def test_a_valid_click_resumes_the_workflow_and_updates_the_message(env: ChatOpsEnv) -> None:
    inc = env.post_alert(0)
    inquiry = env.wait_inquiry(inc)
    request = env.approval_request(inquiry["id"])
    assert request["state"] == "pending" and request["channel"] == SLACK_CHANNEL and request["ts"]
    posted = [r["body"] for r in env.slack.calls("POST", r"/api/chat\.postMessage$")]
    assert len(posted) == 1
    buttons = [b for b in posted[0]["blocks"] if b["type"] == "actions"][0]["elements"]
    assert {b["action_id"]: b["value"] for b in buttons} == {"aegis_approve": f"{inquiry['id']}|{inc}",
                                                             "aegis_deny": f"{inquiry['id']}|{inc}"}  # fmt: skip

    response = click(env, inquiry["id"], inc)
    assert response.status_code == 200 and response.text == "approved", response.text

    workflow = env.wait_workflow(inc)
    assert workflow["status"] == "succeeded", workflow
    tasks = env.tasks(workflow["id"])
    assert tasks["approval"]["result"]["response"] == {"approved": True, "approver": "alice"}
    assert tasks["act"]["status"] == "succeeded" and "escalate" not in tasks
    [update] = updates(env)
    assert update["channel"] == SLACK_CHANNEL and update["ts"] == request["ts"]
    text = json.dumps(update["blocks"])
    assert "Approved" in text and "alice" in text and "aegis_approve" not in text  # who and when; no buttons left
    assert env.approval_request(inquiry["id"])["state"] == "approved"
    assert any("approved by alice (U0ALICE01) via Slack button" in e["event"] for e in env.timeline(inc))
    env.assert_only_the_approval_flow_ran()


def test_forged_replayed_second_and_unauthorized_clicks_change_nothing(env: ChatOpsEnv) -> None:
    inc = env.post_alert(1)
    inquiry = env.wait_inquiry(inc)

    def unchanged() -> None:
        assert env.runtime.records.get_execution(inquiry["id"])["status"] == "pending"
        assert env.approval_request(inquiry["id"])["state"] == "pending"
        assert updates(env) == []

    # Forged: signed with another secret.
    forged = click(env, inquiry["id"], inc, secret="not-the-signing-secret")
    assert forged.status_code == 401 and "bad signature" in forged.text
    unchanged()
    # Replayed: a correctly signed request whose timestamp is older than 5 minutes.
    replay = click(env, inquiry["id"], inc, timestamp=int(time.time()) - 301)
    assert replay.status_code == 401 and "replay" in replay.text
    unchanged()
    audited = [e["event"] for e in env.audit()]
    assert len(audited) == 2 and audited[0] == "slack request refused: bad signature", audited
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

    # The approver denies: the workflow escalates.
    deny = click(env, inquiry["id"], inc, action="aegis_deny")
    assert deny.status_code == 200 and deny.text == "denied"
    workflow = env.wait_workflow(inc)
    tasks = env.tasks(workflow["id"])
    assert tasks["approval"]["result"]["response"]["approved"] is False
    assert tasks["escalate"]["status"] == "succeeded" and "act" not in tasks
    assert len(updates(env)) == 1
    # A second click (approve after the deny) changes nothing: no answer, no new update.
    second = click(env, inquiry["id"], inc)
    assert second.status_code == 200 and second.text == "already decided"
    assert env.runtime.records.get_execution(inquiry["id"])["result"]["response"]["approved"] is False
    assert len(updates(env)) == 1
    assert any("ignored: already denied by alice" in e["event"] for e in env.timeline(inc))


def test_a_click_on_an_expired_inquiry_changes_nothing_and_the_buttons_go(env: ChatOpsEnv) -> None:
    inc = env.post_alert(0)
    inquiry = env.wait_inquiry(inc)
    # The inquiry's ttl (60 minutes) passes: st2's garbage collector times it out.
    assert env.runtime.inquiries.expire(now=time.time() + 61 * 60) == [inquiry["id"]]
    workflow = env.wait_workflow(inc)
    assert "act" not in env.tasks(workflow["id"])
    stale = click(env, inquiry["id"], inc)
    assert stale.status_code == 200 and stale.text == "stale"
    assert env.runtime.records.get_execution(inquiry["id"])["status"] == "timeout"
    [update] = updates(env)
    assert "Expired" in json.dumps(update["blocks"]) and "aegis_approve" not in json.dumps(update["blocks"])
    wait_for(lambda: any("changed nothing" in e["event"] for e in env.timeline(inc)), what="the stale click on record")
