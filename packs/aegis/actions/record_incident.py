"""``aegis.record_incident``: write the full incident record of a firing alert (first workflow step).

    st2 run aegis.record_incident fingerprint=c0ffee0123456789 starts_at=2024-05-01T10:00:00Z \
        labels='{"alertname": "InstanceDown"}'

Idempotent: a retry or an HA duplicate rewrites the same record; an incident the sensor
already opened keeps its ``opened_at`` and repeat count, and one closed meanwhile stays closed.
"""

from __future__ import annotations

from typing import Any

from base import AegisAction


class RecordIncident(AegisAction):
    def run(
        self,
        fingerprint: str,
        starts_at: str,
        status: str = "firing",
        alertname: str = "",
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        ends_at: str = "",
        generator_url: str = "",
        receiver: str = "",
        group_key: str = "",
        external_url: str = "",
        incident_id: str | None = None,
    ) -> dict[str, Any]:
        alert = {
            "fingerprint": fingerprint,
            "startsAt": starts_at,
            "status": status,
            "alertname": alertname,
            "labels": labels or {},
            "annotations": annotations or {},
            "endsAt": ends_at,
            "generatorURL": generator_url,
            "receiver": receiver,
            "groupKey": group_key,
            "externalURL": external_url,
            "incident_id": incident_id,
        }
        incident = self.incidents.record(alert)
        self.logger.info("recorded incident %s (%s, %s)", incident["id"], incident["alertname"], incident["status"])
        return incident
