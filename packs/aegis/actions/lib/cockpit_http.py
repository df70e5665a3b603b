"""The incident cockpit's web server: sessions from st2 tokens, CSRF, CSP, JSON and live events.

    server = CockpitServer(sensor_service, config, logger)   # binds cockpit.host:port (default 127.0.0.1:9183)
    server.serve_forever()                                   # in the sensor's run()
    server.stop()

Security, in one place:

- **Login** with st2 users: ``POST /login`` (username, password) is passed on to st2's auth
  service (``POST /tokens``, Basic auth); the token stays in this process, in a session the
  browser knows only by a random id in an ``HttpOnly; SameSite=Strict`` cookie. The token
  is checked against st2's API (``GET /user``) at login and again at least every minute, so
  a revoked or expired token ends the session.
- **Nothing answers without a session** except the login page and its stylesheet: pages
  redirect to ``/login`` (303), everything else gets 401.
- **CSRF**: every POST after login carries the session's token in ``X-CSRF-Token`` (the page
  reads it from ``/api/session``) and must come from this origin (``Origin``/``Sec-Fetch-Site``);
  the login form is checked by origin.
- **Headers**: a strict ``Content-Security-Policy`` (``default-src 'self'``, no inline script
  or style, ``frame-ancestors 'none'``), ``X-Content-Type-Options: nosniff``, no caching, no
  referrer outside this origin. Alert and log text reaches the page as JSON and is put in with ``textContent``.

Approvals are answered through st2's API with the user's own token (so st2 records who),
after the ChatOps permission check (``chatops.Permissions``: config ``chatops.approvers``
and the datastore key). The mode is changed by running ``aegis.set_mode`` through st2's
API as that user, which checks the same list and records who changed it and why.
"""

from __future__ import annotations

import base64
import hmac
import json
import mimetypes
import secrets
import threading
import time
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from chatops import Permissions
from cockpit_data import CockpitData, mttr_svg
from lifecycle import Lifecycle
from st2_api import St2API, St2Error

STATIC_DIR = Path(__file__).resolve().parents[2] / "cockpit"
COOKIE = "aegis_cockpit"
MAX_BODY = 64 * 1024
REVALIDATE_SECONDS = 60
EVENT_POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")  # fmt: skip
#: Files served without a session: the login page and what it needs (no data in them).
PUBLIC = {"/login": "login.html", "/static/login.css": "login.css"}
#: Pages of the single-page app (all the same document; the script routes by path).
PAGES = ("/", "/incidents", "/approvals", "/mode", "/knowledge", "/impact")
STATIC = {"/static/app.js": "app.js", "/static/style.css": "style.css"}


class Session:
    def __init__(self, user: str, token: str, expires: float) -> None:
        self.user, self.token, self.expires = user, token, expires
        self.csrf = secrets.token_urlsafe(32)
        self.checked = time.monotonic()


class Sessions:
    """Sessions by random id, in this process (a restart logs everyone out)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def create(self, user: str, token: str, expires: float) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._by_id = {k: s for k, s in self._by_id.items() if s.expires > now}
            self._by_id[sid] = Session(user, token, expires)
        return sid

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
            if session is not None and session.expires <= time.time():
                self._by_id.pop(sid, None)
                return None
            return session

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)


class Changes:
    """One poller for every live list: wakes the waiting event streams when the datastore changes."""

    def __init__(self, data: CockpitData, logger: Any) -> None:
        self._data, self._logger = data, logger
        self._cond = threading.Condition()
        self.stamp = ""
        self.listeners = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._poll, daemon=True, name="cockpit-changes").start()

    def _poll(self) -> None:
        while not self.stopped.wait(EVENT_POLL_SECONDS):
            if not self.listeners:
                continue
            try:
                stamp = self._data.change_stamp()
            except Exception as exc:  # noqa: BLE001 - a datastore hiccup must not end the poller
                self._logger.warning("cockpit: reading the datastore for changes failed: %s", exc)
                continue
            if stamp != self.stamp:
                with self._cond:
                    self.stamp = stamp
                    self._cond.notify_all()

    def wait(self, seen: str, timeout: float) -> str:
        with self._cond:
            self._cond.wait_for(lambda: self.stamp != seen or self.stopped.is_set(), timeout=timeout)
            return self.stamp

    def listen(self, delta: int) -> None:
        with self._cond:
            self.listeners += delta

    def stop(self) -> None:
        self.stopped.set()
        with self._cond:
            self._cond.notify_all()


class CockpitServer:
    def __init__(self, datastore: Any, config: dict[str, Any] | None, logger: Any) -> None:
        self.config = config or {}
        section = self.config.get("cockpit") or {}
        self.section = section
        self.logger = logger
        self.datastore = datastore
        self.data = CockpitData(datastore, self.config)
        self.sessions = Sessions()
        self.changes = Changes(self.data, logger)
        self.api_url = str(section.get("st2_api_url") or "http://127.0.0.1:9101/v1").rstrip("/")
        self.auth_url = str(section.get("st2_auth_url") or "http://127.0.0.1:9100").rstrip("/")
        self.api_key = str(section.get("st2_api_key") or "")
        self.session_seconds = int(section.get("session_minutes") or 720) * 60
        self.httpd = ThreadingHTTPServer((section.get("host") or "127.0.0.1", int(section.get("port", 9183))), _handler(self))
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]

    # -- st2 ---------------------------------------------------------------------------------

    def reader_api(self) -> St2API | None:
        """The API as the cockpit reads it (its API key; else nothing)."""
        return St2API(self.api_url, api_key=self.api_key) if self.api_key else None

    def user_api(self, session: Session) -> St2API:
        return St2API(self.api_url, token=session.token)

    def login(self, username: str, password: str) -> tuple[str | None, str]:
        """A new session id for valid st2 credentials, or ``(None, why)``."""
        if not username or not password or len(username) > 200 or len(password) > 1000:
            return None, "give a user name and a password"
        try:
            resp = requests.post(f"{self.auth_url}/tokens", json={}, timeout=10,
                                 headers={"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()})
        except requests.RequestException as exc:
            self.logger.warning("cockpit: st2 auth at %s unreachable: %s", self.auth_url, type(exc).__name__)
            return None, "StackStorm's auth service is not reachable"
        if resp.status_code != 201:
            self.logger.info("cockpit: login refused for %r (auth %s)", username[:80], resp.status_code)
            return None, "wrong user name or password"
        token = resp.json()
        try:
            user = St2API(self.api_url, token=token["token"]).user().get("username") or token.get("user") or username
        except (St2Error, KeyError) as exc:
            self.logger.warning("cockpit: a fresh token did not validate against the API: %s", exc)
            return None, "StackStorm's API did not accept the token"
        expires = min(time.time() + self.session_seconds, _epoch(token.get("expiry")) or float("inf"))
        self.logger.info("cockpit: %s logged in", user)
        return self.sessions.create(user, token["token"], expires), ""

    def still_valid(self, session: Session) -> bool:
        """Re-check the token with the API at most every :data:`REVALIDATE_SECONDS`."""
        if time.monotonic() - session.checked < REVALIDATE_SECONDS:
            return True
        try:
            self.user_api(session).user()
        except St2Error as exc:
            # Only st2 saying no ends the session; an API that is slow or down does not log
            # people out in the middle of an incident (their next change fails on its own).
            return exc.status not in (401, 403)
        session.checked = time.monotonic()
        return True

    # -- changes -----------------------------------------------------------------------------

    def decide(self, session: Session, inquiry_id: str, approved: bool, reason: str) -> tuple[int, dict[str, Any]]:
        from approvals import answer, incident_of

        api = self.user_api(session)
        try:
            inquiry = api.inquiry(inquiry_id)
            incident_id = incident_of(self.reader_api() or api, inquiry_id)
        except St2Error as exc:
            return (404 if exc.status == 404 else 502), {"error": str(exc)}
        life = Lifecycle(self.datastore)
        verb = "approve" if approved else "deny"
        refusal = Permissions(self.config, self.data.read_key).refusal(session.user, verb)
        if refusal:
            if incident_id:
                life.event(incident_id, None, f"{verb} refused: {session.user} is not an approver (cockpit)", user=session.user)
            self.logger.warning("cockpit: %s may not %s inquiry %s", session.user, verb, inquiry_id)
            return 403, {"error": f"{session.user} may not {verb}: not on the approvers list (chatops.approvers)"}
        try:
            response = answer(api, inquiry, approved=approved, user=session.user, reason=reason)
        except (St2Error, ValueError) as exc:
            return 409, {"error": f"could not answer: {exc}"}
        past = "approved" if approved else "denied"
        if incident_id:
            life.event(incident_id, None, f"{past} by {session.user} via the cockpit" + (f": {reason[:200]}" if reason else ""),
                       user=session.user, inquiry=inquiry_id)  # fmt: skip
        self.logger.warning("cockpit: inquiry %s %s by %s", inquiry_id, past, session.user)
        return 200, {"inquiry": inquiry_id, "incident_id": incident_id, "decision": past, "response": response}

    def set_mode(self, session: Session, mode: str, reason: str) -> tuple[int, dict[str, Any]]:
        """Run ``aegis.set_mode`` as the user (it checks the approvers and records who and why)."""
        if mode not in ("monitor", "advisory", "auto", "clear"):
            return 400, {"error": "mode is one of monitor, advisory, auto, clear"}
        api = self.user_api(session)
        try:
            execution = api.run("aegis.set_mode", {"mode": mode, "reason": reason[:500], "chat_user": session.user,
                                                   "channel": "cockpit"})  # fmt: skip
            deadline = time.monotonic() + 60
            while execution.get("status") not in ("succeeded", "failed", "timeout", "canceled", "abandoned"):
                if time.monotonic() > deadline:
                    return 504, {"error": f"aegis.set_mode ({execution.get('id')}) did not finish in 60 s"}
                time.sleep(0.1)  # polling st2's API for the execution's end (no push for one execution)
                execution = api.execution_with_result(execution["id"])
        except St2Error as exc:
            return 502, {"error": str(exc)}
        result = (execution.get("result") or {}).get("result") or {}
        if execution["status"] != "succeeded":
            status = 403 if isinstance(result, dict) and result.get("refused") else 500
            return status, {"error": (result.get("reply") if isinstance(result, dict) else None) or f"aegis.set_mode {execution['status']}",
                            "execution": execution["id"]}  # fmt: skip
        return 200, {**self.data.mode(), "execution": execution["id"]}

    # -- serving -----------------------------------------------------------------------------

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self.changes.stop()
        self.httpd.shutdown()
        self.httpd.server_close()

    def close(self) -> None:
        """Release the port of a server that never served (``shutdown()`` would wait forever)."""
        self.changes.stop()
        self.httpd.server_close()


def _epoch(value: Any) -> float | None:
    from timestamps import epoch_seconds

    if not isinstance(value, str):
        return None
    text = value.replace("+00:00", "Z")
    if "." in text and text.endswith("Z"):
        head, frac = text[:-1].split(".", 1)
        text = f"{head}.{frac[:6]}Z"
    return epoch_seconds(text)


def _handler(app: CockpitServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "aegis-cockpit"
        sys_version = ""
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            pass  # requests are not logged (paths carry nothing secret, but the log stays about decisions)

        # -- plumbing ----------------------------------------------------------------------

        def _headers(self, code: int, content_type: str, length: int | None, extra: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "same-origin")  # no-referrer would make browsers send Origin: null
            self.send_header("Cache-Control", "no-store")
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()

        def _send(self, code: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
            self._headers(code, content_type, len(body), extra)
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, code: int, value: Any, extra: dict[str, str] | None = None) -> None:
            self._send(code, json.dumps(value, default=str).encode(), "application/json; charset=utf-8", extra)

        def _file(self, name: str) -> None:
            path = STATIC_DIR / name
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if content_type.startswith("text/") or content_type.endswith("javascript"):
                content_type += "; charset=utf-8"
            self._send(200, path.read_bytes(), content_type)

        def _sid(self) -> str | None:
            cookie = SimpleCookie()
            try:
                cookie.load(self.headers.get("Cookie") or "")
            except Exception:  # noqa: BLE001 - a malformed cookie is no session
                return None
            morsel = cookie.get(COOKIE)
            return morsel.value if morsel else None

        def _session(self) -> Session | None:
            session = app.sessions.get(self._sid())
            if session is not None and not app.still_valid(session):
                app.sessions.drop(self._sid())
                return None
            return session

        def _refuse(self, path: str) -> None:
            if self.command in ("GET", "HEAD") and (path in PAGES or path.startswith("/incidents/")):
                self._send(303, b"", "text/plain", {"Location": "/login"})
            else:
                self._json(401, {"error": "log in first (POST /login)"})

        def _same_origin(self) -> bool:
            site = self.headers.get("Sec-Fetch-Site")
            if site and site not in ("same-origin", "none"):
                return False
            origin = self.headers.get("Origin")
            if origin and origin != "null":
                return urlsplit(origin).netloc == (self.headers.get("Host") or "")
            return origin != "null"

        def _body(self) -> bytes | None:
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self.close_connection = True
                self._json(411, {"error": "Content-Length required"})
                return None
            if int(length) > MAX_BODY:
                self.close_connection = True
                self._json(413, {"error": f"body over {MAX_BODY} bytes"})
                return None
            return self.rfile.read(int(length))

        # -- GET ---------------------------------------------------------------------------

        def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
            self.do_GET()

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            path, query = url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
            if path in PUBLIC:
                return self._file(PUBLIC[path])
            if path == "/favicon.ico":
                return self._send(204, b"", "image/x-icon")
            session = self._session()
            if session is None:
                return self._refuse(path)
            try:
                self._get(session, path, query)
            except (BrokenPipeError, ConnectionResetError):
                pass
            except Exception as exc:  # noqa: BLE001 - one bad view must not kill the connection without an answer
                app.logger.exception("cockpit: GET %s failed", path)
                self._json(500, {"error": f"{type(exc).__name__}: {exc}"[:300]})

        def _get(self, session: Session, path: str, query: dict[str, str]) -> None:
            if path in PAGES or path.startswith("/incidents/"):
                return self._file("index.html")
            if path in STATIC:
                return self._file(STATIC[path])
            if path == "/api/session":
                return self._json(200, {"user": session.user, "csrf": session.csrf,
                                        "may_decide": Permissions(app.config, app.data.read_key).allowed(session.user)})  # fmt: skip
            if path == "/api/incidents":
                return self._json(200, {"incidents": app.data.incident_rows(query.get("state", ""), query.get("service", ""))})
            if path.startswith("/api/incidents/"):
                detail = app.data.incident_detail(path.rsplit("/", 1)[1], app.reader_api())
                return self._json(200, detail) if detail else self._json(404, {"error": "no such incident"})
            if path == "/api/approvals":
                pending, error = app.data.pending_approvals(app.reader_api())
                return self._json(200, {"approvals": pending, "error": error})
            if path == "/api/mode":
                return self._json(200, app.data.mode())
            if path == "/api/impact":
                return self._json(200, app.data.impact())
            if path == "/api/impact/mttr.svg":
                return self._send(200, mttr_svg(app.data.impact()["mttr_buckets"]).encode(), "image/svg+xml")
            if path == "/api/knowledge":
                return self._knowledge(query.get("q", ""))
            if path.startswith("/api/runbooks/"):
                return self._runbook(path.rsplit("/", 1)[1])
            if path == "/events":
                return self._events(session)
            return self._json(404, {"error": "not found"})

        def _knowledge(self, text: str) -> None:
            from knowledge_service import search

            from knowledge import KnowledgeSettings

            text = text.strip()[:300]
            if not text:
                return self._json(400, {"error": "give q"})
            try:
                hits, source = search(KnowledgeSettings.from_config(app.config), text, k=8)
            except Exception as exc:  # noqa: BLE001 - the index may not be built yet
                return self._json(503, {"error": f"knowledge search failed: {exc}"})
            return self._json(200, {"hits": [h.__dict__ for h in hits], "source": source})

        def _runbook(self, rb_id: str) -> None:
            from knowledge import KnowledgeSettings, load_runbooks

            settings = KnowledgeSettings.from_config(app.config)
            try:
                books = load_runbooks(settings.runbooks_dir) if settings.runbooks_dir else []
            except Exception as exc:  # noqa: BLE001
                return self._json(503, {"error": f"runbooks: {exc}"})
            book = next((b for b in books if b.id == rb_id), None)
            if book is None:
                return self._json(404, {"error": "no such runbook"})
            return self._json(200, {"id": book.id, "title": book.title, "action": book.action, "safety": book.safety,
                                    "markdown": Path(book.path).read_text(encoding="utf-8")})  # fmt: skip

        def _events(self, session: Session) -> None:
            """Server-sent events: ``incidents`` whenever an incident or its timeline changes."""
            self._headers(200, "text/event-stream; charset=utf-8", None, {"Connection": "close"})
            self.close_connection = True
            app.changes.listen(1)
            try:
                seen = app.changes.stamp
                self.wfile.write(b"retry: 1000\n\n")
                self.wfile.flush()
                last_beat = time.monotonic()
                while not app.changes.stopped.is_set() and app.sessions.get(self._sid()) is session:
                    stamp = app.changes.wait(seen, timeout=1.0)
                    if stamp != seen:
                        seen = stamp
                        self.wfile.write(f"event: incidents\ndata: {json.dumps({'stamp': stamp})}\n\n".encode())
                        self.wfile.flush()
                    elif time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                        self.wfile.write(b": keep-alive\n\n")
                        self.wfile.flush()
                        last_beat = time.monotonic()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                app.changes.listen(-1)

        # -- POST --------------------------------------------------------------------------

        def do_POST(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            raw = self._body()  # read first: the connection is kept alive, the next request follows it
            if raw is None:
                return None
            if not self._same_origin():
                return self._json(403, {"error": "cross-site request refused"})
            if path == "/login":
                return self._login(raw)
            session = self._session()
            if session is None:
                return self._refuse(path)
            token = self.headers.get("X-CSRF-Token") or ""
            if not hmac.compare_digest(token.encode(), session.csrf.encode()):
                return self._json(403, {"error": "missing or wrong CSRF token"})
            if path == "/logout":
                app.sessions.drop(self._sid())
                return self._json(200, {"ok": True}, {"Set-Cookie": f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"})
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._json(400, {"error": "the body is not JSON"})
            if not isinstance(body, dict):
                return self._json(400, {"error": "the body is a JSON object"})
            if path.startswith("/api/approvals/"):
                decision = body.get("decision")
                if decision not in ("approve", "deny"):
                    return self._json(400, {"error": "decision is approve or deny"})
                code, answer = app.decide(session, path.rsplit("/", 1)[1], decision == "approve", str(body.get("reason") or ""))
                return self._json(code, answer)
            if path == "/api/mode":
                if body.get("confirm") is not True:
                    return self._json(400, {"error": "a mode change must be confirmed (confirm: true)"})
                code, answer = app.set_mode(session, str(body.get("mode") or ""), str(body.get("reason") or ""))
                return self._json(code, answer)
            return self._json(404, {"error": "not found"})

        def _login(self, raw: bytes) -> None:
            form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
            sid, why = app.login(form.get("username", ""), form.get("password", ""))
            if sid is None:
                return self._send(303, b"", "text/plain", {"Location": "/login?error=" + ("auth" if "wrong" in why else "unavailable")})
            cookie = f"{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict; Max-Age={app.session_seconds}"
            return self._send(303, b"", "text/plain", {"Location": "/", "Set-Cookie": cookie})

    return Handler

