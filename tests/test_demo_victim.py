"""The demo's victim on its own (no supervisor, Redis or PostgreSQL): its faults and deploy API.

Each test starts the real service (``demo/victim/victim.py``, in its own virtualenv) on a
free port and watches it from outside, through /health, /metrics and the files it owns.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from conftest import REPO, free_port, wait_for

from demo.stack import ensure_victim_python

TOKEN = "t0ken"


class Victim:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (base / "state" / "releases").mkdir(parents=True)
        for release in (REPO / "demo" / "victim" / "releases").glob("*.json"):
            shutil.copy(release, base / "state" / "releases" / release.name)
        (base / "state" / "current").symlink_to(base / "state" / "releases" / "v1.json")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(ensure_victim_python()), str(REPO / "demo" / "victim" / "victim.py"), "--port", str(self.port),
             "--state-dir", str(self.base / "state"), "--log-dir", str(self.base / "logs"),
             "--data-dir", str(self.base / "data"), "--volume-bytes", str(16 << 20)],
            env={**os.environ, "VICTIM_DEPLOY_TOKEN": TOKEN, "VICTIM_REDIS_URL": "", "VICTIM_PG_DSN": ""},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

        def up() -> bool:
            assert self.proc.poll() is None, "the victim exited at start"
            try:
                return requests.get(self.url + "/health", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_for(up, timeout=60, what="the victim to answer")

    def metric(self, name: str) -> float:
        """A sample's value, 0 while a labelled series has not been created yet."""
        for line in requests.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def victim(tmp_path):
    v = Victim(tmp_path)
    v.start()
    yield v
    v.stop()


def test_health_metrics_and_steady_traffic(victim):
    assert requests.get(victim.url + "/health", timeout=5).json() == {"status": "ok", "version": "v1"}
    assert 'victim_release_info{version="v1"} 1.0' in requests.get(victim.url + "/metrics", timeout=5).text
    wait_for(lambda: victim.metric('victim_requests_total{code="200"}') >= 5, timeout=30, what="synthetic traffic")
    assert requests.post(victim.url + "/admin/faults/nope", timeout=5).status_code == 404


def test_memory_leak_grows_resident_memory(victim):
    before = victim.metric("process_resident_memory_bytes")
    requests.post(victim.url + "/admin/faults/memory_leak", timeout=5).raise_for_status()
    wait_for(lambda: victim.metric("process_resident_memory_bytes") > before + 64e6, timeout=60, what="RSS to grow 64 MB")


def test_hung_fault_blocks_health_and_metrics_until_cleared(victim):
    requests.post(victim.url + "/admin/faults/hung", timeout=5).raise_for_status()
    for path in ("/health", "/metrics"):
        with pytest.raises(requests.ReadTimeout):
            requests.get(victim.url + path, timeout=1)
    requests.delete(victim.url + "/admin/faults/hung", timeout=5).raise_for_status()
    assert requests.get(victim.url + "/health", timeout=5).ok


def test_log_volume_fills_with_rotated_logs(victim):
    requests.post(victim.url + "/admin/faults/fill_logs", timeout=5).raise_for_status()
    used = 'victim_volume_used_bytes{mountpoint="/var/log/victim",volume="logs"}'
    wait_for(lambda: victim.metric(used) > 0.8 * (16 << 20), timeout=60, what="the log volume to pass 80%")
    assert all(p.name.startswith("victim.log.") for p in (victim.base / "logs").iterdir())
    assert not any((victim.base / "data").iterdir()), "the data volume is another fault"


def test_deploy_api_switches_releases_and_rolls_back(victim):
    assert requests.post(victim.url + "/deploy", json={"action": "rollback"}, timeout=5).status_code == 401
    headers = {"Authorization": f"Bearer {TOKEN}"}
    resp = requests.post(victim.url + "/deploy", json={"action": "deploy", "version": "../v1"}, headers=headers, timeout=5)
    assert resp.status_code == 400
    resp = requests.post(victim.url + "/deploy", json={"action": "deploy", "version": "v2"}, headers=headers, timeout=5)
    assert resp.json() == {"from_version": "v1", "to_version": "v2", "service": "victim"}
    assert victim.proc.wait(10) == 0, "it exits so that its supervisor starts the new release"
    assert os.path.realpath(victim.base / "state" / "current").endswith("v2.json")
    victim.start()  # what supervisord (autorestart) or Docker (restart: always) does
    assert requests.get(victim.url + "/health", timeout=5).json()["version"] == "v2"
    wait_for(lambda: victim.metric('victim_requests_total{code="500"}') >= 3, timeout=30, what="v2's errors")
    resp = requests.post(victim.url + "/deploy", json={"action": "rollback"}, headers=headers, timeout=5)
    assert resp.json() == {"from_version": "v2", "to_version": "v1", "service": "victim"}
    assert victim.proc.wait(10) == 0
    victim.start()
    assert requests.get(victim.url + "/health", timeout=5).json()["version"] == "v1"
