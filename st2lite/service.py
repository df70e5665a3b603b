"""``aegis run``: the runtime as a service, with ``/metrics``, ``/healthz``, ``/readyz``, ``/livez``.

Logs go to stderr; sensor and worker logs to ``$AEGIS_HOME/logs``. SIGTERM and SIGINT
stop sensors and workers and exit 0.

The health endpoints are served before anything else starts, and say honestly how far it is:

| path       | 200 when                                              | probe it for                     |
|------------|-------------------------------------------------------|----------------------------------|
| ``/readyz``  | every enabled sensor is set up and running and every worker pool has a started worker: alerts are taken | Kubernetes ``readinessProbe``; scripts that wait before posting |
| ``/healthz`` | the same as ``/readyz`` (kept for existing probes)    |                                  |
| ``/livez``   | the process serves HTTP (503 only when started and its trigger processor died) | Kubernetes ``livenessProbe`` (never ``/readyz``: a slow start must not be killed) |

Not ready answers 503 with ``{"status": "starting" | "degraded" | "stopping", ...}`` (see
:meth:`st2lite.engine.Runtime.health`). Sensor readiness is an st2lite signal (the sensor
wrapper reports it when ``run()`` begins); StackStorm itself has none.

Another HTTP server (e.g. an API) is added as one more :class:`Endpoint` in ``endpoints()``:
``serve()`` starts each before the runtime and shuts each down after it stops.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .engine import Runtime
from .settings import Settings, StartupError

LOG = logging.getLogger(__name__)


def _health_routes(runtime: Runtime) -> dict[str, Callable[[], tuple[int, bytes, str]]]:
    def ready() -> tuple[int, bytes, str]:
        health = runtime.health()
        return (200 if health["status"] == "ok" else 503), json.dumps(health).encode(), "application/json"

    def live() -> tuple[int, bytes, str]:
        # Alive unless it is wedged: started, not stopping, and the trigger processor died.
        # A slow start or a crash-looping sensor is not a reason to kill the process.
        health = runtime.health()
        wedged = runtime.started and health["status"] != "stopping" and not health["trigger_processor"]
        body = {"status": "wedged" if wedged else "alive", "stopping": health["status"] == "stopping"}
        return (503 if wedged else 200), json.dumps(body).encode(), "application/json"

    def metrics() -> tuple[int, bytes, str]:
        return 200, runtime.metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8"

    return {"/metrics": metrics, "/healthz": ready, "/readyz": ready, "/livez": live}


def _handler(runtime: Runtime) -> type[BaseHTTPRequestHandler]:
    routes = _health_routes(runtime)
    not_found = json.dumps({"error": "not found; try " + ", ".join(routes)}).encode()

    class Handler(BaseHTTPRequestHandler):
        server_version = "st2lite"

        def log_message(self, fmt: str, *args: Any) -> None:
            LOG.debug("%s - " + fmt, self.address_string(), *args)

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                self._send(404, not_found, "application/json")
            else:
                self._send(*route())

    return Handler


@dataclass
class Endpoint:
    """One HTTP server of the service: started before the runtime, stopped after it."""

    name: str
    server: ThreadingHTTPServer
    #: What to print when ready, e.g. ``{"metrics": "http://.../metrics"}``.
    urls: dict[str, str]

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True, name=self.name).start()

    #: Called before the server stops (e.g. to end open event streams).
    closing: Callable[[], None] | None = None

    def stop(self) -> None:
        if self.closing is not None:
            self.closing()
        self.server.shutdown()
        self.server.server_close()


def _bind(name: str, host: str, port: int, handler: type[BaseHTTPRequestHandler], setting: str) -> ThreadingHTTPServer:
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise StartupError(f"{setting}: cannot listen on {host}:{port} for the {name} ({exc.strerror or exc}); "
                           f"is another `aegis run` running? Stop it or set {setting}=HOST:PORT to a free port") from None
    server.daemon_threads = True
    return server


def endpoints(runtime: Runtime, settings: Settings) -> list[Endpoint]:
    """The service's HTTP servers (add one here to serve another)."""
    server = _bind("metrics and health endpoints", settings.api_host, settings.api_port, _handler(runtime), "AEGIS_API_LISTEN")
    base = f"http://{settings.api_host}:{server.server_address[1]}"
    return [Endpoint("health", server, {"metrics": f"{base}/metrics", "health": f"{base}/healthz",
                                        "ready": f"{base}/readyz", "live": f"{base}/livez"}),
            *st2_api_endpoints(runtime, settings)]  # fmt: skip


def st2_api_endpoints(runtime: Runtime, settings: Settings) -> list[Endpoint]:
    """st2's API, auth service and stream for the ``st2`` CLI and ChatOps bridges (``st2lite.api``; users: ``aegis user add``)."""
    from .api import listen_addresses, st2_handlers, stream_listen_address

    handlers = st2_handlers(runtime, settings.home)
    (api_host, api_port), (auth_host, auth_port) = listen_addresses()
    stream_host, stream_port = stream_listen_address()
    api = _bind("st2 API", api_host, api_port, handlers.api, "AEGIS_ST2_API_LISTEN")
    auth = _bind("st2 auth service", auth_host, auth_port, handlers.auth, "AEGIS_ST2_AUTH_LISTEN")
    stream = _bind("st2 stream", stream_host, stream_port, handlers.stream, "AEGIS_ST2_STREAM_LISTEN")
    return [Endpoint("st2-api", api, {"st2 API (ST2_API_URL)": f"http://{api_host}:{api.server_address[1]}/v1"}),
            Endpoint("st2-auth", auth, {"st2 auth (ST2_AUTH_URL)": f"http://{auth_host}:{auth.server_address[1]}"}),
            Endpoint("st2-stream", stream, {"st2 stream (ST2_STREAM_URL)": f"http://{stream_host}:{stream.server_address[1]}/v1"},
                     closing=handlers.bus.close)]  # fmt: skip


def sensor_urls(runtime: Runtime) -> dict[str, str]:
    """Where the packs' listening sensors are reached, from their pack config (best effort).

    A pack config section with ``host`` and ``port`` (and optionally ``path``) is taken for a
    listener, e.g. the Alertmanager webhook.
    """
    urls: dict[str, str] = {}
    for pack_ref, pack_rt in sorted(runtime.packs.items()):
        for section, value in sorted(pack_rt.config.items()):
            if isinstance(value, dict) and "port" in value and "host" in value:
                host = value["host"]
                host = f"[{host}]" if ":" in str(host) else host
                urls[f"{pack_ref}.{section}"] = f"http://{host}:{value['port']}{value.get('path', '')}"
    return urls


def serve(settings: Settings) -> int:
    runtime = Runtime(settings, service=True)
    servers = endpoints(runtime, settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        LOG.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Health first: a probe sees 503 "starting" (not "connection refused") while we start.
    for endpoint in servers:
        endpoint.start()
    LOG.info("starting; state in %s; readiness on %s", settings.home, servers[0].urls["ready"])
    runtime.start()
    announced = False
    while not stop.is_set():
        if not announced and runtime.wait_ready(timeout=0.5):
            announced = True
            urls = {**sensor_urls(runtime), **{k: v for e in servers for k, v in e.urls.items()}}
            LOG.info("st2lite is ready with packs: %s", ", ".join(sorted(runtime.packs)) or "(none)")
            for name, url in urls.items():
                LOG.info("  %-22s %s", name, url)
        if announced:
            stop.wait()
    runtime.stop(grace=settings.shutdown_grace)
    for endpoint in servers:
        endpoint.stop()
    LOG.info("stopped")
    return 0
