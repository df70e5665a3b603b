"""aegis.close_incident: closes the matching open incident once."""

from __future__ import annotations

from close_incident import CloseIncident
from fixtures.alerts import alert
from incidents import IncidentStore
from st2tests.base import BaseActionTestCase


class CloseIncidentTest(BaseActionTestCase):
    action_cls = CloseIncident

    def open_incident(self, **labels):
        raw = alert(**labels)
        store = IncidentStore(self.get_action_instance().action_service)
        incident, _ = store.open_or_repeat(raw)
        return raw, incident, store

    def test_closes_by_fingerprint_and_starts_at(self):
        raw, incident, store = self.open_incident(instance="db-1")
        result = self.get_action_instance().run(fingerprint=raw["fingerprint"], starts_at=raw["startsAt"], ends_at="2024-05-01T10:09:00Z")
        self.assertTrue(result["closed"])
        stored = store.get(incident["id"])
        self.assertEqual((stored["status"], stored["ends_at"], stored["close_reason"]), ("closed", "2024-05-01T10:09:00Z", "resolved"))
        self.assertIsNotNone(stored["closed_at"])
        self.assertIsNone(store.open_incident_for(raw["fingerprint"]))

    def test_closing_twice_is_a_no_op(self):
        raw, incident, store = self.open_incident(instance="db-1")
        action = self.get_action_instance()
        action.run(fingerprint=raw["fingerprint"], incident_id=incident["id"], ends_at="2024-05-01T10:09:00Z")
        first_closed_at = store.get(incident["id"])["closed_at"]
        again = action.run(fingerprint=raw["fingerprint"], incident_id=incident["id"], ends_at="2024-05-01T11:00:00Z")
        self.assertEqual((again["closed"], again["reason"]), (False, "already closed"))
        self.assertEqual(store.get(incident["id"])["closed_at"], first_closed_at)
        self.assertEqual(store.get(incident["id"])["ends_at"], "2024-05-01T10:09:00Z")

    def test_falls_back_to_the_open_incident_of_the_fingerprint(self):
        raw, incident, store = self.open_incident(instance="db-3")
        result = self.get_action_instance().run(fingerprint=raw["fingerprint"], starts_at="2024-05-01T09:59:59Z")
        self.assertTrue(result["closed"])
        self.assertEqual(result["incident"]["id"], incident["id"])

    def test_unknown_incident_is_reported_not_failed(self):
        result = self.get_action_instance().run(fingerprint="0123456789abcdef", starts_at="2024-05-01T10:00:00Z")
        self.assertEqual(result, {"closed": False, "incident": None, "reason": "no such incident"})

    def test_only_the_matching_incident_is_closed(self):
        raw1, inc1, store = self.open_incident(instance="a")
        _raw2, inc2, _ = self.open_incident(instance="b")
        self.get_action_instance().run(fingerprint=raw1["fingerprint"], starts_at=raw1["startsAt"])
        self.assertEqual(store.get(inc1["id"])["status"], "closed")
        self.assertEqual(store.get(inc2["id"])["status"], "open")
        self.assertEqual([i["id"] for i in store.list(status="open")], [inc2["id"]])
