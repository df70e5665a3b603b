"""Alertmanager API v2, from the acting side: is the alert still firing, and silences.

    am = AlertmanagerAPI("http://alertmanager:9093")
    am.still_firing("c0ffee...")                       # True / False
    sid = am.silence(labels, ends_at, comment="Aegis inc-... restart checkout")
    am.expire(sid)                                     # verification passed (or failed: at once)

The silence covers exactly that alert: one equality matcher per label of the alert (its
label set is its identity; Alertmanager has no "no other labels" matcher, so an alert with
a strict superset of these labels would be covered too, which none of the alert's own
group can be). Alertmanager has no hard delete: ``DELETE /api/v2/silence/{id}`` expires
the silence at once, which is what both "expire on success" and "delete on failure" do.

Config ``alertmanager_api``: ``url`` (base URL, required for pre-check and silences),
``token`` (bearer, secret), ``timeout`` (10).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import requests


class AlertmanagerError(RuntimeError):
    pass


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AlertmanagerAPI:
    def __init__(self, url: str, token: str = "", timeout: float = 10) -> None:
        if not url:
            raise AlertmanagerError("alertmanager_api.url is not configured")
        self.url = url.rstrip("/")
        self._session = requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> AlertmanagerAPI:
        section = config.get("alertmanager_api") or {}
        return cls(section.get("url") or "", section.get("token") or "", float(section.get("timeout") or 10))

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._session.request(method, self.url + path, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise AlertmanagerError(f"alertmanager {method} {path}: {exc}") from exc
        if resp.status_code >= 400:
            raise AlertmanagerError(f"alertmanager {method} {path}: {resp.status_code} {resp.text[:200]}")
        return resp.json() if resp.content else None

    def alert(self, fingerprint: str) -> dict[str, Any] | None:
        """The alert with this fingerprint as Alertmanager has it now (active or suppressed), or None."""
        alerts = self._request("GET", "/api/v2/alerts", params={"active": "true", "silenced": "true", "inhibited": "true"})
        fp = fingerprint.lower()
        return next((a for a in alerts or [] if str(a.get("fingerprint", "")).lower() == fp), None)

    def still_firing(self, fingerprint: str) -> bool:
        alert = self.alert(fingerprint)
        return alert is not None and (alert.get("status") or {}).get("state") in ("active", "suppressed")

    def silence(self, labels: dict[str, str], ends_at: datetime, comment: str, created_by: str = "aegis") -> str:
        matchers = [{"name": k, "value": str(v), "isRegex": False, "isEqual": True} for k, v in sorted(labels.items()) if v != ""]
        if not matchers:
            raise AlertmanagerError("an alert without labels cannot be silenced exactly")
        body = {"matchers": matchers, "startsAt": rfc3339(datetime.now(timezone.utc)), "endsAt": rfc3339(ends_at),
                "createdBy": created_by, "comment": comment}
        return self._request("POST", "/api/v2/silences", json=body)["silenceID"]

    def get_silence(self, silence_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v2/silence/{requests.utils.quote(silence_id, safe='')}")

    def expire(self, silence_id: str) -> None:
        self._request("DELETE", f"/api/v2/silence/{requests.utils.quote(silence_id, safe='')}")
