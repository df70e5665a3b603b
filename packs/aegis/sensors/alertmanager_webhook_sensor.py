"""Alertmanager webhook receiver: one ``aegis.alert`` trigger per alert of each notification.

Point an Alertmanager webhook receiver at it (pack config ``alertmanager``, defaults shown)::

    receivers:
      - name: aegis
        webhook_configs:
          - url: http://127.0.0.1:9180/alertmanager
            send_resolved: true
            http_config: {authorization: {credentials_file: /etc/alertmanager/aegis.token}}

Guarantees, in the order a request meets them:

- At most ``max_pending_connections`` connections may be open without having delivered a
  complete, authenticated request; a connection over the cap gets 503 and is closed at once.
  A request (headers and body) must arrive within ``request_timeout`` seconds of its first
  byte, however slowly the client trickles it (slowloris): past that it gets 408 and the
  connection is closed (``lib/guarded_http.py``). Bodies are read before a processing slot
  is taken, so slow senders never hold the slots that legitimate requests need.
- 404 for other paths, 405 for anything but POST on the webhook path (GET on
  ``health_path`` answers 200 for load balancers), 403 outside ``allowed_sources``,
  401 without the configured bearer token / basic credentials (compared in constant time).
- 411/413/415/400/422 for bodies that can never be valid (no length, several differing or
  signed ``Content-Length`` headers, over ``max_body_bytes``, not ``application/json``,
  invalid UTF-8 or JSON, deep nesting, missing or mistyped fields, payload version other
  than 4). Alertmanager drops a notification answered with a 4xx, so a 4xx is used only
  for input that will never become valid.
- 503 when ``max_concurrent_requests`` are already being processed (Alertmanager retries 5xx).
- Valid alerts of a group are dispatched even when others in it are malformed (a timestamp
  out of range, a lone surrogate, any error while checking one alert); the JSON response
  lists what was rejected and why. 200 is sent only after every dispatch of the request
  returned, i.e. every trigger instance is durably recorded; if recording fails the answer
  is 503 and nothing of the episode is marked as seen, so the retry is not a repeat.
- Group commit: where the sensor service offers ``transaction()`` (st2lite), the incidents,
  open-incident index and trigger instances of a whole request are written in one
  transaction per store, and the keys the request's decisions read are fetched in one
  query first (``prefetch_values``); on st2 each call queries and commits on its own.
- A client that resets its connection is logged on one line, never with a traceback.
- A firing alert whose episode (fingerprint + startsAt) is already known is dispatched with
  ``repeat: true`` and counted on its incident; the remediation rule ignores repeats. The
  decision is serialized per fingerprint, so HA duplicates arriving at once yield one
  non-repeat trigger.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gc
import hmac
import ipaddress
import json
import os
import re
import sys
import threading
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from st2reactor.sensor.base import Sensor

# st2 does not put actions/lib on a sensor's path; st2lite does, this keeps both working.
_LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "actions", "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from alerts import WebhookError, decode_json, parse_webhook, trigger_payload  # noqa: E402
from guarded_http import GuardedHTTPServer, GuardedRequestHandler  # noqa: E402
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
    "max_pending_connections": 64,
    "read_timeout": 10,
    "request_timeout": 10,
}
_LOCK_STRIPES = 256
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")  # digits only: no sign, no spaces, no "1_000"


REQUESTS = metric(Counter, "aegis_webhook_requests", "Webhook requests answered, by HTTP status code.", ("code",))
REQUESTS_REJECTED = metric(
    Counter, "aegis_webhook_rejected_requests", "Whole webhook requests refused, by reason.", ("reason",)
)
ALERTS_RECEIVED = metric(Counter, "aegis_alerts_received", "Alerts received in accepted notifications.")
ALERTS_REJECTED = metric(Counter, "aegis_alerts_rejected", "Alerts rejected, by reason.", ("reason",))
ALERTS_DISPATCHED = metric(Counter, "aegis_alerts_dispatched", "aegis.alert triggers recorded, by alert status.", ("status",))
ALERTS_REPEATED = metric(Counter, "aegis_alerts_repeated", "Firing alerts recorded as repeats of an open episode.")
REQUEST_SECONDS = metric(Histogram, "aegis_webhook_request_seconds", "Time from request to answer.")
PENDING_CONNECTIONS = metric(
    functools.partial(Gauge, multiprocess_mode="livesum"), "aegis_webhook_pending_connections",
    "Connections that have not yet delivered a complete request (capped by max_pending_connections).",
)  # fmt: skip


def _count_connection_event(kind: str, delta: int) -> None:
    """Metrics for what the guarded HTTP server reports (pending connections, refusals, resets)."""
    if kind == "pending":
        PENDING_CONNECTIONS.inc(delta)
    elif kind == "refused":
        REQUESTS.labels(code="503").inc()
        REQUESTS_REJECTED.labels(reason="too_many_pending_connections").inc()
    elif kind == "client_gone":
        REQUESTS_REJECTED.labels(reason="client_gone").inc()


class ConfigError(ValueError):
    """The ``alertmanager`` pack config section is unusable."""


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    section = dict(DEFAULTS)
    section.update((config or {}).get("alertmanager") or {})
    if not str(section["path"]).startswith("/"):
        raise ConfigError(f"alertmanager.path must start with '/', got {section['path']!r}")
    for name in ("port", "max_body_bytes", "max_alerts_per_request", "max_concurrent_requests", "max_pending_connections"):
        if not isinstance(section[name], int) or isinstance(section[name], bool) or section[name] < (0 if name == "port" else 1):
            raise ConfigError(f"alertmanager.{name} must be a positive integer, got {section[name]!r}")
    for name in ("read_timeout", "request_timeout"):
        value = section[name]
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"alertmanager.{name} must be a positive number of seconds, got {value!r}")
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
    section["networks"] = [_network(entry) for entry in section.get("allowed_sources") or []]
    return section


def _network(entry: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """One ``allowed_sources`` entry; host bits set (``10.0.0.1/8``) is an error, not a wider net."""
    try:
        return ipaddress.ip_network(entry, strict=True)
    except (ValueError, TypeError) as exc:
        hint = ""
        with contextlib.suppress(ValueError, TypeError):
            wide = ipaddress.ip_network(entry, strict=False)
            host = str(entry).split("/", 1)[0]
            hint = f"; write {wide} for the whole network or {host}/{wide.max_prefixlen} for the one host"
        raise ConfigError(f"alertmanager.allowed_sources: {entry!r} is not a network ({exc}){hint}") from None


def _check_secret(name: str, value: str) -> None:
    if not value:
        raise ConfigError(f"{name} is empty; set it (e.g. st2 key set ... --encrypt) or use auth type none")
    if "{{" in value:
        raise ConfigError(f"{name} still holds an unrendered template {value!r}; is the datastore key set?")


class AlertmanagerWebhookSensor(Sensor):
    """Receives Alertmanager webhook notifications and dispatches ``aegis.alert`` triggers."""

    def __init__(self, sensor_service: Any, config: dict[str, Any] | None = None) -> None:
        super().__init__(sensor_service=sensor_service, config=config)
        self._log = sensor_service.get_logger(__name__)
        self._server: GuardedHTTPServer | None = None
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._run_thread: int | None = None
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._record_lock = threading.Lock()
        # st2lite's group commit; st2's sensor service has none and commits every call.
        self._transaction = getattr(sensor_service, "transaction", None)
        self._inflight = threading.BoundedSemaphore(1)  # replaced in setup()
        self._incidents = IncidentStore(sensor_service)
        self.settings: dict[str, Any] = {}

    # -- st2 sensor interface ------------------------------------------------------------

    def setup(self) -> None:
        self.settings = _settings(self.config)
        self._inflight = threading.BoundedSemaphore(self.settings["max_concurrent_requests"])
        handler = type("Handler", (_Handler,), {"sensor": self, "timeout": self.settings["read_timeout"]})
        self._server = GuardedHTTPServer(
            (self.settings["host"], self.settings["port"]), handler, max_pending=self.settings["max_pending_connections"],
            request_timeout=self.settings["request_timeout"], log=self._log, on_event=_count_connection_event,
        )  # fmt: skip
        # An alert storm allocates many short-lived dicts: leave what exists now (modules,
        # config) out of every collection, and collect the young generation less often.
        gc.freeze()
        gc.set_threshold(max(gc.get_threshold()[0], 10_000), *gc.get_threshold()[1:])
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
        results = self._record(batch)
        # Counted once everything is durable (a request answered 503 counts nothing), and
        # once per request, not per alert.
        trigger_instances, repeats, firing_repeats, by_status = [], 0, 0, {"firing": 0, "resolved": 0}
        for alert, (ti_id, repeat, reason) in zip(batch.alerts, results, strict=True):
            if ti_id is None:
                ALERTS_REJECTED.labels(reason="payload_schema").inc()
                batch.rejected.append({"index": None, "fingerprint": alert["fingerprint"], "reason": reason})
                continue
            trigger_instances.append(ti_id)
            by_status[alert["status"]] += 1
            repeats += repeat
            firing_repeats += repeat and alert["status"] == "firing"
        for status, count in by_status.items():
            if count:
                ALERTS_DISPATCHED.labels(status=status).inc(count)
        if firing_repeats:
            ALERTS_REPEATED.inc(firing_repeats)
        response = {
            "status": "success" if not batch.rejected else ("partial" if trigger_instances else "rejected"),
            "dispatched": len(trigger_instances),
            "repeats": repeats,
            "rejected": batch.rejected,
            "trigger_instances": trigger_instances,
        }
        return (200 if trigger_instances else 422), response

    def _record(self, batch: Any) -> list[tuple[str | None, bool, str]]:
        """Decide and dispatch every valid alert of a request; ``(trigger instance, repeat, reason)`` each.

        With a group commit the whole request is one transaction, taken under one lock so
        that each request's decisions see the previous request's (HA duplicates arriving at
        once start one remediation). Without it, decisions are serialized per fingerprint.
        """
        if self._transaction is not None:
            with self._record_lock, self._transaction():
                self._incidents.prefetch(batch.alerts)
                return [self._dispatch_alert(alert, batch.group) for alert in batch.alerts]
        results = []
        for alert in batch.alerts:
            with self._locks[hash(alert["fingerprint"]) % _LOCK_STRIPES]:
                results.append(self._dispatch_alert(alert, batch.group))
        return results

    def _dispatch_alert(self, alert: dict[str, Any], group: dict[str, Any]) -> tuple[str | None, bool, str]:
        fingerprint = alert["fingerprint"]
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
        return ti_id, repeat, ""


class _Handler(GuardedRequestHandler):
    """One connection to the webhook; ``sensor`` and ``timeout`` (idle seconds) are set per sensor."""

    sensor: AlertmanagerWebhookSensor
    protocol_version = "HTTP/1.1"  # keep-alive, as Alertmanager's Go client uses it
    disable_nagle_algorithm = True  # no 40 ms Nagle + delayed-ACK stall on a small answer
    wbufsize = -1  # buffered: headers and body leave in one send, flushed after each request
    server_version = "aegis-webhook"
    sys_version = ""

    def answer_too_slow(self) -> None:
        self._error(408, f"request not received within {self.sensor.settings['request_timeout']}s", "request_timeout",
                    close=True)  # fmt: skip

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
            log("%s %s from %s -> %d: %s", self.command or "-", getattr(self, "path", "-"), self.client_address[0], code,
                body.get("error", ""))  # fmt: skip

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
        if self.timed_out:
            return self.too_slow()
        if self._route() != "webhook":
            return self._error(404, "not found", "not_found", close=True)
        denied = sensor.authorize(self.client_address[0], self.headers.get("Authorization"))
        if denied:
            code, message = denied
            headers = {"WWW-Authenticate": f'{settings["auth_scheme"].capitalize()} realm="aegis"'} if code == 401 else None
            return self._error(code, message, "unauthorized" if code == 401 else "forbidden", headers, close=True)
        if self.headers.get("Transfer-Encoding"):
            return self._error(411, "send the body with Content-Length, not Transfer-Encoding", "no_length", close=True)
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return self._error(411, "Content-Length required", "no_length", close=True)
        if len(set(lengths)) > 1:  # which one frames the body? (request smuggling)
            return self._error(400, f"conflicting Content-Length headers {lengths!r}", "bad_length", close=True)
        length_header = lengths[0].strip()
        if not _CONTENT_LENGTH.fullmatch(length_header):
            return self._error(400, f"invalid Content-Length {lengths[0]!r}", "bad_length", close=True)
        length = int(length_header)
        if length > settings["max_body_bytes"]:
            return self._error(413, f"body of {length} bytes exceeds the limit of {settings['max_body_bytes']}",
                               "too_large", close=True)  # fmt: skip
        media_type, _, params = (self.headers.get("Content-Type") or "").partition(";")
        charset = next((p.split("=", 1)[1].strip().strip('"').lower() for p in params.split(";")
                        if p.strip().lower().startswith("charset=")), "utf-8")  # fmt: skip
        if media_type.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
            return self._error(415, f"Content-Type must be application/json (UTF-8), got {self.headers.get('Content-Type')!r}",
                               "wrong_content_type", close=True)  # fmt: skip
        # The body is read before a processing slot is taken: slow senders hold a thread
        # (bounded by max_pending_connections and request_timeout), never a slot.
        try:
            body = self.rfile.read(length)
        except OSError:  # read timeout (stalled client) or reset
            body = b""
        if len(body) != length:
            self.close_connection = True
            if self.timed_out:
                return self.too_slow()
            REQUESTS_REJECTED.labels(reason="incomplete_body").inc()
            sensor._log.warning("dropped a request from %s: body incomplete (stalled for %ss or closed)",
                                self.client_address[0], settings["read_timeout"])  # fmt: skip
            return  # the client stalled or went away mid-body; nobody to answer
        self.request_received()
        if not sensor._inflight.acquire(blocking=False):
            return self._error(503, "overloaded, retry later", "overloaded", {"Retry-After": "1"})
        try:
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
