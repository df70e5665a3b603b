"""scripts/demo.sh's runner stops everything it started when interrupted (Ctrl-C) mid-scenario.

The runner (``python -m demo.run``) is started in its own process group, as a terminal starts
it; once a fault is injected (the whole stack up, Aegis about to act) it gets SIGINT, as
Ctrl-C sends it. Then: it exits 130, says nothing is left listening, nothing listens on any
port of its configs, and no process that runs from its directory is left.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, VIRTUALENVS, wait_for

from demo.stack import missing_packages

pytestmark = [pytest.mark.services, pytest.mark.skipif(bool(missing_packages()),
                                                       reason=f"missing Debian packages: {missing_packages()}")]


def _processes_under(path: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{pid}: {cmdline[:200]}")
    return found


def _ports(base: Path) -> set[int]:
    text = "".join(p.read_text() for p in [base / "supervisord.conf", base / "home" / "configs" / "aegis.yaml"] if p.exists())
    return {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", text)}


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_ctrl_c_mid_scenario_stops_everything(tmp_path):
    base = tmp_path / "demo"
    out = tmp_path / "demo.out"
    env = {**os.environ, "AEGIS_VIRTUALENVS": str(VIRTUALENVS), "PYTHONPATH": str(REPO)}
    with open(out, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "demo.run", "memory_leak", "--dir", str(base)], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: proc.poll() is not None or "fault injected" in out.read_text(), timeout=300,
                 interval=0.2, what="the demo to inject its first fault")
        assert proc.poll() is None, out.read_text()
        ports = _ports(base)
        # PostgreSQL's data directory is outside (it must be reachable by the postgres user).
        dirs = [base, *(Path(d) for d in re.findall(r"-D (\S+)", (base / "supervisord.conf").read_text()))]
        assert len(ports) >= 6 and any(_listening(p) for p in ports), (ports, out.read_text())
        assert all(_processes_under(d) for d in dirs), "the stack's processes run from its directories"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert proc.wait(timeout=180) == 130, out.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out.read_text()
    assert "interrupted" in text and "nothing left listening" in text, text
    assert [p for p in ports if _listening(p)] == [], text
    deadline = time.monotonic() + 10  # a process the runner killed may take a moment to be reaped
    while any(_processes_under(d) for d in dirs) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p for d in dirs for p in _processes_under(d)] == [], text
