"""``aegis run``: the runtime as a service, with ``/metrics`` and ``/healthz``.

Logs go to stderr; sensor and worker logs to ``$AEGIS_HOME/logs``. SIGTERM and SIGINT
stop sensors and workers and exit 0.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .engine import Runtime
from .settings import Settings

LOG = logging.getLogger(__name__)


def _handler(runtime: Runtime) -> type[BaseHTTPRequestHandler]:
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
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, runtime.metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8")
            elif path == "/healthz":
                health = runtime.health()
                code = 200 if health["status"] == "ok" else 503
                self._send(code, json.dumps(health).encode(), "application/json")
            else:
                self._send(404, b'{"error": "not found; try /metrics or /healthz"}', "application/json")

    return Handler


def start_st2_api(runtime: Runtime, settings: Settings) -> Any:
    """st2's API and auth service for the ``st2`` CLI (``st2lite.api``); returns the servers to stop."""
    from .api import start_api

    servers = start_api(runtime, settings.home)
    LOG.info("st2 API on %s/v1, auth on %s (ST2_API_URL, ST2_AUTH_URL; users: aegis user add)",
             servers.api.url, servers.auth.url)
    return servers


def serve(settings: Settings) -> int:
    runtime = Runtime(settings)
    server = ThreadingHTTPServer((settings.api_host, settings.api_port), _handler(runtime))
    server.daemon_threads = True
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        LOG.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=server.serve_forever, daemon=True, name="api").start()
    LOG.info("metrics and health on http://%s:%d (/metrics, /healthz); state in %s",
             settings.api_host, settings.api_port, settings.home)
    st2_api = start_st2_api(runtime, settings)  # before the runtime starts: a port clash fails fast
    runtime.start()
    LOG.info("st2lite is running with packs: %s", ", ".join(sorted(runtime.packs)) or "(none)")
    stop.wait()
    st2_api.stop()
    server.shutdown()
    runtime.stop(grace=settings.shutdown_grace)
    LOG.info("stopped")
    return 0
