"""Shared fixtures for the runtime's tests.

Pack virtualenvs are shared between tests (``AEGIS_VIRTUALENVS``, default ``.venvs`` in the
repository), since building the aegis pack's takes minutes; everything else lives in a
fresh ``AEGIS_HOME`` per test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
FIXTURE_PACKS = REPO / "tests" / "fixtures" / "packs"
VIRTUALENVS = Path(os.environ.get("AEGIS_VIRTUALENVS", REPO / ".venvs"))
AEGIS = [sys.executable, "-m", "st2lite.cli"]

sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def aegis_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a runtime with its own home and free ports."""
    env = dict(os.environ)
    env.update(
        AEGIS_HOME=str(tmp_path / "home"),
        AEGIS_VIRTUALENVS=str(VIRTUALENVS),
        AEGIS_API_LISTEN=f"127.0.0.1:{free_port()}",
        AEGIS_ST2_API_LISTEN=f"127.0.0.1:{free_port()}",
        AEGIS_ST2_AUTH_LISTEN=f"127.0.0.1:{free_port()}",
        AEGIS_ST2_STREAM_LISTEN=f"127.0.0.1:{free_port()}",
        PYTHONPATH=str(REPO),
    )
    return env


@pytest.fixture
def make_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., object]]:
    """Build in-process runtimes over a packs directory; they are stopped after the test."""
    from st2lite.engine import Runtime
    from st2lite.settings import Settings

    runtimes: list[Runtime] = []

    def factory(packs_dir: Path, home: Path | None = None, **overrides) -> Runtime:
        settings = Settings.from_env(
            home=home or tmp_path / "home", packs_dir=packs_dir, virtualenvs_dir=VIRTUALENVS, **overrides
        )
        runtime = Runtime(settings)
        runtimes.append(runtime)
        return runtime

    yield factory
    for runtime in runtimes:
        runtime.stop()


ST2CLIENT_VENV = Path(os.environ.get("ST2CLIENT_VENV", REPO / ".venvs" / "st2client"))


def run_st2(args: list[str], api_url: str, auth_url: str, home: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """The real ``st2`` CLI (st2client 3.9.0, built by scripts/setup.sh) against st2lite's API.

    ``home`` is the user's home (its ``.st2/config`` holds the credentials); ``env`` adds
    ``ST2_API_KEY``, ``ST2_AUTH_TOKEN`` or ``ST2_CONFIG_FILE``.
    """
    st2 = ST2CLIENT_VENV / "bin" / "st2"
    if not st2.exists():
        pytest.fail(f"st2client is not installed at {ST2CLIENT_VENV}: run scripts/setup.sh (it builds .venvs/st2client)")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ST2_")}
    full_env.update(HOME=str(home), ST2_BASE_URL="http://127.0.0.1", ST2_API_URL=f"{api_url}/v1", ST2_AUTH_URL=auth_url)
    full_env.update(env or {})
    return subprocess.run([str(st2), *args], env=full_env, capture_output=True, text=True, timeout=timeout)


def write_st2_config(home: Path, username: str, password: str) -> None:
    """``~/.st2/config`` with the user's credentials (the CLI gets a token from the auth service)."""
    (home / ".st2").mkdir(parents=True, exist_ok=True)
    (home / ".st2" / "config").write_text(
        f"[credentials]\nusername = {username}\npassword = {password}\n[cli]\ncache_token = False\n"
    )


def start_runtime(env: dict[str, str], log_file: Path, new_session: bool = False) -> subprocess.Popen:
    """`aegis run` in the background, its log in a file (a pipe nobody reads would block it).

    ``new_session``: in a process group of its own, as a terminal's foreground job (for
    sending it a Ctrl-C with ``os.killpg``).
    """
    with open(log_file, "ab") as log:
        return subprocess.Popen([*AEGIS, "run"], env=env, cwd=REPO, stdout=log, stderr=log, start_new_session=new_session)


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*AEGIS, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def cli_json(env: dict[str, str], *args: str) -> Any:
    """``aegis ARGS`` that prints JSON (``--json`` lists, ``key get``): its parsed output."""
    result = run_cli(list(args), env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def aegis_service(aegis_env, tmp_path: Path):
    """`aegis run` on the repository's packs, with the pack config on free ports.

    Yields ``(webhook_url, env)``; asserts that every sensor came up on the defaults and
    none crashed by the end, and that SIGTERM stops the runtime cleanly.
    """
    home = Path(aegis_env["AEGIS_HOME"])
    (home / "configs").mkdir(parents=True)
    webhook_port = free_port()
    config = {
        "alertmanager": {"host": "127.0.0.1", "port": webhook_port, "path": "/alertmanager"},
        "knowledge": {"service_port": free_port(), "index_dir": str(tmp_path / "index")},
        "cockpit": {"port": free_port()},
    }
    (home / "configs" / "aegis.yaml").write_text(yaml.safe_dump(config))
    aegis_env.pop("AEGIS_PACKS_DIR", None)  # the default: this repository's packs/
    proc = start_runtime(aegis_env, tmp_path / "runtime.log")
    url = f"http://127.0.0.1:{webhook_port}/alertmanager"

    def ready():
        assert proc.poll() is None, (tmp_path / "runtime.log").read_text()
        try:
            response = requests.get(f"http://{aegis_env['AEGIS_API_LISTEN']}/readyz", timeout=2)
        except requests.ConnectionError:
            return False  # still loading the packs
        return response.status_code == 200 and response.json()

    try:
        # Ready means every sensor is set up (the webhook listens) and every worker pool started.
        health = wait_for(ready, timeout=120, what="the runtime to be ready (/readyz 200)")
        assert health["status"] == "ok", health
        assert {"aegis.AlertmanagerWebhookSensor", "aegis.LogPatternSensor", "aegis.KnowledgeServiceSensor"} <= set(health["sensors"])
        yield url, aegis_env
        health = requests.get(f"http://{aegis_env['AEGIS_API_LISTEN']}/healthz", timeout=5).json()
        assert all(s["restarts"] == 0 for s in health["sensors"].values()), f"a sensor crashed on the defaults: {health}"
    finally:
        # Always stopped, even when an assertion above failed (a leaked runtime keeps ports).
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0


