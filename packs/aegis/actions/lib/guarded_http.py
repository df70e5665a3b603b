"""An HTTP server that slow, silent or vanishing clients cannot exhaust (standard library only).

Used by ``aegis.AlertmanagerWebhookSensor``; nothing in it knows about alerts::

    class Handler(GuardedRequestHandler):
        def answer_too_slow(self):            # the request missed its deadline: say so
            ...
        def do_POST(self):
            body = self.rfile.read(length)
            self.request_received()           # from here on no deadline, no longer pending
            ...

    server = GuardedHTTPServer(("127.0.0.1", 0), Handler, max_pending=64, request_timeout=10,
                               log=logger, on_event=count)   # on_event("refused" | "client_gone" | "pending", delta)
    server.handle_request()  # in the caller's accept loop
    server.server_close()

- **Pending cap.** A connection is *pending* from accept until it delivered a complete
  request, and again while it sends each later one; idle keep-alive connections of a client
  that did are not. Over ``max_pending`` a new connection is answered 503 and closed on the
  accept thread, so a flood of silent or slow connections cannot take every thread.
- **Deadline per request.** A socket timeout (the handler's ``timeout``) bounds each read,
  not the request: a client trickling a byte every few seconds never hits it. From a
  request's first byte it has ``request_timeout`` seconds to arrive whole; past that the
  reading half of its socket is shut, its blocked read returns, and the handler answers
  through ``answer_too_slow()``.
- **Quiet client errors.** socketserver prints a traceback for any error in a handler; a
  client that reset or timed out is logged on one line instead.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_IDLE_LOOK = 1.0  # seconds between looks of the deadline watcher when no request is being received
_REFUSAL = b'{"status": "error", "error": "too many connections waiting, retry later"}'


class Deadlines:
    """One thread that ends, at their deadline, the requests still being received."""

    def __init__(self) -> None:
        self._due: dict[GuardedRequestHandler, float] = {}
        self._cond = threading.Condition()
        self._stop = False
        self._wake_at = 0.0  # when the watcher looks next (monotonic)
        self._thread = threading.Thread(target=self._watch, name="http-deadlines", daemon=True)
        self._thread.start()

    def arm(self, handler: GuardedRequestHandler, seconds: float) -> None:
        due = time.monotonic() + seconds
        with self._cond:
            self._due[handler] = due
            # Woken only when it would look too late: not once per request, which costs a
            # thread switch (and, on a busy machine, a wait for the GIL) on every request.
            if due < self._wake_at:
                self._cond.notify()

    def disarm(self, handler: GuardedRequestHandler) -> None:
        with self._cond:
            self._due.pop(handler, None)

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(5)

    def _watch(self) -> None:
        with self._cond:
            while not self._stop:
                now = time.monotonic()
                for handler in [h for h, due in self._due.items() if due <= now]:
                    del self._due[handler]
                    handler.timed_out = True
                    with contextlib.suppress(OSError):
                        handler.connection.shutdown(socket.SHUT_RD)  # the blocked read returns at once
                self._wake_at = min(self._due.values(), default=now + _IDLE_LOOK)
                self._cond.wait(timeout=self._wake_at - now)


class GuardedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, a cap on pending connections, a deadline per request."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[GuardedRequestHandler],
        max_pending: int,
        request_timeout: float,
        log: Any,
        on_event: Callable[[str, int], None] | None = None,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.max_pending = max_pending
        self.request_timeout = request_timeout
        self.log = log
        self._on_event = on_event or (lambda _kind, _delta: None)
        self.events: collections.Counter[str] = collections.Counter()  # this server's refusals and resets
        self.pending = 0
        self._pending_lock = threading.Lock()
        super().__init__(address, handler)
        self.deadlines = Deadlines()

    def on_event(self, kind: str, delta: int) -> None:
        if kind != "pending":
            self.events[kind] += delta
        self._on_event(kind, delta)

    def server_close(self) -> None:
        super().server_close()
        if getattr(self, "deadlines", None) is not None:  # absent when binding failed
            self.deadlines.stop()

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self._pending_lock:
            if self.pending < self.max_pending:
                self.pending += 1
                self.on_event("pending", 1)
                return True
        self.on_event("refused", 1)
        with contextlib.suppress(OSError):
            request.setblocking(False)  # never wait on a client from the accept thread
            request.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                         b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_REFUSAL), _REFUSAL))  # fmt: skip
        return False

    def hold_pending(self) -> None:
        with self._pending_lock:
            self.pending += 1
            self.on_event("pending", 1)

    def release_pending(self) -> None:
        with self._pending_lock:
            self.pending -= 1
            self.on_event("pending", -1)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            self.client_gone(client_address, exc)
        else:
            self.log.exception("error while serving %s", client_address[0])

    def client_gone(self, client_address: Any, exc: BaseException) -> None:
        self.on_event("client_gone", 1)
        self.log.info("connection from %s ended by the client (%s)", client_address[0], type(exc).__name__)


class GuardedRequestHandler(BaseHTTPRequestHandler):
    """Counts itself pending and arms the deadline per request; see the module docstring."""

    server: GuardedHTTPServer
    protocol_version = "HTTP/1.1"
    timed_out = False  # set by Deadlines when the request was not received in time
    _pending = True  # counted by GuardedHTTPServer.verify_request at accept

    def answer_too_slow(self) -> None:
        """Answer a request that missed its deadline (the connection is then closed)."""
        raise NotImplementedError

    def handle_one_request(self) -> None:
        # Wait for the next request's first byte under the idle timeout (``timeout``); from
        # there the whole request must arrive within request_timeout.
        try:
            if not self.rfile.peek(1):
                self.close_connection = True
                return
        except TimeoutError:  # idle past the read timeout: clients reconnect when they need to
            self.close_connection = True
            return
        except ConnectionError as exc:
            self.close_connection = True
            self.server.client_gone(self.client_address, exc)
            return
        if not self._pending:
            self.server.hold_pending()
            self._pending = True
        self.server.deadlines.arm(self, self.server.request_timeout)
        try:
            super().handle_one_request()
        finally:
            self.request_received()

    def request_received(self) -> None:
        """The request is in (or given up on): no deadline, no longer pending."""
        self.server.deadlines.disarm(self)
        if self._pending:
            self._pending = False
            self.server.release_pending()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.request_received()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The stdlib answers a request line or headers cut short by the deadline with 400.
        if self.timed_out:
            return self.too_slow()
        super().send_error(code, message, explain)

    def too_slow(self) -> None:
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":  # cut short before its version: answer in 1.1
            self.request_version = self.protocol_version
        self.answer_too_slow()
