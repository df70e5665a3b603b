"""aegis.record_incident: the workflow's first step loads the incident the sensor recorded, by id only."""

from __future__ import annotations

from fixtures.alerts import alert
from incidents import IncidentStore
from record_incident import RecordIncident
from st2tests.base import BaseActionTestCase


class RecordIncidentTest(BaseActionTestCase):
    action_cls = RecordIncident

    def test_returns_the_record_the_sensor_wrote_with_literal_alert_text(self):
        raw = alert(instance="db-1:9100", annotations={"summary": "value {{ $value }} <% 'x' %>"})
        action = self.get_action_instance()
        opened, _ = IncidentStore(action.action_service).open_or_repeat({**raw, "alertname": "InstanceDown"})
        ok, incident = action.run(incident_id=opened["id"])
        self.assertTrue(ok)
        self.assertEqual(incident, opened)
        self.assertEqual(incident["annotations"]["summary"], "value {{ $value }} <% 'x' %>")
        self.assertEqual(incident["labels"]["instance"], "db-1:9100")

    def test_keeps_the_sensor_bookkeeping_and_a_close_that_overtook_it(self):
        raw = alert(instance="db-1")
        action = self.get_action_instance()
        store = IncidentStore(action.action_service)
        opened, _ = store.open_or_repeat({**raw, "alertname": "InstanceDown"})
        store.count_repeat(opened["id"])
        store.close(opened["id"], ends_at="2024-05-01T10:09:00Z")
        ok, incident = action.run(incident_id=opened["id"])
        self.assertTrue(ok)
        self.assertEqual((incident["status"], incident["repeats"]), ("closed", 1))

    def test_an_unknown_or_malformed_id_fails_clearly(self):
        action = self.get_action_instance()
        ok, result = action.run(incident_id="inc-0123456789abcdef")
        self.assertFalse(ok)
        self.assertIn("no incident inc-0123456789abcdef", result["error"])
        ok, result = action.run(incident_id="{{ 7 * 7 }}")
        self.assertFalse(ok)
        self.assertIn("not an incident id", result["error"])
