"""Processes supervised by supervisord, through its XML-RPC API (``[inet_http_server]``).

    sup = Supervisor("http://127.0.0.1:9001/RPC2", username="aegis", password="...")
    sup.describe("victim")      # {"name": "victim", "state": "RUNNING", "pid": 4242, ...}
    sup.restart("victim")       # stop, start; returns the pids before and after

Config ``supervisor``: ``url`` (default ``http://127.0.0.1:9001/RPC2``), ``username``,
``password``. The process name is a ``group:name`` or a plain name, passed as an XML-RPC
argument (never a shell word).
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from backends import BackendError


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def make_connection(self, host: Any) -> Any:
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class Supervisor:
    def __init__(self, url: str = "http://127.0.0.1:9001/RPC2", username: str = "", password: str = "", timeout: float = 30) -> None:
        if username:
            parts = urlsplit(url)
            netloc = f"{quote(username, safe='')}:{quote(password or '', safe='')}@{parts.hostname}"
            netloc += f":{parts.port}" if parts.port else ""
            url = urlunsplit(parts._replace(netloc=netloc))
        self._proxy = xmlrpc.client.ServerProxy(url, transport=_TimeoutTransport(timeout), allow_none=True)

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> Supervisor:
        return cls(section.get("url") or "http://127.0.0.1:9001/RPC2", section.get("username") or "",
                   section.get("password") or "", float(section.get("timeout") or 30))

    def describe(self, name: str) -> dict[str, Any]:
        try:
            info = self._proxy.supervisor.getProcessInfo(name)
        except xmlrpc.client.Fault as exc:
            raise BackendError(f"supervisord: {name}: {exc.faultString}") from exc
        return {"name": name, "state": info["statename"], "pid": info["pid"], "description": info["description"]}

    def restart(self, name: str) -> dict[str, Any]:
        before = self.describe(name)
        try:
            if before["state"] in ("RUNNING", "STARTING"):
                self._proxy.supervisor.stopProcess(name, True)
            self._proxy.supervisor.startProcess(name, True)
        except xmlrpc.client.Fault as exc:
            raise BackendError(f"supervisord: restart {name}: {exc.faultString}") from exc
        after = self.describe(name)
        return {"before": before, "after": after}
