"""aegis.record_incident: writes the full incident, idempotently, keeping the sensor's bookkeeping."""

from __future__ import annotations

from fixtures.alerts import alert
from incidents import IncidentStore, incident_id
from record_incident import RecordIncident
from st2tests.base import BaseActionTestCase


def params(raw: dict, **extra) -> dict:
    return {
        "fingerprint": raw["fingerprint"],
        "starts_at": raw["startsAt"],
        "status": raw["status"],
        "alertname": raw["labels"]["alertname"],
        "labels": raw["labels"],
        "annotations": raw["annotations"],
        "ends_at": raw["endsAt"],
        "generator_url": raw["generatorURL"],
        "receiver": "aegis",
        "group_key": '{}:{alertname="InstanceDown"}',
        "external_url": "http://alertmanager:9093",
        **extra,
    }


class RecordIncidentTest(BaseActionTestCase):
    action_cls = RecordIncident

    def test_creates_the_full_record(self):
        raw = alert(instance="db-1:9100", annotations={"summary": "db-1 down"})
        incident = self.get_action_instance().run(**params(raw))
        self.assertEqual(incident["id"], incident_id(raw["fingerprint"], raw["startsAt"]))
        self.assertEqual(incident["status"], "open")
        self.assertEqual(incident["labels"]["instance"], "db-1:9100")
        self.assertEqual(incident["annotations"], {"summary": "db-1 down"})
        self.assertEqual((incident["receiver"], incident["external_url"]), ("aegis", "http://alertmanager:9093"))
        self.assertEqual(incident["generator_url"], raw["generatorURL"])
        self.assertEqual(incident["repeats"], 0)
        stored = IncidentStore(self.get_action_instance().action_service).get(incident["id"])
        self.assertEqual(stored, incident)

    def test_keeps_what_the_sensor_recorded_and_a_close_that_overtook_it(self):
        raw = alert(instance="db-1")
        action = self.get_action_instance()
        store = IncidentStore(action.action_service)
        opened, repeat = store.open_or_repeat({**raw, "alertname": "InstanceDown"})
        self.assertFalse(repeat)
        store.count_repeat(opened["id"])
        store.close(opened["id"], ends_at="2024-05-01T10:09:00Z")
        incident = action.run(**params(raw, annotations={"summary": "new text"}, incident_id=opened["id"]))
        self.assertEqual(incident["status"], "closed")
        self.assertEqual(incident["opened_at"], opened["opened_at"])
        self.assertEqual(incident["repeats"], 1)
        self.assertEqual(incident["annotations"], {"summary": "new text"})

    def test_running_twice_is_idempotent(self):
        raw = alert(instance="db-2")
        first = self.get_action_instance().run(**params(raw))
        second = self.get_action_instance().run(**params(raw))
        self.assertEqual(first, second)
        self.assertEqual(len(IncidentStore(self.get_action_instance().action_service).list()), 1)
