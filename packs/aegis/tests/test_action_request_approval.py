"""The approval message: one Slack message with the plan and the buttons, edited in place.

``aegis.notify`` (kind approval) stores the dry run's plan when ``aegis.request_approval``
will post; the message is built by ``lib/approvals.py`` and sent through slack_sdk to the
Slack stand-in, which refuses what Slack refuses. (The whole path, with the real
``aegis.remediate``, st2's API and signed clicks: tests/test_chatops_slack.py.)
"""

from __future__ import annotations

import json

import requests
from approvals import close_pending, mark_decided, post_request, request_blocks
from fixtures.alerts import alert
from incidents import IncidentStore
from notify import Notify
from servers.standins import SlackStandIn, block_kit_problems
from st2tests.base import BaseActionTestCase

DIAGNOSIS = {"action": "clear_cache", "target": "cache-a", "root_cause": "cache full", "confidence": 0.8, "safety": "caution",
             "evidence": [{"id": "redis-oom-clear-cache", "kind": "runbook", "similarity": 0.7}], "reasoning": "maxmemory"}
PLAN = [{"action": "clear_cache", "target": "cache-a", "outcome": "dry_run",
         "plan": {"commands": ["SCAN MATCH cache-a:* + UNLINK (2 keys)"]}}]  # fmt: skip
INQUIRY = {"id": "5f1e0000000000000000abcd", "ttl": 30, "schema": {}}


class ApprovalMessageTest(BaseActionTestCase):
    action_cls = Notify

    def setUp(self) -> None:
        super().setUp()
        self.slack = SlackStandIn().__enter__()
        self.addCleanup(self.slack.__exit__)
        self.ds = self.get_action_instance().action_service
        raw = alert("RedisOutOfMemory", service="cache-a", annotations={"summary": "<!here> cache full {{ 7*7 }}"})
        self.incident, _ = IncidentStore(self.ds).open_or_repeat(raw)

    def config(self, api: bool = True, buttons: bool = True) -> dict:
        config = {"slack": {"token": self.slack.token, "channel": "#incidents", "base_url": self.slack.url + "/api/"},
                  "chatops": {"interactivity": {"enabled": buttons}}}  # fmt: skip
        if api:
            config["chatops"]["st2_api_url"] = "http://127.0.0.1:9/v1"  # only read by request_approval
        return config

    def notify(self, config: dict) -> dict:
        action = self.get_action_instance(config)
        action.action_service = self.ds
        return action.run(incident_id=self.incident["id"], kind="approval", diagnosis=DIAGNOSIS, attempts=PLAN)

    def posts(self) -> list[dict]:
        return [c["body"] for c in self.slack.calls("POST", r"/api/chat\.postMessage$")]

    def test_one_message_with_the_plan_and_the_buttons(self) -> None:
        config = self.config()
        result = self.notify(config)
        self.assertEqual(result["delivery"]["slack"]["status"], "deferred")
        self.assertEqual(self.posts(), [])  # the plan waits for the inquiry
        record = post_request(config, self.ds, self.incident, INQUIRY)
        [post] = self.posts()
        self.assertEqual((record["delivery"], record["channel"], record["state"]), ("sent", "C0INCIDENTS", "pending"))
        self.assertEqual(block_kit_problems(post["blocks"]), [])
        blocks = json.dumps(post["blocks"])
        for part in ("Aegis asks for approval", "SCAN MATCH cache-a:* + UNLINK (2 keys)", "Approve or Deny below",
                     "&lt;!here&gt; cache full {{ 7*7 }}", "expires in 30 min"):
            self.assertIn(part, blocks)
        self.assertNotIn("<!here>", blocks + post["text"])
        [actions] = [b for b in post["blocks"] if b["type"] == "actions"]
        value = f"{INQUIRY['id']}|{self.incident['id']}"
        self.assertEqual([(e["action_id"], e["value"]) for e in actions["elements"]], [("aegis_approve", value), ("aegis_deny", value)])
        # The plain-text fallback: the plan and the chat commands.
        self.assertIn("SCAN MATCH cache-a:* + UNLINK (2 keys)", post["text"])
        self.assertIn(f"!st2 aegis approve {self.incident['id']}", post["text"])
        # The plan is used once: a later request without a new plan shows a short one.
        self.assertIsNone(self.ds.get_value(f"aegis.approval_plan.{self.incident['id']}", local=False))

    def test_decision_edits_the_same_message_plan_kept_buttons_gone(self) -> None:
        config = self.config()
        self.notify(config)
        record = post_request(config, self.ds, self.incident, INQUIRY)
        decided = mark_decided(config, self.ds, self.incident, INQUIRY["id"], "approved", "alice", "2026-11-30T03:12:00Z")
        self.assertEqual(decided["update"], "chat.update")
        self.assertEqual(len(self.posts()), 1)
        message = self.slack.messages[(record["channel"], record["ts"])]
        shown = json.dumps(message["blocks"])
        self.assertIn("*Approved* by alice at 2026-11-30T03:12:00Z", shown)
        self.assertIn("SCAN MATCH cache-a:*", shown)
        self.assertFalse([b for b in message["blocks"] if b["type"] == "actions"])
        self.assertEqual(message["text"], "Approved by alice at 2026-11-30T03:12:00Z")
        # Decided: a later notification leaves it alone.
        self.assertIsNone(close_pending(config, self.ds, self.incident, "2026-11-30T03:20:00Z", "resolved"))

    def test_a_pending_message_loses_its_buttons_when_the_workflow_goes_on(self) -> None:
        config = self.config()
        self.notify(config)
        record = post_request(config, self.ds, self.incident, INQUIRY)
        later = self.get_action_instance(config)  # the workflow went on: a timeout, or `st2 inquiry respond`
        later.action_service = self.ds
        later.run(incident_id=self.incident["id"], kind="declined", diagnosis=DIAGNOSIS, note="no approval within 30 minutes")
        message = self.slack.messages[(record["channel"], record["ts"])]
        self.assertIn("*Closed* at ", json.dumps(message["blocks"]))
        self.assertIn("no approval within 30 minutes", json.dumps(message["blocks"]))
        self.assertFalse([b for b in message["blocks"] if b["type"] == "actions"])
        stored = json.loads(self.ds.get_value(f"aegis.approval.{INQUIRY['id']}", local=False))
        self.assertEqual(stored["state"], "closed")

    def test_without_interactivity_no_buttons_the_chat_commands(self) -> None:
        config = self.config(buttons=False)
        self.notify(config)
        post_request(config, self.ds, self.incident, INQUIRY)
        [post] = self.posts()
        self.assertFalse([b for b in post["blocks"] if b["type"] == "actions"])
        self.assertIn("Answer in chat (approvers only)", json.dumps(post["blocks"]))

    def test_without_st2_api_notify_posts_the_plan_itself(self) -> None:
        result = self.notify(self.config(api=False))
        self.assertEqual(result["delivery"]["slack"]["status"], "sent")
        [post] = self.posts()
        self.assertFalse([b for b in post["blocks"] if b["type"] == "actions"])
        self.assertIn("SCAN MATCH cache-a:* + UNLINK (2 keys)", post["text"])
        self.assertIn(f"!st2 aegis approve {self.incident['id']}", post["text"])

    def test_every_approval_message_is_valid_block_kit(self) -> None:
        long_incident = {**self.incident, "annotations": {"summary": "x" * 5000}, "alertname": "A" * 400}
        for blocks in (request_blocks(long_incident, "i" * 300, 30), request_blocks(self.incident, INQUIRY["id"], None, buttons=False)):
            self.assertEqual(block_kit_problems(blocks), [])


class SlackStandInTest(BaseActionTestCase):
    """The stand-in refuses what Slack refuses, so a malformed call fails its test."""

    action_cls = Notify

    def setUp(self) -> None:
        super().setUp()
        self.slack = SlackStandIn().__enter__()
        self.addCleanup(self.slack.__exit__)

    def call(self, method: str, body: dict, token: str | None = "xoxb-test") -> dict:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(f"{self.slack.url}/api/{method}", json=body, headers=headers, timeout=10).json()

    def test_web_api_checks(self) -> None:
        ok = self.call("chat.postMessage", {"channel": "#incidents", "text": "hi"})
        self.assertEqual((ok["ok"], ok["channel"]), (True, "C0INCIDENTS"))
        self.assertEqual(self.call("chat.postMessage", {"channel": "#incidents", "text": "hi"}, token=None)["error"], "not_authed")
        self.assertEqual(self.call("chat.postMessage", {"channel": "#incidents", "text": "hi"}, token="xoxb-no")["error"], "invalid_auth")
        self.assertEqual(self.call("chat.postMessage", {"channel": "#nowhere", "text": "hi"})["error"], "channel_not_found")
        self.assertEqual(self.call("chat.postMessage", {"channel": "#incidents"})["error"], "no_text")
        bad = [{"type": "actions", "elements": [{"type": "button", "text": {"type": "mrkdwn", "text": "Go"}, "action_id": "a"}]}]
        refused = self.call("chat.postMessage", {"channel": "#incidents", "text": "hi", "blocks": bad})
        self.assertEqual(refused["error"], "invalid_blocks")
        self.assertIn("plain_text", refused["response_metadata"]["messages"][0])
        # chat.update: the channel id postMessage answered and the ts of a message there.
        self.assertEqual(self.call("chat.update", {"channel": "#incidents", "ts": ok["ts"], "text": "x"})["error"], "channel_not_found")
        self.assertEqual(self.call("chat.update", {"channel": "C0OPS", "ts": ok["ts"], "text": "x"})["error"], "message_not_found")
        self.assertTrue(self.call("chat.update", {"channel": "C0INCIDENTS", "ts": ok["ts"], "text": "x"})["ok"])
        self.assertEqual(self.slack.messages[("C0INCIDENTS", ok["ts"])]["text"], "x")
        second = self.call("chat.postMessage", {"channel": "C0INCIDENTS", "text": "again"})
        self.assertNotEqual(second["ts"], ok["ts"])

    def test_block_kit_limits(self) -> None:
        cases = {
            "unknown type": [{"type": "banner"}],
            "empty text": [{"type": "section", "text": {"type": "mrkdwn", "text": ""}}],
            "long section": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            "mrkdwn header": [{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}],
            "duplicate action_id": [{"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "a"}, "action_id": "x"},
                {"type": "button", "text": {"type": "plain_text", "text": "b"}, "action_id": "x"}]}],
            "bad style": [{"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "a"}, "action_id": "x", "style": "loud"}]}],
            "too many blocks": [{"type": "divider"}] * 51,
            "not a list": {"type": "section"},
        }  # fmt: skip
        for name, blocks in cases.items():
            with self.subTest(name):
                self.assertTrue(block_kit_problems(blocks))
