"""aegis.notify / aegis.escalate through slack_sdk and the PagerDuty Events API v2, to stand-ins."""

from __future__ import annotations

from escalate import Escalate
from fixtures.alerts import alert
from incidents import IncidentStore
from lifecycle import Lifecycle
from notify import Notify
from servers.standins import PagerDutyStandIn, SlackStandIn
from st2tests.base import BaseActionTestCase

DIAGNOSIS = {"action": "restart", "target": "checkout", "root_cause": "memory leak", "confidence": 0.8, "safety": "safe",
             "evidence": [{"id": "memory-leak-restart", "kind": "runbook", "similarity": 0.7}], "reasoning": "heap grows"}


class NotifyTest(BaseActionTestCase):
    action_cls = Escalate

    def setUp(self):
        super().setUp()
        self.slack = SlackStandIn().__enter__()
        self.pd = PagerDutyStandIn().__enter__()
        self.addCleanup(self.slack.__exit__)
        self.addCleanup(self.pd.__exit__)
        raw = alert("HighMemoryUsage", deployment="checkout", severity="critical",
                    annotations={"summary": "<!channel> {{ 7*7 }} memory high", "runbook_url": "x"})
        self.incident, _ = IncidentStore(self.get_action_instance().action_service).open_or_repeat(raw)

    def config(self, slack=True, pd=True):
        config = {}
        if slack:
            config["slack"] = {"token": "xoxb-test", "channel": "#ops", "base_url": self.slack.url + "/api/"}
        if pd:
            config["pagerduty"] = {"routing_key": "R0UT1NG", "base_url": self.pd.url}
        return config

    def test_escalation_reaches_slack_and_pagerduty_with_the_full_report(self):
        Lifecycle(self.get_action_instance().action_service).event(self.incident["id"], "investigating", "context gathered")
        attempts = [{"action": "restart", "target": "checkout", "outcome": "done", "reason": None, "verification": "not healthy"}]
        result = self.get_action_instance(self.config()).run(incident_id=self.incident["id"], diagnosis=DIAGNOSIS,
                                                             attempts=attempts, note="verification failed")
        self.assertEqual(result["state"], "escalated")
        self.assertTrue(result["delivery"]["routed"])
        post = self.slack.calls("POST", "/api/chat.postMessage")[0]["body"]
        self.assertEqual(post["channel"], "#ops")
        text = str(post["blocks"])
        self.assertIn("&lt;!channel&gt; {{ 7*7 }} memory high", text)   # escaped, and never rendered
        self.assertNotIn("<!channel>", text + post["text"])
        for part in ("Timeline", "context gathered", "tried restart checkout: done (not healthy)", "Evidence: runbook memory-leak-restart",
                     "*Next:*", "memory leak"):
            self.assertIn(part, text)
        event = self.pd.calls("POST", "/v2/enqueue")[0]["body"]
        self.assertEqual((event["event_action"], event["dedup_key"], event["routing_key"]), ("trigger", self.incident["fingerprint"], "R0UT1NG"))
        self.assertEqual(event["payload"]["severity"], "critical")
        self.assertIn("verification failed", event["payload"]["custom_details"]["report"])
        self.assertEqual(Lifecycle(self.get_action_instance().action_service).state(self.incident["id"])["state"], "escalated")

    def test_unrouted_escalation_is_loud_and_marked(self):
        with self.assertLogs(level="ERROR") as logs:
            result = self.get_action_instance({}).run(incident_id=self.incident["id"], diagnosis=DIAGNOSIS)
        self.assertEqual(result["state"], "escalated (unrouted)")
        self.assertFalse(result["delivery"]["routed"])
        self.assertIn("ESCALATION REACHED NO ONE", logs.output[0])
        self.assertEqual(Lifecycle(self.get_action_instance().action_service).state(self.incident["id"])["state"], "escalated (unrouted)")

    def test_slack_rejecting_the_token_still_pages(self):
        config = self.config()
        config["slack"]["token"] = "xoxb-wrong"
        result = self.get_action_instance(config).run(incident_id=self.incident["id"], diagnosis=DIAGNOSIS)
        self.assertEqual(result["delivery"]["slack"], {"status": "error", "detail": "slack: invalid_auth"})
        self.assertTrue(result["delivery"]["routed"])
        self.assertNotIn("xoxb-wrong", str(result))

    def test_resolved_notification_resolves_the_page_and_webhook_slack(self):
        self.action_cls = Notify
        config = {"slack": {"webhook_url": self.slack.url + "/webhook"}, "pagerduty": {"routing_key": "R0UT1NG", "base_url": self.pd.url}}
        result = self.get_action_instance(config).run(incident_id=self.incident["id"], kind="resolved", diagnosis=DIAGNOSIS)
        self.assertEqual(result["state"], "resolved")
        self.assertEqual(self.pd.calls("POST")[0]["body"]["event_action"], "resolve")
        self.assertEqual(self.pd.calls("POST")[0]["body"]["dedup_key"], self.incident["fingerprint"])
        self.assertIn("Aegis resolved", self.slack.calls("POST", "/webhook")[0]["body"]["text"])
