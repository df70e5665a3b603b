"""Prometheus instant queries, with alert labels filled in safely.

    prom = Prometheus("http://prometheus:9090")
    prom.query('sum(rate(http_errors_total{service="${service}"}[5m]))', labels={"service": "checkout"})
    # -> [{"metric": {...}, "value": 0.02}, ...]

A query names an alert label as ``${name}``, and only inside a double-quoted matcher
value: it is replaced by the label's value escaped as a PromQL string (``\\``, ``"`` and
newlines escaped), so a label can never end the string and add to the expression. A
placeholder whose label the alert does not have makes the query unusable (an error, not
an empty match that would look healthy).
"""

from __future__ import annotations

import re
from typing import Any

import requests

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PromQLError(RuntimeError):
    pass


def escape_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def fill(query: str, labels: dict[str, str]) -> str:
    def sub(match: re.Match) -> str:
        name = match.group(1)
        if name not in labels:
            raise PromQLError(f"query needs label {name!r}, which the alert does not have")
        return escape_string(str(labels[name]))
    return _PLACEHOLDER.sub(sub, query)


class Prometheus:
    def __init__(self, url: str, token: str = "", timeout: float = 10) -> None:
        if not url:
            raise PromQLError("prometheus.url is not configured")
        self.url = url.rstrip("/")
        self._session = requests.Session()
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Prometheus:
        section = config.get("prometheus") or {}
        return cls(section.get("url") or "", section.get("token") or "", float(section.get("timeout") or 10))

    def query(self, query: str, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        text = fill(query, labels or {})
        try:
            resp = self._session.get(self.url + "/api/v1/query", params={"query": text}, timeout=self.timeout)
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise PromQLError(f"prometheus: {exc}") from exc
        if body.get("status") != "success":
            raise PromQLError(f"prometheus: {body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": float(data["result"][1])}]
        if data["resultType"] != "vector":
            raise PromQLError(f"prometheus: an instant query gave a {data['resultType']}, expected a vector")
        return [{"metric": s["metric"], "value": float(s["value"][1])} for s in data["result"]]
