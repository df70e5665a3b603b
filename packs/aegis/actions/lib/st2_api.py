"""StackStorm's API, as pack code calls it: inquiries and executions.

    api = St2API.from_config(self.config)
    api.inquiries()                                  # pending inquiries
    api.respond("5f1...", {"approved": True})        # St2Error(400) when answered or timed out

Where: config ``chatops.st2_api_url`` and ``chatops.st2_api_key`` (an st2 API key,
``st2 apikey create``), else what st2 gives every python action: ``ST2_ACTION_API_URL``
and ``ST2_ACTION_AUTH_TOKEN``. Sensors have no token of their own on st2, so the Slack
interactivity sensor needs the API key.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import requests


class St2Error(RuntimeError):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class St2API:
    def __init__(self, url: str, api_key: str = "", token: str = "", timeout: float = 10) -> None:
        if not url:
            raise St2Error("no st2 API URL: set chatops.st2_api_url (or run under st2, which sets ST2_ACTION_API_URL)")
        self.url = url.rstrip("/")
        self._session = requests.Session()
        if api_key:
            self._session.headers["St2-Api-Key"] = api_key
        elif token:
            self._session.headers["X-Auth-Token"] = token
        self._timeout = timeout

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> St2API:
        section = (config or {}).get("chatops") or {}
        return cls(section.get("st2_api_url") or os.environ.get("ST2_ACTION_API_URL", ""),
                   api_key=section.get("st2_api_key") or "", token=os.environ.get("ST2_ACTION_AUTH_TOKEN", ""),
                   timeout=float(section.get("timeout") or 10))  # fmt: skip

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._session.request(method, self.url + path, timeout=self._timeout, **kwargs)
        except requests.RequestException as exc:
            raise St2Error(f"st2 API {method} {path}: {type(exc).__name__}") from exc
        if resp.status_code >= 400:
            try:
                reason = resp.json().get("faultstring") or resp.text
            except ValueError:
                reason = resp.text
            raise St2Error(f"st2 API {method} {path}: {resp.status_code} {reason[:300]}", resp.status_code)
        return resp.json() if resp.content else None

    def inquiries(self) -> list[dict[str, Any]]:
        return self._request("GET", "/inquiries", params={"limit": 100}) or []

    def inquiry(self, inquiry_id: str) -> dict[str, Any]:
        return self._request("GET", f"/inquiries/{quote(inquiry_id, safe='')}")

    def respond(self, inquiry_id: str, response: dict[str, Any]) -> dict[str, Any]:
        return self._request("PUT", f"/inquiries/{quote(inquiry_id, safe='')}", json={"id": inquiry_id, "response": response})

    def executions(self, **params: Any) -> list[dict[str, Any]]:
        """``GET /executions`` with st2's query parameters (``action``, ``parent``, ``limit``, ...)."""
        return self._request("GET", "/executions", params=params) or []

    def children(self, ex_id: str) -> list[dict[str, Any]]:
        """Every descendant of a workflow execution, depth first (``/executions/ID/children?depth=-1``)."""
        return self._request("GET", f"/executions/{quote(ex_id, safe='')}/children", params={"depth": -1}) or []

    def run(self, action: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """Start an execution (``st2 run``); returns it, still ``requested`` or ``scheduled``."""
        return self._request("POST", "/executions", json={"action": action, "parameters": parameters})

    def execution_with_result(self, ex_id: str) -> dict[str, Any]:
        return self._request("GET", f"/executions/{quote(ex_id, safe='')}")

    def user(self) -> dict[str, Any]:
        """Who the credentials belong to (``GET /user``); St2Error(401) when they are not valid."""
        return self._request("GET", "/user")

    def execution(self, ex_id: str) -> dict[str, Any]:
        return self._request("GET", f"/executions/{quote(ex_id, safe='')}",
                             params={"exclude_attributes": "result,liveaction"})  # fmt: skip
