"""A real Prometheus Alertmanager (Debian ``prometheus-alertmanager``) on a loopback port.

    with Alertmanager(tmp_dir, webhook_url, bearer_token="t") as am:
        requests.post(am.url + "/api/v2/alerts", json=[...])

Clustering is off (``--cluster.listen-address=``), timings are short so a test sees
grouping, repeats and resolves within seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import requests
import yaml

from ._proc import free_port, stop_group, wait_for_port

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def available() -> str | None:
    """None when Alertmanager can run here, else why not (for pytest.skip)."""
    return None if BINARY else "Alertmanager is not installed: apt-get install -y prometheus-alertmanager"


class Alertmanager:
    def __init__(
        self,
        base_dir: str,
        webhook_url: str,
        bearer_token: str | None = None,
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "3s",
    ) -> None:
        self.base_dir = str(base_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        os.makedirs(os.path.join(self.base_dir, "data"), exist_ok=True)
        webhook: dict = {"url": webhook_url, "send_resolved": True, "max_alerts": 0}
        if bearer_token:
            webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": bearer_token}}
        config = {
            "route": {
                "receiver": "aegis",
                "group_by": ["alertname"],
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
            },
            "receivers": [{"name": "aegis", "webhook_configs": [webhook]}],
        }
        self.config_path = os.path.join(self.base_dir, "alertmanager.yml")
        with open(self.config_path, "w") as fh:
            yaml.safe_dump(config, fh)
        self.log_path = os.path.join(self.base_dir, "alertmanager.log")
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (owned by the child)
        self._proc = subprocess.Popen(
            [BINARY, f"--config.file={self.config_path}", f"--storage.path={self.base_dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=", "--log.level=debug"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        wait_for_port(self.port, timeout, self._proc, self.log_path)
        deadline = time.monotonic() + timeout
        while requests.get(self.url + "/-/ready", timeout=2).status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("Alertmanager did not become ready")
            time.sleep(0.1)

    def post_alerts(self, alerts: list[dict]) -> None:
        """Inject alerts through API v2 (what Prometheus does)."""
        resp = requests.post(self.url + "/api/v2/alerts", json=alerts, timeout=5)
        resp.raise_for_status()

    def log(self) -> str:
        with open(self.log_path, errors="replace") as fh:
            return fh.read()

    def stop(self) -> None:
        if self._proc is not None:
            stop_group(self._proc)
            self._proc = None

    def __enter__(self) -> Alertmanager:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
