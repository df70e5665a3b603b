"""st2's REST API and auth service, served by the runtime, for the real ``st2`` CLI.

The subset of StackStorm's API (``st2common/openapi.yaml.j2``) that the ``st2`` commands
for executions, trigger instances, rules, actions, ``run``, keys, inquiries, packs and API
keys use, with st2's paths, JSON shapes, status codes and paging headers; everything else
answers 501 naming the endpoint. Every API call needs a token (``X-Auth-Token``) or an API
key (``St2-Api-Key``), as st2 with auth enabled.

    servers = start_api(runtime, settings)      # auth on 127.0.0.1:9100, API on 127.0.0.1:9101
    servers.api.url, servers.auth.url
    servers.stop()

| variable               | default            | what                            |
|------------------------|--------------------|---------------------------------|
| AEGIS_ST2_API_LISTEN   | ``127.0.0.1:9101`` | st2's API (``ST2_API_URL`` = ``http://HOST:PORT/v1``) |
| AEGIS_ST2_AUTH_LISTEN  | ``127.0.0.1:9100`` | st2's auth service (``ST2_AUTH_URL`` = ``http://HOST:PORT``) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .auth import AuthStore
from .http import Server
from .v1 import Api

__all__ = ["ApiServers", "AuthStore", "start_api"]


def _listen(variable: str, default: str) -> tuple[str, int]:
    value = os.environ.get(variable) or default
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{variable}={value!r}: expected HOST:PORT")
    return host, int(port)


@dataclass
class ApiServers:
    api: Server
    auth: Server

    def stop(self) -> None:
        self.api.stop()
        self.auth.stop()


def start_api(runtime: Any, home: Any, auth_store: AuthStore | None = None,
              api_listen: tuple[str, int] | None = None, auth_listen: tuple[str, int] | None = None) -> ApiServers:
    """Serve the API and the auth service for ``runtime``; users and keys live under ``home``."""
    auth = auth_store or AuthStore(home)
    app = Api(runtime, auth)
    api = Server(app.api_router(), *(api_listen or _listen("AEGIS_ST2_API_LISTEN", "127.0.0.1:9101")),
                 authenticate=app.authenticate)
    auth_server = Server(app.auth_router(), *(auth_listen or _listen("AEGIS_ST2_AUTH_LISTEN", "127.0.0.1:9100")))
    return ApiServers(api=api.start(), auth=auth_server.start())
