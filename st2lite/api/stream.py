"""st2stream's event stream: server-sent events at ``/v1/stream`` (st2's port 9102).

    bus = EventBus()
    bus.publish("st2.announcement__errbot", {"payload": {"message": "done", "channel": "#ops"}, "trace_context": None})
    router = stream_router(bus)            # GET /v1/stream[?events=st2.announcement__*,...]

What st2stream sends (st2stream/controllers/v1/stream.py): ``event: <name>`` and
``data: <json>`` per event, a bare newline as a heartbeat when nothing happened for a
while, ``Content-Type: text/event-stream``. ``events`` filters by name with shell-style
patterns; the default is st2's whitelist (announcements, execution and liveaction events).
st2lite publishes announcements (ChatOps results, :mod:`st2lite.chatops`); execution
events are not published (subset). A client that connects later does not see earlier
events, as on st2 (the stream is a live queue, not a log).
"""

from __future__ import annotations

import fnmatch
import json
import os
import queue
import threading
from collections.abc import Iterator
from typing import Any

from .http import Request, Router, StreamResponse

__all__ = ["DEFAULT_EVENTS", "EventBus", "stream_router"]

#: st2stream's DEFAULT_EVENTS_WHITELIST.
DEFAULT_EVENTS = (
    "st2.announcement__*",
    "st2.execution__create", "st2.execution__update", "st2.execution__delete",
    "st2.liveaction__create", "st2.liveaction__update", "st2.liveaction__delete",
)  # fmt: skip
#: Seconds without an event before a heartbeat newline (st2's ``stream.heartbeat``, 25).
HEARTBEAT = float(os.environ.get("AEGIS_ST2_STREAM_HEARTBEAT", "25"))
_CLOSED = object()


class EventBus:
    """Fan-out of named events to every connected stream (one bounded queue per client)."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue] = []
        self._queue_size = queue_size
        self._closed = False

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(self._queue_size)
        with self._lock:
            if self._closed:
                q.put(_CLOSED)
            self._subscribers.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            if q in self._subscribers:
                self._subscribers.remove(q)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, event: str, body: Any) -> None:
        with self._lock:
            targets = list(self._subscribers)
        for q in targets:
            try:
                q.put_nowait((event, body))
            except queue.Full:  # a client that stopped reading loses events, not the runtime
                pass

    def close(self) -> None:
        """End every open stream (the runtime stops)."""
        with self._lock:
            self._closed = True
            targets = list(self._subscribers)
        for q in targets:
            try:
                q.put_nowait(_CLOSED)
            except queue.Full:
                q.get_nowait()
                q.put_nowait(_CLOSED)


def _sse(bus: EventBus, q: queue.Queue, patterns: list[str], heartbeat: float) -> Iterator[bytes]:
    try:
        while True:
            try:
                item = q.get(timeout=heartbeat)
            except queue.Empty:
                yield b"\n"
                continue
            if item is _CLOSED:
                return
            event, body = item
            if any(fnmatch.fnmatchcase(event, p) for p in patterns):
                yield f"event: {event}\ndata: {json.dumps(body, default=str)}\n\n".encode()
    finally:
        bus.unsubscribe(q)


def stream_router(bus: EventBus, heartbeat: float | None = None) -> Router:
    def get_stream(request: Request) -> StreamResponse:
        events = [e.strip() for e in (request.query.get("events") or "").split(",") if e.strip()]
        # Subscribed before the headers go out: an event published once the client sees
        # the response is never lost.
        chunks = _sse(bus, bus.subscribe(), events or list(DEFAULT_EVENTS), HEARTBEAT if heartbeat is None else heartbeat)
        headers = {"X-Accel-Buffering": "no", "Cache-Control": "no-cache", "Content-Type": "text/event-stream; charset=UTF-8"}
        return StreamResponse(chunks, 200, headers)

    router = Router(prefixes=("/stream/v1", "/v1", ""))
    router.add("GET", "/stream", get_stream)
    return router
