"""aegis.SlackInteractivitySensor: the Request URL of the Slack app's interactivity (approval buttons).

Serves ``POST <chatops.interactivity.path>`` on ``host:port`` (default 127.0.0.1:9107,
behind the HTTPS reverse proxy Slack talks to) when ``chatops.interactivity.enabled``;
idle otherwise. Each click is verified, authorized and applied by
``lib/slack_interactivity.py``: the inquiry is answered through st2's API
(``chatops.st2_api_url`` + ``chatops.st2_api_key``) and the approval message rewritten.
Dispatches no triggers: the answered inquiry resumes the workflow.
"""

from __future__ import annotations

import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from st2reactor.sensor.base import Sensor

# st2 puts actions/lib on the path of actions only; sensors add it themselves.
_LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "actions", "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from slack_interactivity import MAX_BODY, ApprovalClicks  # noqa: E402


def _handler(clicks: ApprovalClicks, path: str, logger: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            logger.debug(fmt, *args)

        def _send(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?", 1)[0] != path:
                self._send(404, "not found")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._send(400, "bad Content-Length")
                return
            if length > MAX_BODY:
                self._send(413, "too large")
                return
            try:
                status, text = clicks.handle(self.headers, self.rfile.read(length))
            except Exception:  # never a traceback to the network; the click changed nothing
                logger.exception("slack interactivity request failed")
                status, text = 500, "internal error"
            self._send(status, text)

    return Handler


class SlackInteractivitySensor(Sensor):
    def setup(self) -> None:
        self._logger = self.sensor_service.get_logger(name=self.__class__.__name__)
        section = ((self.config or {}).get("chatops") or {}).get("interactivity") or {}
        self._enabled = bool(section.get("enabled"))
        self._listen = (section.get("host") or "127.0.0.1", int(section.get("port") or 9107))
        self._path = section.get("path") or "/slack/interactivity"
        self._server: ThreadingHTTPServer | None = None
        self._stopped = threading.Event()

    def run(self) -> None:
        if not self._enabled:
            self._logger.info("Slack interactivity disabled (chatops.interactivity.enabled: false)")
            self._stopped.wait()
            return
        clicks = ApprovalClicks(self.config, self.sensor_service, logger=self._logger)
        self._server = ThreadingHTTPServer(self._listen, _handler(clicks, self._path, self._logger))
        self._server.daemon_threads = True
        self._logger.info("Slack interactivity on http://%s:%s%s", *self._listen, self._path)
        self._server.serve_forever()

    def cleanup(self) -> None:
        self._stopped.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def add_trigger(self, trigger: dict) -> None:
        pass

    def update_trigger(self, trigger: dict) -> None:
        pass

    def remove_trigger(self, trigger: dict) -> None:
        pass
