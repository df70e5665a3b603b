"""``aegis.split_alert_group``: one Alertmanager notification (a group) into incident ids.

Used by ``aegis.remediate_group`` on the ``core.st2.webhook`` path, where st2 hands the
whole notification to one rule. Same validation as the sensor (``alerts.parse_webhook``)
and the same episode bookkeeping (``IncidentStore.open_or_repeat``), so a repeat is not
remediated twice whichever way the alert came in.

    st2 run aegis.split_alert_group body="$(python -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.stdin.read()))' < n.json)"
    # -> {"remediate": ["inc-..."], "close": [{"incident_id": "inc-...", "ends_at": "..."}], "repeats": 1, "rejected": []}

``body`` is the notification as JSON text, percent-encoded (the rule renders it with
``tojson | urlencode``): a workflow input holding raw alert text would be evaluated by
orquesta as an expression, an encoded one cannot be. Each alert is stored as an incident
here, and only incident ids go on to ``aegis.remediate``.

Unlike the sensor, it cannot serialize two executions working on the same fingerprint at
once; st2's API webhook path is for setups without HA duplicates arriving within seconds.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from alerts import WebhookError, split_notification
from base import AegisAction
from incidents import incident_id


def decode_body(body: Any) -> Any:
    """The notification from ``body``: percent-encoded JSON text, plain JSON text, or a mapping."""
    if not isinstance(body, str):
        return body
    text = body.strip()
    if not text.startswith("{"):
        text = unquote(text, errors="strict")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise WebhookError(400, f"body is not JSON: {exc}", "bad_json") from exc


class SplitAlertGroup(AegisAction):
    def run(self, body: Any) -> tuple[bool, dict[str, Any]]:
        try:
            alerts, rejected = split_notification(decode_body(body))
        except (WebhookError, UnicodeDecodeError) as exc:
            reason = exc.reason if isinstance(exc, WebhookError) else f"body is not UTF-8: {exc}"
            return False, {"error": reason, "remediate": [], "close": [], "repeats": 0, "rejected": []}
        remediate: list[str] = []
        close: list[dict[str, str]] = []
        repeats = 0
        store = self.incidents
        for alert in alerts:
            if alert["status"] == "firing":
                incident, repeat = store.open_or_repeat(alert)
                if repeat:
                    store.count_repeat(incident["id"])
                    repeats += 1
                else:
                    remediate.append(incident["id"])
                continue
            known = store.get(incident_id(alert["fingerprint"], alert["startsAt"])) or store.open_incident_for(alert["fingerprint"])
            if known is None:
                self.logger.info("resolved alert %s names no incident; nothing to close", alert["fingerprint"])
            else:
                close.append({"incident_id": known["id"], "ends_at": alert["endsAt"]})
        for item in rejected:
            self.logger.warning("rejected alert %s: %s", item["index"], item["reason"])
        return True, {"remediate": remediate, "close": close, "repeats": repeats, "rejected": rejected}
