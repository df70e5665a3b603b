"""Slack request signatures and the click rules, without a network (the full path, with a real
runtime, Slack stand-in and signed HTTP requests to the sensor, is tests/test_chatops_slack.py).

Signatures are computed here independently, from Slack's documented recipe:
``v0=`` + hex HMAC-SHA256(signing secret, ``v0:{timestamp}:{body}``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import unittest
from urllib.parse import urlencode

import requests
from approvals import response_for
from chatops import Permissions, normalise_user, parse_duration
from slack_interactivity import ApprovalClicks, signature, verify
from slack_interactivity_sensor import SlackInteractivitySensor
from st2tests.base import BaseSensorTestCase

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
NOW = 1_700_000_000


def slack_signs(secret: str, timestamp: int, body: bytes) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


class SignatureTest(unittest.TestCase):
    def headers(self, timestamp: int = NOW, sig: str | None = None) -> dict:
        return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": sig or slack_signs(SECRET, timestamp, BODY)}

    def test_slacks_recipe(self) -> None:
        self.assertEqual(signature(SECRET, str(NOW), BODY), slack_signs(SECRET, NOW, BODY))
        self.assertIsNone(verify(SECRET, self.headers(), BODY, NOW))

    def test_refusals(self) -> None:
        cases = {
            "bad signature": (self.headers(sig=slack_signs("other", NOW, BODY)), BODY, NOW),
            "tampered body": (self.headers(), BODY + b"x", NOW),
            "older than 5 minutes": (self.headers(NOW - 301), BODY, NOW),
            "from the future": (self.headers(NOW + 301), BODY, NOW),
            "no headers": ({}, BODY, NOW),
        }
        for name, (headers, body, now) in cases.items():
            with self.subTest(name):
                self.assertIsNotNone(verify(SECRET, headers, body, now))
        self.assertIsNone(verify(SECRET, self.headers(NOW - 300), BODY, NOW))  # the edge of the window
        self.assertIn("no signing secret", verify("", self.headers(), BODY, NOW))


class PermissionsTest(unittest.TestCase):
    def test_config_and_datastore_lists(self) -> None:
        keys = {"aegis.chatops.approvers": '["carol"]'}
        allowed = Permissions({"chatops": {"approvers": ["@Alice", "U024BE7LH"]}}, keys.get)
        self.assertEqual(allowed.approvers(), {"alice", "U024BE7LH", "carol"})
        self.assertTrue(allowed.allowed("alice") and allowed.allowed("@ALICE") and allowed.allowed("carol"))
        self.assertTrue(allowed.allowed("U0XXXXXXX", "U024BE7LH"))
        self.assertFalse(allowed.allowed("mallory") or allowed.allowed("u024be7lh"))  # ids are exact
        self.assertIsNone(allowed.refusal("alice", "approve"))
        self.assertIn("may not approve", allowed.refusal("mallory", "approve"))
        self.assertIsNone(allowed.refusal("mallory", "status"))  # reading is for everyone

    def test_nobody_when_no_list(self) -> None:
        self.assertFalse(Permissions({}, lambda key: None).allowed("alice"))
        self.assertEqual(Permissions({}, {"aegis.chatops.approvers": "bob, dan"}.get).approvers(), {"bob", "dan"})
        self.assertEqual(normalise_user(" @Bob "), "bob")

    def test_durations(self) -> None:
        self.assertEqual([parse_duration(t) for t in ("30m", "2h", "1d", "45", "90s")], [1800, 7200, 86400, 2700, 90])
        for bad in ("forever", "-1h", "0", "8d", ""):
            with self.subTest(bad), self.assertRaises(ValueError):
                parse_duration(bad)

    def test_response_fits_the_inquiry_schema(self) -> None:
        remediate = {"properties": {"approved": {"type": "boolean"}, "reason": {"type": "string"}}}
        self.assertEqual(response_for(remediate, False, "alice", "not now"), {"approved": False, "reason": "not now"})
        self.assertEqual(response_for({"properties": {"continue": {"type": "boolean"}}}, True, "a"), {"continue": True})
        with self.assertRaises(ValueError):
            response_for({"properties": {"text": {"type": "string"}}}, True, "a")


class ClickWithoutApiTest(BaseSensorTestCase):
    """Clicks the sensor refuses before it would ask st2's API (which must not be called)."""

    sensor_cls = SlackInteractivitySensor

    def setUp(self) -> None:
        super().setUp()
        self.service = self.sensor_service  # st2tests' sensor service, the sensor's datastore
        config = {"chatops": {"approvers": ["alice"], "slack_signing_secret": SECRET}}
        self.clicks = ApprovalClicks(config, self.service, api_factory=self.no_api, clock=lambda: NOW)
        self.service.set_value("aegis.approval.inq1", local=False, value=json.dumps(
            {"inquiry_id": "inq1", "incident_id": "inc-0000000000000001", "state": "pending", "channel": "C1", "ts": "1.1"}))

    @staticmethod
    def no_api():
        raise AssertionError("st2's API must not be called for this click")

    def post(self, user: str, value: str = "inq1|inc-0000000000000001", ts: str = "1.1") -> tuple[int, str]:
        payload = {"type": "block_actions", "user": {"id": "U1", "username": user}, "container": {"message_ts": ts, "channel_id": "C1"},
                   "actions": [{"action_id": "aegis_approve", "value": value}]}
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self.clicks.handle({"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": slack_signs(SECRET, NOW, body)}, body)

    def test_refused_unknown_moved_and_decided(self) -> None:
        self.assertEqual(self.post("mallory"), (200, "refused"))
        self.assertEqual(self.post("alice", value="inq2|inc-0000000000000001"), (200, "unknown"))
        self.assertEqual(self.post("alice", value="inq1|inc-0000000000000002"), (200, "unknown"))
        self.assertEqual(self.post("alice", ts="2.2"), (200, "moved"))
        record = json.loads(self.service.get_value("aegis.approval.inq1", local=False))
        self.service.set_value("aegis.approval.inq1", local=False, value=json.dumps({**record, "state": "denied", "decided_by": "bob"}))
        self.assertEqual(self.post("alice"), (200, "already decided"))
        audit = [json.loads(p.value)["event"] for p in self.service.list_values(local=False, prefix="aegis.chatops.audit.")]
        self.assertEqual(len(audit), 5)  # no incident in this store: every click is in the audit log
        self.assertIn("refused: mallory (U1) is not an approver", audit[0])


class SensorServesAndIdlesTest(BaseSensorTestCase):
    sensor_cls = SlackInteractivitySensor

    def run_sensor(self, config: dict) -> tuple[SlackInteractivitySensor, threading.Thread]:
        sensor = self.get_sensor_instance(config=config)
        sensor.setup()
        runner = threading.Thread(target=sensor.run, daemon=True)
        runner.start()
        return sensor, runner

    def test_enabled_it_answers_on_its_path_only_signed_requests(self) -> None:
        config = {"chatops": {"slack_signing_secret": SECRET, "interactivity": {"enabled": True, "port": 0}}}
        sensor, runner = self.run_sensor(config)
        port = sensor._server.server_address[1]
        try:
            unsigned = requests.post(f"http://127.0.0.1:{port}/slack/interactivity", data=BODY, timeout=10)
            self.assertEqual((unsigned.status_code, unsigned.text), (401, "missing signature headers"))
            self.assertEqual(requests.post(f"http://127.0.0.1:{port}/elsewhere", data=BODY, timeout=10).status_code, 404)
        finally:
            sensor.cleanup()
            runner.join(timeout=10)
        self.assertFalse(runner.is_alive())

    def test_disabled_it_stays_idle_until_cleanup(self) -> None:
        # Exiting would make st2's sensor container restart it in a loop; it waits instead.
        sensor, runner = self.run_sensor({"chatops": {"interactivity": {"enabled": False}}})
        self.assertIsNone(sensor._server)
        runner.join(timeout=0.2)
        self.assertTrue(runner.is_alive())
        sensor.cleanup()
        runner.join(timeout=10)
        self.assertFalse(runner.is_alive())
