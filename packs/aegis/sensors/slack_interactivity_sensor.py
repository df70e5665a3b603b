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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# st2 puts actions/lib on the path of actions only; sensors add it themselves.
_LIB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "actions", "lib")
if _LIB not in sys.path:
    sys.path.insert(0, _LIB)

from serving_sensor import ServingSensor  # noqa: E402
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


class _ClickServer(ThreadingHTTPServer):
    daemon_threads = True

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def close(self) -> None:  # never served: shutdown() would wait forever
        self.server_close()


class SlackInteractivitySensor(ServingSensor):
    def setup(self) -> None:
        super().setup()
        section = ((self.config or {}).get("chatops") or {}).get("interactivity") or {}
        if not section.get("enabled"):
            self._logger.info("Slack interactivity disabled (chatops.interactivity.enabled: false)")
            return
        listen = (section.get("host") or "127.0.0.1", int(section.get("port", 9107)))
        path = section.get("path") or "/slack/interactivity"
        clicks = ApprovalClicks(self.config, self.sensor_service, logger=self._logger)
        try:
            # Bound in setup(): the port is taken (or the clash reported) before run() begins.
            self._server = _ClickServer(listen, _handler(clicks, path, self._logger))
        except OSError as exc:  # idle rather than a crash loop; the clicks fail visibly in Slack
            self._logger.error("Slack interactivity not started on %s:%s: %s", *listen, exc)
            return
        self._logger.info("Slack interactivity on http://%s:%s%s", *self._server.server_address[:2], path)
