"""A private Prometheus (Debian ``prometheus``) scraping a small exporter, both on loopback.

    exporter = Exporter({"victim_errors_ratio": 0.9})
    with Prometheus(tmp_dir, [exporter.address]) as prom:
        exporter.set("victim_errors_ratio", 0.0)
        prom.wait_for_value('victim_errors_ratio', 0.0)

Scrapes every second so a test sees a change within a couple of seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

from ._proc import free_port, stop_group, wait_for_port

BINARY = shutil.which("prometheus")


def available() -> str | None:
    return None if BINARY else "Prometheus is not installed: apt-get install -y prometheus"


class Exporter:
    """A /metrics endpoint with gauges a test sets."""

    def __init__(self, values: dict[str, float]) -> None:
        self.values = dict(values)
        self.lock = threading.Lock()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                with exporter.lock:
                    body = "".join(f"# TYPE {k} gauge\n{k} {v}\n" for k, v in exporter.values.items()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, name: str, value: float) -> None:
        with self.lock:
            self.values[name] = value

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Prometheus:
    def __init__(self, base_dir: str, targets: list[str]) -> None:
        self.base_dir = str(base_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": [{"job_name": "exporter", "static_configs": [{"targets": targets}]}]}
        self.config_path = os.path.join(self.base_dir, "prometheus.yml")
        with open(self.config_path, "w") as fh:
            yaml.safe_dump(config, fh)
        self.log_path = os.path.join(self.base_dir, "prometheus.log")
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (owned by the child)
        self._proc = subprocess.Popen(
            [BINARY, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.base_dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        wait_for_port(self.port, timeout, self._proc, self.log_path)
        self._until(lambda: urllib.request.urlopen(self.url + "/-/ready", timeout=2).status == 200, timeout)

    def query(self, expr: str) -> list:
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)["data"]["result"]

    def wait_for_value(self, expr: str, value: float, timeout: float = 30) -> None:
        """Block until ``expr`` returns exactly one sample equal to ``value`` (the scrape landed)."""
        self._until(lambda: [float(s["value"][1]) for s in self.query(expr)] == [value], timeout)

    @staticmethod
    def _until(predicate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("condition not reached")
            time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None:
            stop_group(self._proc)
            self._proc = None

    def __enter__(self) -> Prometheus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
