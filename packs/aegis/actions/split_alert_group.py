"""``aegis.split_alert_group``: one Alertmanager notification (a group) into per-alert work.

Used by ``aegis.remediate_group`` on the ``core.st2.webhook`` path, where st2 hands the
whole notification to one rule. Same validation as the sensor (``alerts.parse_webhook``)
and the same episode bookkeeping (``IncidentStore.open_or_repeat``), so a repeat is not
remediated twice whichever way the alert came in.

    st2 run aegis.split_alert_group body=@notification.json
    # -> {"remediate": [{fingerprint, starts_at, ...}], "close": [...], "repeats": 1, "rejected": []}

Unlike the sensor, it cannot serialize two executions working on the same fingerprint at
once; st2's API webhook path is for setups without HA duplicates arriving within seconds.
"""

from __future__ import annotations

from typing import Any

from alerts import WebhookError, split_notification
from base import AegisAction
from incidents import incident_id


def _params(alert: dict[str, Any], inc_id: str) -> dict[str, Any]:
    """aegis.alert payload -> the parameters of aegis.remediate / aegis.close_incident."""
    return {
        "fingerprint": alert["fingerprint"],
        "starts_at": alert["startsAt"],
        "status": alert["status"],
        "alertname": alert["alertname"],
        "labels": alert["labels"],
        "annotations": alert["annotations"],
        "ends_at": alert["endsAt"],
        "generator_url": alert["generatorURL"],
        "receiver": alert["receiver"],
        "group_key": alert["groupKey"],
        "external_url": alert["externalURL"],
        "incident_id": inc_id,
    }


class SplitAlertGroup(AegisAction):
    def run(self, body: Any) -> tuple[bool, dict[str, Any]]:
        try:
            alerts, rejected = split_notification(body)
        except WebhookError as exc:
            return False, {"error": exc.reason, "remediate": [], "close": [], "repeats": 0, "rejected": []}
        remediate, close, repeats = [], [], 0
        for alert in alerts:
            if alert["status"] == "firing":
                incident, repeat = self.incidents.open_or_repeat(alert)
                if repeat:
                    self.incidents.count_repeat(incident["id"])
                    repeats += 1
                else:
                    remediate.append(_params(alert, incident["id"]))
            else:
                close.append(_params(alert, incident_id(alert["fingerprint"], alert["startsAt"])))
        for item in rejected:
            self.logger.warning("rejected alert %s: %s", item["index"], item["reason"])
        return True, {"remediate": remediate, "close": close, "repeats": repeats, "rejected": rejected}
