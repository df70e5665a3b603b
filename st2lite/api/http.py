"""A small routed JSON server on the standard library's threaded HTTP server.

    router = Router()
    router.add("GET", r"/v1/actions/(?P<ref>[^/]+)", get_action)      # handler(request, ref=...) -> Response
    server = Server(handler_class(router, authenticate=auth_fn), "127.0.0.1", 9101).start()

Handlers raise :class:`ApiError` for st2-style errors (``{"faultstring": ...}``); anything
else becomes a 500 with a one-line message (the traceback goes to the log, never to the
client). A path nobody routes answers 501 naming the endpoint: st2lite serves a subset of
st2's API.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOG = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024


class ApiError(Exception):
    """An error answered as st2 answers it: ``status`` and ``{"faultstring": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    user: str | None = None

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"Failed to parse request body: {exc}") from exc


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class StreamResponse:
    """A response written as ``chunks`` yields them (server-sent events), until the iterator
    ends or the client goes away. No Content-Length and no chunked framing: the body ends
    when the connection closes, which every SSE client reads (sseclient reads the raw socket)."""

    chunks: Iterator[bytes]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[..., "Response | StreamResponse"]


class Router:
    """Routes by method and path regex; the first match wins."""

    def __init__(self, prefixes: tuple[str, ...] = ("",)) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        #: Path prefixes removed before matching (st2's API is at /v1, behind nginx at /api/v1).
        self.prefixes = prefixes

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method, re.compile(pattern + "$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        for prefix in self.prefixes:
            if prefix and not path.startswith(prefix):
                continue
            rest = path[len(prefix):] or "/"
            for route_method, pattern, handler in self._routes:
                m = pattern.match(rest)
                if m and route_method == method:
                    return handler, m.groupdict()
        return None


def handler_class(router: Router, authenticate: Callable[[Request], str | None] | None) -> type[BaseHTTPRequestHandler]:
    """A request handler serving ``router``; ``authenticate`` (if any) runs before every route."""
    class Handler(BaseHTTPRequestHandler):
        server_version = "st2lite"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            LOG.debug("%s - " + fmt, self.address_string(), *args)

        def _stream(self, response: StreamResponse) -> None:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for chunk in response.chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass  # the client went away
            finally:
                close = getattr(response.chunks, "close", None)
                if close:
                    close()

        def _send(self, response: Response | StreamResponse) -> None:
            if isinstance(response, StreamResponse):
                self._stream(response)
                return
            body = b"" if response.body is None else json.dumps(response.body, indent=2, default=str).encode()
            self.send_response(response.status)
            if response.body is not None:
                self.send_header("Content-Type", "application/json")
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            split = urlsplit(self.path)
            path = re.sub(r"/+", "/", split.path)
            if len(path) > 1:
                path = path.rstrip("/")  # st2client asks for "/executions/?..." and ".../children/"
            query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                self._send(Response(400, {"faultstring": "Invalid Content-Length"}))
                return
            if length > MAX_BODY:
                self.close_connection = True  # the unread body must not be taken for the next request
                self._send(Response(413, {"faultstring": "Request body too large"}))
                return
            body = self.rfile.read(length) if length else b""
            request = Request(self.command, path, query, self.headers, body)
            try:
                found = router.match(self.command, path)
                if authenticate is not None:
                    request.user = authenticate(request)  # 401 before anything else, as st2
                if found is None:
                    raise ApiError(501, f"st2lite does not implement {self.command} {path}")
                handler, params = found
                response = handler(request, **params)
            except ApiError as exc:
                response = Response(exc.status, {"faultstring": exc.message})
            except Exception as exc:  # never a traceback to the client
                LOG.exception("%s %s failed", self.command, path)
                response = Response(500, {"faultstring": f"Internal Server Error: {type(exc).__name__}"})
            try:
                self._send(response)
            except (BrokenPipeError, ConnectionResetError):
                LOG.debug("%s %s: the client went away before the answer", self.command, path)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815 - http.server's naming

    return Handler


class Server:
    """A threaded HTTP server in a daemon thread; ``url`` is where it listens."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str, port: int) -> None:
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"http-{self.port}", daemon=True)  # fmt: skip

    def start(self) -> Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
