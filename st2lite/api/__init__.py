"""st2's REST API and auth service, served by the runtime, for the real ``st2`` CLI.

The subset of StackStorm's API (``st2common/openapi.yaml.j2``) that the ``st2`` commands
for executions, trigger instances, rules, actions, ``run``, keys, inquiries, packs and API
keys use, with st2's paths, JSON shapes, status codes and paging headers; everything else
answers 501 naming the endpoint. Every API call needs a token (``X-Auth-Token``) or an API
key (``St2-Api-Key``), as st2 with auth enabled.

    servers = start_api(runtime, settings)      # auth on 127.0.0.1:9100, API on 127.0.0.1:9101, stream on 9102
    servers.api.url, servers.auth.url, servers.stream.url
    servers.bus.publish("st2.announcement__chatops", {...})     # to every /v1/stream client
    servers.stop()

ChatOps bridges (err-stackstorm, hubot-stackstorm) use ``/v1/actionalias/help``,
``/v1/actionalias/match``, ``/v1/aliasexecution/match_and_execute`` and the stream, where
alias results arrive as ``st2.announcement__<route>`` events (:mod:`st2lite.chatops`).

| variable               | default            | what                            |
|------------------------|--------------------|---------------------------------|
| AEGIS_ST2_API_LISTEN   | ``127.0.0.1:9101`` | st2's API (``ST2_API_URL`` = ``http://HOST:PORT/v1``) |
| AEGIS_ST2_AUTH_LISTEN  | ``127.0.0.1:9100`` | st2's auth service (``ST2_AUTH_URL`` = ``http://HOST:PORT``) |
| AEGIS_ST2_STREAM_LISTEN | ``127.0.0.1:9102`` | st2stream (``ST2_STREAM_URL`` = ``http://HOST:PORT/v1``) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..chatops import ChatOps
from ..settings import _parse_listen as parse_listen
from .auth import AuthStore
from .http import Server, handler_class
from .stream import EventBus, stream_router
from .v1 import Api

__all__ = ["ApiServers", "AuthStore", "St2Handlers", "handler_classes", "listen_addresses", "st2_handlers",
           "start_api", "stream_listen_address"]


def _listen(variable: str, default: str) -> tuple[str, int]:
    try:
        return parse_listen(os.environ.get(variable) or default)
    except ValueError as exc:
        raise ValueError(f"{variable}: {exc}") from exc


def listen_addresses() -> tuple[tuple[str, int], tuple[str, int]]:
    """Where the API and the auth service listen (``AEGIS_ST2_API_LISTEN``, ``AEGIS_ST2_AUTH_LISTEN``)."""
    return _listen("AEGIS_ST2_API_LISTEN", "127.0.0.1:9101"), _listen("AEGIS_ST2_AUTH_LISTEN", "127.0.0.1:9100")


def stream_listen_address() -> tuple[str, int]:
    """Where st2stream's event stream listens (``AEGIS_ST2_STREAM_LISTEN``)."""
    return _listen("AEGIS_ST2_STREAM_LISTEN", "127.0.0.1:9102")


@dataclass
class St2Handlers:
    """Request handler classes of the API, the auth service and the stream, sharing one app."""

    api: type
    auth: type
    stream: type
    #: Announcements to every open stream (close it when the stream server stops).
    bus: EventBus
    chatops: ChatOps


def st2_handlers(runtime: Any, home: Any, auth_store: AuthStore | None = None) -> St2Handlers:
    """Handler classes for servers the caller binds."""
    bus = EventBus()
    chatops = ChatOps(runtime, bus)
    app = Api(runtime, auth_store or AuthStore(home), chatops)
    return St2Handlers(handler_class(app.api_router(), app.authenticate), handler_class(app.auth_router(), None),
                       handler_class(stream_router(bus), app.authenticate), bus, chatops)  # fmt: skip


def handler_classes(runtime: Any, home: Any, auth_store: AuthStore | None = None) -> tuple[type, type]:
    """Request handler classes for the API and the auth service, for a server the caller binds."""
    handlers = st2_handlers(runtime, home, auth_store)
    return handlers.api, handlers.auth


@dataclass
class ApiServers:
    api: Server
    auth: Server
    stream: Server
    bus: EventBus
    chatops: ChatOps

    def stop(self) -> None:
        self.bus.close()  # open streams end, so their threads do too
        self.api.stop()
        self.auth.stop()
        self.stream.stop()


def start_api(runtime: Any, home: Any, auth_store: AuthStore | None = None,
              api_listen: tuple[str, int] | None = None, auth_listen: tuple[str, int] | None = None,
              stream_listen: tuple[str, int] | None = None) -> ApiServers:
    """Serve the API, the auth service and the stream for ``runtime``; users and keys live under ``home``."""
    handlers = st2_handlers(runtime, home, auth_store)
    default_api, default_auth = listen_addresses()
    api = Server(handlers.api, *(api_listen or default_api))
    auth_server = Server(handlers.auth, *(auth_listen or default_auth))
    stream = Server(handlers.stream, *(stream_listen or stream_listen_address()))
    return ApiServers(api=api.start(), auth=auth_server.start(), stream=stream.start(), bus=handlers.bus,
                      chatops=handlers.chatops)
