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

from ..settings import _parse_listen as parse_listen
from .auth import AuthStore
from .http import Server, handler_class
from .v1 import Api

__all__ = ["ApiServers", "AuthStore", "handler_classes", "listen_addresses", "start_api"]


def _listen(variable: str, default: str) -> tuple[str, int]:
    try:
        return parse_listen(os.environ.get(variable) or default)
    except ValueError as exc:
        raise ValueError(f"{variable}: {exc}") from exc


def listen_addresses() -> tuple[tuple[str, int], tuple[str, int]]:
    """Where the API and the auth service listen (``AEGIS_ST2_API_LISTEN``, ``AEGIS_ST2_AUTH_LISTEN``)."""
    return _listen("AEGIS_ST2_API_LISTEN", "127.0.0.1:9101"), _listen("AEGIS_ST2_AUTH_LISTEN", "127.0.0.1:9100")


def handler_classes(runtime: Any, home: Any, auth_store: AuthStore | None = None) -> tuple[type, type]:
    """Request handler classes for the API and the auth service, for a server the caller binds."""
    app = Api(runtime, auth_store or AuthStore(home))
    return handler_class(app.api_router(), app.authenticate), handler_class(app.auth_router(), None)


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
    api_handler, auth_handler = handler_classes(runtime, home, auth_store)
    default_api, default_auth = listen_addresses()
    api = Server(api_handler, *(api_listen or default_api))
    auth_server = Server(auth_handler, *(auth_listen or default_auth))
    return ApiServers(api=api.start(), auth=auth_server.start())
