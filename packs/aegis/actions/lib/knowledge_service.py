"""A small local HTTP service that keeps the embedding model and the index warm.

Why: importing torch + sentence-transformers costs ~9 s and loading MiniLM ~0.6 s. On a
real StackStorm every python action is a fresh process, so an action that embeds its
query itself pays that on every alert. A long-running process pays it once: on st2 the
pack's sensor container hosts it (``aegis.KnowledgeServiceSensor``), anywhere else
``python aegis_cli.py knowledge serve`` does. Actions ask it first with a short
timeout and fall back to in-process search (cached per warm worker) when it is not
there.

    # server (blocks)
    serve(KnowledgeSettings.from_config(cfg))

    # client / facade used by actions
    hits, source = search(settings, "disk full on /var/log", k=5)   # source: service|in-process

Endpoints (JSON, 127.0.0.1 only): ``GET /healthz``, ``POST /search {"text","k"}``,
``POST /remember {"signature","action","outcome",...}``, ``POST /index {"force"}``.
Every answer names the ``index_dir`` and ``model`` served; a client whose settings differ
ignores the answer, so a service started with another config never feeds wrong results.

Every endpoint but ``/healthz`` needs ``Authorization: Bearer <token>``: a shared secret the
service generates into the st2 datastore on first start (encrypted system key
:data:`TOKEN_KEY`) and the pack's actions read from it (:func:`client_settings`), so only
they can write (a missing token is 401, a wrong one 403). Bodies need an exact
``Content-Length`` (missing: 411; negative, malformed or conflicting: 400; too large: 413)
and arrive within a deadline; an idle connection is closed after ``idle_timeout`` seconds.

    settings = client_settings(self.config, self.action_service)    # in an action

This module imports only the standard library and ``knowledge`` (itself light) at import
time: a client that is answered by the service never imports numpy, faiss or torch.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from knowledge import Hit, KnowledgeError, KnowledgeIndex, KnowledgeSettings

LOG = logging.getLogger("aegis.knowledge_service")
MAX_BODY = 1 << 20
#: The datastore key (system scope, encrypted) holding the service's shared secret.
TOKEN_KEY = "aegis.knowledge_service.token"
#: For ``aegis_cli.py knowledge serve|search`` outside st2: the same secret, from the environment.
TOKEN_ENV = "AEGIS_KNOWLEDGE_TOKEN"
IDLE_TIMEOUT = 10.0
BODY_DEADLINE = 30.0
_CONTENT_LENGTH = re.compile(r"[0-9]{1,12}\Z")


# --------------------------------------------------------------------------- the secret


def read_token(datastore: Any) -> str | None:
    """The shared secret from an st2 action or sensor service; None when not there yet."""
    if datastore is None:
        return None
    try:
        value = datastore.get_value(TOKEN_KEY, local=False, decrypt=True)
    except Exception as exc:  # the datastore is down: the client falls back in-process
        LOG.warning("cannot read the knowledge service token: %s", exc)
        return None
    return str(value) if value else None


def ensure_token(datastore: Any) -> str:
    """The shared secret, generated (and stored encrypted) on first use.

    Two services starting at once may both write; the last write wins and both read it
    back, and a server re-reads the datastore before refusing a token it does not know.
    """
    token = read_token(datastore)
    if token:
        return token
    datastore.set_value(TOKEN_KEY, secrets.token_urlsafe(32), local=False, encrypt=True)
    token = read_token(datastore)
    if not token:
        raise RuntimeError(f"the datastore did not keep {TOKEN_KEY}")
    return token


def client_settings(config: dict[str, Any] | None, datastore: Any = None) -> KnowledgeSettings:
    """The knowledge settings of an action, with the service's secret from the datastore
    (or ``$AEGIS_KNOWLEDGE_TOKEN``); without one the service is skipped (in-process search)."""
    settings = KnowledgeSettings.from_config(config)
    token = read_token(datastore) or os.environ.get(TOKEN_ENV, "")
    return dataclasses.replace(settings, service_token=token) if token else settings


# --------------------------------------------------------------------------- client


class ServiceUnavailable(Exception):
    """The service did not answer usefully; callers fall back to in-process work."""


def _same_target(settings: KnowledgeSettings, answer: dict[str, Any]) -> bool:
    try:
        same_dir = Path(answer.get("index_dir", "")).resolve() == Path(settings.index_dir).resolve()
    except OSError:
        return False
    return same_dir and answer.get("model") == settings.embedding_model


def call_service(
    settings: KnowledgeSettings, method: str, path: str, body: dict[str, Any] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """One request to the service; raises ServiceUnavailable on any problem."""
    url = f"http://{settings.service_host}:{settings.service_port}{path}"
    data = json.dumps(body).encode("utf-8") if body is not None else None
    headers = {"Content-Type": "application/json"}
    if settings.service_token:
        headers["Authorization"] = f"Bearer {settings.service_token}"
    elif path != "/healthz":
        raise ServiceUnavailable("no knowledge service token (the service has not started, or no datastore)")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout or settings.service_timeout) as resp:
            answer = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read().decode("utf-8")).get("error", "")
        except (ValueError, OSError, AttributeError):
            detail = ""
        raise ServiceUnavailable(f"{url}: HTTP {exc.code} {detail}".strip()) from exc
    except (OSError, ValueError) as exc:  # refused, timeout, bad JSON
        raise ServiceUnavailable(f"{url}: {exc}") from exc
    if not isinstance(answer, dict) or not _same_target(settings, answer):
        raise ServiceUnavailable(f"{url} serves another index or model")
    return answer


def search(settings: KnowledgeSettings, text: str, k: int = 5) -> tuple[list[Hit], str]:
    """Search through the service when it answers, else in this process.

    Returns ``(hits, source)`` with source ``"service"`` or ``"in-process"``.
    """
    if settings.use_service:
        try:
            answer = call_service(settings, "POST", "/search", {"text": text, "k": k})
            return [Hit.from_dict(h) for h in answer.get("hits", [])], "service"
        except ServiceUnavailable as exc:
            LOG.debug("knowledge service unavailable, searching in-process: %s", exc)
    return KnowledgeIndex(settings).search(text, k), "in-process"


def remember(settings: KnowledgeSettings, **incident: Any) -> tuple[dict[str, Any], str]:
    """Remember an incident through the service (warm model) or in this process."""
    if settings.use_service:
        try:
            # indexing may embed a few documents: allow more than a search
            answer = call_service(settings, "POST", "/remember", incident, timeout=max(settings.service_timeout, 30))
            return answer["incident"], "service"
        except (ServiceUnavailable, KeyError) as exc:
            LOG.debug("knowledge service unavailable, remembering in-process: %s", exc)
    from dataclasses import asdict

    inc = KnowledgeIndex(settings).remember_incident(**incident)
    return asdict(inc), "in-process"


def rebuild(settings: KnowledgeSettings, force: bool = False) -> tuple[dict[str, Any], str]:
    if settings.use_service:
        try:
            answer = call_service(settings, "POST", "/index", {"force": force}, timeout=max(settings.service_timeout, 600))
            return answer["stats"], "service"
        except (ServiceUnavailable, KeyError) as exc:
            LOG.debug("knowledge service unavailable, indexing in-process: %s", exc)
    return KnowledgeIndex(settings).update(force=force), "in-process"


# --------------------------------------------------------------------------- server


class _HTTPError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


class KnowledgeService:
    """Holds a warm KnowledgeIndex behind a ThreadingHTTPServer.

        svc = KnowledgeService(settings, port=0)   # 0: pick a free port (tests)
        svc.start()                               # warms up, then listens in a thread
        ... svc.port ...
        svc.stop()
    """

    def __init__(
        self, settings: KnowledgeSettings, token: str | Callable[[], str | None], host: str | None = None,
        port: int | None = None, idle_timeout: float = IDLE_TIMEOUT, body_deadline: float = BODY_DEADLINE,
    ) -> None:  # fmt: skip
        """``token``: the shared secret, or a function reading it (the datastore), asked
        again when a request presents another one (a peer may have rotated it)."""
        self.settings = settings
        self.host = host or settings.service_host
        self.port = settings.service_port if port is None else port
        self._token_source = token if callable(token) else (lambda: token)
        self._token = self._token_source() or ""
        if not self._token:
            raise ValueError("the knowledge service needs a shared secret")
        self._token_reread_at = 0.0
        self.idle_timeout = idle_timeout
        self.body_deadline = body_deadline
        self.index = KnowledgeIndex(settings)
        self._lock = threading.Lock()  # one embedding at a time: torch already uses all cores
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.started_at = 0.0
        self._serving = threading.Event()

    def warm_up(self) -> None:
        """Load model and index before listening, so clients never wait on a cold start."""
        self.index.ensure_fresh()
        self.index.search("warm up", k=1)

    def authorized(self, header: str | None) -> int:
        """200 for the right bearer token, 401 without one, 403 for a wrong one."""
        scheme, _, presented = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return 401
        presented = presented.strip()
        if hmac.compare_digest(presented.encode(), self._token.encode()):
            return 200
        # Re-read at most once a second: a wrong token must not turn into datastore load.
        now = time.monotonic()
        if now - self._token_reread_at >= 1.0:
            self._token_reread_at = now
            fresh = self._token_source()
            if fresh:
                self._token = fresh
            if hmac.compare_digest(presented.encode(), self._token.encode()):
                return 200
        return 403

    def _bind(self) -> ThreadingHTTPServer:
        service = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "aegis-knowledge/1"
            timeout = service.idle_timeout  # idle or slow connections are closed

            def log_message(self, fmt: str, *args: Any) -> None:
                LOG.debug("%s " + fmt, self.address_string(), *args)

            def _reply(self, code: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _content_length(self) -> int:
                values = self.headers.get_all("Content-Length") or []
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    raise _HTTPError(411, "send the body with a Content-Length, not chunked")
                if not values:
                    raise _HTTPError(411, "Content-Length is required")
                if len({v.strip() for v in values}) != 1 or not _CONTENT_LENGTH.match(values[0].strip()):
                    raise _HTTPError(400, "Content-Length must be one non-negative integer")
                length = int(values[0])
                if length > MAX_BODY:
                    raise _HTTPError(413, f"request body over {MAX_BODY} bytes")
                return length

            def _body(self) -> dict[str, Any]:
                length = self._content_length()
                deadline = time.monotonic() + service.body_deadline
                chunks, remaining = [], length
                while remaining:
                    if time.monotonic() > deadline:
                        raise _HTTPError(408, "request body too slow")
                    chunk = self.rfile.read1(min(remaining, 65536))
                    if not chunk:
                        raise _HTTPError(400, "request body shorter than its Content-Length")
                    chunks.append(chunk)
                    remaining -= len(chunk)
                data = json.loads(b"".join(chunks) or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("request body must be a JSON object")
                return data

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._reply(200, service._envelope(status=service.index.status(), uptime=time.time() - service.started_at))
                else:
                    self._reply(404, {"error": f"no such path {self.path}"})

            def do_POST(self) -> None:
                self.close_connection = True
                status = service.authorized(self.headers.get("Authorization"))
                if status != 200:
                    reason = "missing bearer token" if status == 401 else "wrong token"
                    self._reply(status, {"error": reason})
                    return
                try:
                    body = self._body()
                    if self.path == "/search":
                        text = body.get("text")
                        k = int(body.get("k", 5))
                        with service._lock:
                            hits = service.index.search(text, k)
                        self._reply(200, service._envelope(hits=[h.to_dict() for h in hits]))
                    elif self.path == "/remember":
                        from dataclasses import asdict

                        with service._lock:
                            inc = service.index.remember_incident(**body)
                        self._reply(200, service._envelope(incident=asdict(inc)))
                    elif self.path == "/index":
                        with service._lock:
                            stats = service.index.update(force=bool(body.get("force")))
                        self._reply(200, service._envelope(stats=stats))
                    else:
                        self._reply(404, {"error": f"no such path {self.path}"})
                except _HTTPError as exc:
                    self._reply(exc.status, {"error": exc.reason})
                except (KnowledgeError, ValueError, TypeError) as exc:
                    self._reply(400, {"error": str(exc)})
                except Exception as exc:  # keep serving; the client falls back
                    LOG.exception("knowledge service request failed")
                    self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        return server

    def _envelope(self, **payload: Any) -> dict[str, Any]:
        return {"index_dir": str(self.settings.index_dir), "model": self.settings.embedding_model, **payload}

    def open(self) -> None:
        """Warm up, then bind the port (OSError when it is taken)."""
        if self._server is None:
            self.warm_up()
            self._server = self._bind()
            self.started_at = time.time()
            LOG.info("knowledge service on %s:%s (index %s)", self.host, self.port, self.settings.index_dir)

    def start(self) -> None:
        """Serve in a background thread (tests, embedding in another process)."""
        self.open()
        assert self._server is not None
        self._thread = threading.Thread(target=self.serve_forever, name="knowledge-service", daemon=True)
        self._thread.start()
        self._serving.wait(5)

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop()`` is called from another one."""
        self.open()
        assert self._server is not None
        self._serving.set()
        try:
            self._server.serve_forever()
        finally:
            self._serving.clear()

    def stop(self) -> None:
        if self._server is not None:
            if self._serving.is_set():  # shutdown() would wait forever on a server never started
                self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    close = stop  # stop() already skips shutdown() for a server that never served


def serve(settings: KnowledgeSettings, host: str | None = None, port: int | None = None) -> None:
    """Run the service in the foreground until interrupted, with ``$AEGIS_KNOWLEDGE_TOKEN``
    as its secret (on st2: ``st2 key get aegis.knowledge_service.token --decrypt``)."""
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise SystemExit(f"set {TOKEN_ENV} to the service's shared secret (the datastore key {TOKEN_KEY})")
    KnowledgeService(settings, token, host=host, port=port).serve_forever()
