"""Alertmanager webhook receiver: one ``aegis.alert`` trigger per alert of each notification.

Point an Alertmanager webhook receiver at it (pack config ``alertmanager``, defaults shown)::

    receivers:
      - name: aegis
        webhook_configs:
          - url: http://127.0.0.1:9180/alertmanager
            send_resolved: true
            http_config: {authorization: {credentials_file: /etc/alertmanager/aegis.token}}

Guarantees, in the order a request meets them:

- 404 for other paths, 405 for anything but POST on the webhook path (GET on
  ``health_path`` answers 200 for load balancers), 403 outside ``allowed_sources``,
  401 without the configured bearer token / basic credentials (compared in constant time).
- 503 when ``max_concurrent_requests`` are already being processed (Alertmanager retries 5xx).
- 411/413/415/400/422 for bodies that can never be valid (no length, over ``max_body_bytes``,
  not ``application/json``, invalid UTF-8 or JSON, deep nesting, missing or mistyped fields,
  payload version other than 4). Alertmanager drops a notification answered with a 4xx, so
  a 4xx is used only for input that will never become valid.
- Valid alerts of a group are dispatched even when others in it are malformed; the JSON
  response lists what was rejected and why. 200 is sent only after every dispatch of the
  request returned, i.e. every trigger instance is durably recorded; if recording fails the
  answer is 503 and nothing of the episode is marked as seen, so the retry is not a repeat.
- A firing alert whose episode (fingerprint + startsAt) is already known is dispatched with
  ``repeat: true`` and counted on its incident; the remediation rule ignores repeats. The
  decision is serialized per fingerprint, so HA duplicates arriving at once yield one
  non-repeat trigger.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import Counter, Histogram
from st2reactor.sensor.base import Sensor

# st2 does not put actions/lib on a sensor's path; st2lite does, this keeps both working.
_LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "actions", "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from alerts import WebhookError, decode_json, parse_webhook, trigger_payload  # noqa: E402
from incidents import IncidentStore, incident_id  # noqa: E402
from metrics import metric  # noqa: E402

TRIGGER = "aegis.alert"
DEFAULTS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 9180,
    "path": "/alertmanager",
    "health_path": "/healthz",
    "auth": {"type": "none"},
    "allowed_sources": [],
    "max_body_bytes": 1024 * 1024,
    "max_alerts_per_request": 10_000,
    "max_concurrent_requests": 16,
    "read_timeout": 10,
}
_LOCK_STRIPES = 256


REQUESTS = metric(Counter, "aegis_webhook_requests", "Webhook requests answered, by HTTP status code.", ("code",))
REQUESTS_REJECTED = metric(
    Counter, "aegis_webhook_rejected_requests", "Whole webhook requests refused, by reason.", ("reason",)
)
ALERTS_RECEIVED = metric(Counter, "aegis_alerts_received", "Alerts received in accepted notifications.")
ALERTS_REJECTED = metric(Counter, "aegis_alerts_rejected", "Alerts rejected, by reason.", ("reason",))
ALERTS_DISPATCHED = metric(Counter, "aegis_alerts_dispatched", "aegis.alert triggers recorded, by alert status.", ("status",))
ALERTS_REPEATED = metric(Counter, "aegis_alerts_repeated", "Firing alerts recorded as repeats of an open episode.")
REQUEST_SECONDS = metric(Histogram, "aegis_webhook_request_seconds", "Time from request to answer.")


class ConfigError(ValueError):
    """The ``alertmanager`` pack config section is unusable."""


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    section = dict(DEFAULTS)
    section.update((config or {}).get("alertmanager") or {})
    if not str(section["path"]).startswith("/"):
        raise ConfigError(f"alertmanager.path must start with '/', got {section['path']!r}")
    for name in ("port", "max_body_bytes", "max_alerts_per_request", "max_concurrent_requests"):
        if not isinstance(section[name], int) or section[name] < (0 if name == "port" else 1):
            raise ConfigError(f"alertmanager.{name} must be a positive integer, got {section[name]!r}")
    auth = dict(section.get("auth") or {"type": "none"})
    kind = auth.get("type", "none")
    if kind == "bearer":
        token = auth.get("token") or ""
        _check_secret("alertmanager.auth.token", token)
        expected = token
    elif kind == "basic":
        user, password = auth.get("username") or "", auth.get("password") or ""
        _check_secret("alertmanager.auth.username", user)
        _check_secret("alertmanager.auth.password", password)
        expected = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    elif kind == "none":
        expected = ""
    else:
        raise ConfigError(f"alertmanager.auth.type must be none, bearer or basic, got {kind!r}")
    section["auth_scheme"] = kind
    section["auth_expected"] = expected.encode()
    try:
        section["networks"] = [ipaddress.ip_network(c, strict=False) for c in section.get("allowed_sources") or []]
    except ValueError as exc:
        raise ConfigError(f"alertmanager.allowed_sources: {exc}") from None
    return section


def _check_secret(name: str, value: str) -> None:
    if not value:
        raise ConfigError(f"{name} is empty; set it (e.g. st2 key set ... --encrypt) or use auth type none")
    if "{{" in value:
        raise ConfigError(f"{name} still holds an unrendered template {value!r}; is the datastore key set?")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class AlertmanagerWebhookSensor(Sensor):
    """Receives Alertmanager webhook notifications and dispatches ``aegis.alert`` triggers."""

    def __init__(self, sensor_service: Any, config: dict[str, Any] | None = None) -> None:
        super().__init__(sensor_service=sensor_service, config=config)
        self._log = sensor_service.get_logger(__name__)
        self._server: _Server | None = None
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._run_thread: int | None = None
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._inflight = threading.BoundedSemaphore(1)  # replaced in setup()
        self._incidents = IncidentStore(sensor_service)
        self.settings: dict[str, Any] = {}

    # -- st2 sensor interface ------------------------------------------------------------

    def setup(self) -> None:
        self.settings = _settings(self.config)
        self._inflight = threading.BoundedSemaphore(self.settings["max_concurrent_requests"])
        handler = type("Handler", (_Handler,), {"sensor": self, "timeout": self.settings["read_timeout"]})
        server_cls = _Server
        if ":" in self.settings["host"]:
            server_cls = type("_Server6", (_Server,), {"address_family": __import__("socket").AF_INET6})
        self._server = server_cls((self.settings["host"], self.settings["port"]), handler)
        self._log.info("listening on http://%s:%d%s", self.settings["host"], self.port, self.settings["path"])

    def run(self) -> None:
        # Our own accept loop instead of serve_forever(): st2lite calls cleanup() from a
        # signal handler on this very thread, where shutdown() would wait for itself.
        assert self._server is not None, "setup() first"
        self._run_thread = threading.get_ident()
        self._server.timeout = 0.2
        try:
            while not self._stop.is_set():
                self._server.handle_request()
        finally:
            self._stopped.set()

    def cleanup(self) -> None:
        self._stop.set()
        if self._server is None:
            return
        if self._run_thread is not None and self._run_thread != threading.get_ident():
            self._stopped.wait(5)
        # Let requests already being processed finish their dispatches, briefly.
        deadline = time.monotonic() + 5
        limit = self.settings.get("max_concurrent_requests", 1)
        acquired = 0
        while acquired < limit and time.monotonic() < deadline:
            if self._inflight.acquire(timeout=0.1):
                acquired += 1
        self._server.server_close()
        self._server = None

    def add_trigger(self, trigger: dict[str, Any]) -> None:
        pass

    def update_trigger(self, trigger: dict[str, Any]) -> None:
        pass

    def remove_trigger(self, trigger: dict[str, Any]) -> None:
        pass

    @property
    def port(self) -> int:
        """The bound port (useful with ``port: 0``)."""
        assert self._server is not None
        return self._server.server_address[1]

    # -- request handling --------------------------------------------------------------

    def authorize(self, client_ip: str, authorization: str | None) -> tuple[int, str] | None:
        """``None`` when the client may post, else ``(status, reason)``."""
        networks = self.settings["networks"]
        if networks:
            try:
                address = ipaddress.ip_address(client_ip.split("%", 1)[0])
            except ValueError:
                return 403, "source address not allowed"
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            if not any(address in net for net in networks):
                return 403, "source address not allowed"
        scheme = self.settings["auth_scheme"]
        if scheme == "none":
            return None
        given_scheme, _, credentials = (authorization or "").strip().partition(" ")
        # Always compare, even on a wrong scheme, so timing tells nothing.
        ok = hmac.compare_digest(credentials.strip().encode(), self.settings["auth_expected"])
        if not ok or given_scheme.lower() != scheme:
            return 401, "missing or invalid credentials"
        return None

    def handle_notification(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """Validate a notification body and dispatch its alerts; returns (status, response).

        Raises :class:`WebhookError` for a request that can never be accepted, and lets a
        failure to record propagate (the handler answers 503).
        """
        batch = parse_webhook(decode_json(body), max_alerts=self.settings["max_alerts_per_request"])
        ALERTS_RECEIVED.inc(len(batch.alerts) + len(batch.rejected))
        for item in batch.rejected:
            ALERTS_REJECTED.labels(reason="invalid_alert").inc()
            self._log.warning("rejected alert %d of group %r: %s", item["index"], batch.group["groupKey"], item["reason"])
        trigger_instances, repeats = [], 0
        for alert in batch.alerts:
            ti_id, repeat, reason = self._dispatch_alert(alert, batch.group)
            if ti_id is None:
                ALERTS_REJECTED.labels(reason="payload_schema").inc()
                batch.rejected.append({"index": None, "fingerprint": alert["fingerprint"], "reason": reason})
                continue
            trigger_instances.append(ti_id)
            repeats += repeat
        response = {
            "status": "success" if not batch.rejected else ("partial" if trigger_instances else "rejected"),
            "dispatched": len(trigger_instances),
            "repeats": repeats,
            "rejected": batch.rejected,
            "trigger_instances": trigger_instances,
        }
        return (200 if trigger_instances else 422), response

    def _dispatch_alert(self, alert: dict[str, Any], group: dict[str, Any]) -> tuple[str | None, bool, str]:
        fingerprint = alert["fingerprint"]
        with self._locks[hash(fingerprint) % _LOCK_STRIPES]:
            opened = False
            if alert["status"] == "firing":
                incident, repeat = self._incidents.open_or_repeat(alert)
                inc_id, opened = incident["id"], not repeat
            else:
                inc_id = incident_id(fingerprint, alert["startsAt"])
                known = self._incidents.get(inc_id)
                repeat = bool(known and known["status"] == "closed")
            payload = trigger_payload(alert, group, inc_id, repeat)
            try:
                ti_id = self.sensor_service.dispatch(TRIGGER, payload, trace_tag=f"{inc_id}:{alert['status']}")
            except BaseException:
                if opened:  # the retry must find the episode unseen, or it is never remediated
                    self._incidents.forget(inc_id)
                raise
            if ti_id is None:
                if opened:
                    self._incidents.forget(inc_id)
                return None, repeat, "payload failed the aegis.alert payload_schema (see sensor log)"
            if repeat and alert["status"] == "firing":
                self._incidents.count_repeat(inc_id)
                ALERTS_REPEATED.inc()
            ALERTS_DISPATCHED.labels(status=alert["status"]).inc()
            return ti_id, repeat, ""


class _Handler(BaseHTTPRequestHandler):
    """One connection to the webhook; ``sensor`` and ``timeout`` are set per sensor."""

    sensor: AlertmanagerWebhookSensor
    protocol_version = "HTTP/1.1"  # keep-alive, as Alertmanager's Go client uses it
    disable_nagle_algorithm = True  # headers and body are two writes; Nagle + delayed ACK cost 40 ms
    server_version = "aegis-webhook"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        self.sensor._log.debug("%s " + format, self.client_address[0], *args)

    def _reply(self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None, reason: str = "") -> None:
        data = json.dumps(body).encode()
        # Count before answering: whoever reads /metrics after our answer must see it.
        REQUESTS.labels(code=str(code)).inc()
        if code >= 400 and reason:
            REQUESTS_REJECTED.labels(reason=reason).inc()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        if code >= 400:
            log = self.sensor._log.warning if code < 500 else self.sensor._log.error
            log("%s %s from %s -> %d: %s", self.command, self.path, self.client_address[0], code, body.get("error", ""))

    def _error(self, code: int, message: str, reason: str, headers: dict[str, str] | None = None, close: bool = False) -> None:
        if close:
            self.close_connection = True  # the unread body would otherwise be parsed as a request
        self._reply(code, {"status": "error", "error": message}, headers, reason)

    def _route(self) -> str:
        path = self.path.split("?", 1)[0]
        settings = self.sensor.settings
        if path == settings["path"]:
            return "webhook"
        if settings.get("health_path") and path == settings["health_path"]:
            return "health"
        return "other"

    def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
        route = self._route()
        if route == "health":
            self._reply(200, {"status": "ok"})
        elif route == "webhook":
            self._error(405, "use POST", "method_not_allowed", {"Allow": "POST"})
        else:
            self._error(404, "not found", "not_found")

    def _not_post(self) -> None:
        route = self._route()
        if route == "other":
            self._error(404, "not found", "not_found", close=True)
        else:
            self._error(405, "use POST" if route == "webhook" else "use GET", "method_not_allowed",
                        {"Allow": "POST" if route == "webhook" else "GET"}, close=True)  # fmt: skip

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_post  # noqa: N815

    def do_POST(self) -> None:  # noqa: N802
        started = time.perf_counter()
        try:
            self._post()
        finally:
            REQUEST_SECONDS.observe(time.perf_counter() - started)

    def _post(self) -> None:
        sensor, settings = self.sensor, self.sensor.settings
        if self._route() != "webhook":
            return self._error(404, "not found", "not_found", close=True)
        denied = sensor.authorize(self.client_address[0], self.headers.get("Authorization"))
        if denied:
            code, message = denied
            headers = {"WWW-Authenticate": f'{settings["auth_scheme"].capitalize()} realm="aegis"'} if code == 401 else None
            return self._error(code, message, "unauthorized" if code == 401 else "forbidden", headers, close=True)
        if self.headers.get("Transfer-Encoding"):
            return self._error(411, "send the body with Content-Length, not Transfer-Encoding", "no_length", close=True)
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return self._error(411, "Content-Length required", "no_length", close=True)
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            return self._error(400, f"invalid Content-Length {length_header!r}", "bad_length", close=True)
        if length > settings["max_body_bytes"]:
            return self._error(413, f"body of {length} bytes exceeds the limit of {settings['max_body_bytes']}",
                               "too_large", close=True)  # fmt: skip
        media_type, _, params = (self.headers.get("Content-Type") or "").partition(";")
        charset = next((p.split("=", 1)[1].strip().strip('"').lower() for p in params.split(";")
                        if p.strip().lower().startswith("charset=")), "utf-8")  # fmt: skip
        if media_type.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
            return self._error(415, f"Content-Type must be application/json (UTF-8), got {self.headers.get('Content-Type')!r}",
                               "wrong_content_type", close=True)  # fmt: skip
        if not sensor._inflight.acquire(blocking=False):
            return self._error(503, "overloaded, retry later", "overloaded", {"Retry-After": "1"}, close=True)
        try:
            try:
                body = self.rfile.read(length)
            except OSError:  # read timeout (slow or stalled client) or reset
                body = b""
            if len(body) != length:
                self.close_connection = True
                REQUESTS_REJECTED.labels(reason="incomplete_body").inc()
                sensor._log.warning("dropped a request from %s: body incomplete after %ss",
                                    self.client_address[0], settings["read_timeout"])
                return  # the client stalled or went away mid-body; nobody to answer
            try:
                code, response = sensor.handle_notification(body)
            except WebhookError as exc:
                return self._error(exc.status, exc.reason, exc.metric_reason)
            except Exception as exc:  # recording failed: Alertmanager must retry
                sensor._log.exception("could not record the notification")
                return self._error(503, f"could not record the alerts: {type(exc).__name__}", "record_failed",
                                   {"Retry-After": "5"})  # fmt: skip
            self._reply(code, response, reason="all_alerts_rejected" if code >= 400 else "")
        finally:
            sensor._inflight.release()
