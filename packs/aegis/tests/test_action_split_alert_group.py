"""aegis.split_alert_group: a percent-encoded notification in, incidents stored, incident ids out."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from fixtures.alerts import alert, notification
from incidents import IncidentStore, is_incident_id
from split_alert_group import SplitAlertGroup
from st2tests.base import BaseActionTestCase

HOSTILE = "{{ lipsum.__globals__.os.popen('id').read() }} <% 'payments-api' %>"


def encoded(body: dict) -> str:
    """As the rule renders it: ``{{ trigger.body | tojson | urlencode }}``."""
    return quote(json.dumps(body))


class SplitAlertGroupTest(BaseActionTestCase):
    action_cls = SplitAlertGroup

    def test_stores_alerts_and_returns_only_incident_ids(self):
        firing = alert(instance="db-1", annotations={"summary": HOSTILE})
        body = notification([firing])
        self.assertTrue(re.fullmatch(r"[A-Za-z0-9_.~/%-]*", encoded(body)))
        action = self.get_action_instance()
        ok, result = action.run(body=encoded(body))
        self.assertTrue(ok, result)
        [inc_id] = result["remediate"]
        self.assertTrue(is_incident_id(inc_id))
        stored = IncidentStore(action.action_service).get(inc_id)
        self.assertEqual(stored["annotations"]["summary"], HOSTILE)
        self.assertEqual(stored["labels"], firing["labels"])

    def test_a_repeat_is_not_remediated_and_a_resolve_closes_by_id(self):
        firing = alert(instance="db-2")
        action = self.get_action_instance()
        ok, first = action.run(body=encoded(notification([firing])))
        ok, again = action.run(body=encoded(notification([firing])))
        self.assertEqual((again["remediate"], again["repeats"]), ([], 1))
        resolved = {**firing, "status": "resolved", "endsAt": "2024-05-01T10:09:00Z"}
        ok, result = action.run(body=encoded(notification([resolved])))
        self.assertEqual(result["close"], [{"incident_id": first["remediate"][0], "ends_at": "2024-05-01T10:09:00Z"}])

    def test_plain_json_text_with_percent_signs_is_read_as_is(self):
        firing = alert(instance="db-3", annotations={"summary": "disk 95% full"})
        action = self.get_action_instance()
        ok, result = action.run(body=json.dumps(notification([firing])))
        self.assertTrue(ok, result)
        stored = IncidentStore(action.action_service).get(result["remediate"][0])
        self.assertEqual(stored["annotations"]["summary"], "disk 95% full")

    def test_a_body_that_is_not_json_fails_clearly(self):
        ok, result = self.get_action_instance().run(body="%7Bnot%20json")
        self.assertFalse(ok)
        self.assertIn("not JSON", result["error"])
