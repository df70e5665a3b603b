"""How long `aegis run` takes to become ready, and to stop when idle on Ctrl-C.

    .venv/bin/python bench/startstop.py [--runs 3]

Runs `aegis run` on the repository's packs (the aegis pack: three sensors and a warm worker)
in a fresh AEGIS_HOME with free ports, waits for `/readyz` 200 and for the knowledge service
to listen (it loads its model after its sensor is ready), then sends SIGINT to its process
group as a terminal's Ctrl-C does and times the exit. Prints one line per run and
whether any sensor was restarted during the stop.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def one_run() -> tuple[float, float, bool, bool]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        (home / "configs").mkdir(parents=True)
        knowledge_port = free_port()
        config = {"alertmanager": {"port": free_port()},
                  "knowledge": {"service_port": knowledge_port, "index_dir": str(Path(tmp) / "index")}}  # fmt: skip
        (home / "configs" / "aegis.yaml").write_text(yaml.safe_dump(config))
        listen = f"127.0.0.1:{free_port()}"
        env = {**os.environ, "AEGIS_HOME": str(home), "AEGIS_API_LISTEN": listen, "PYTHONPATH": str(REPO)}
        env.pop("AEGIS_PACKS_DIR", None)
        log_path = Path(tmp) / "run.log"
        with open(log_path, "wb") as log:
            started = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "st2lite.cli", "run"], env=env, cwd=REPO,
                                    stdout=log, stderr=log, start_new_session=True)  # fmt: skip
            while not ready(f"http://{listen}/readyz"):
                if proc.poll() is not None:
                    raise SystemExit(f"aegis run exited: {log_path.read_text()[-2000:]}")
                time.sleep(0.05)
            up = time.monotonic() - started
            # Idle means every server is serving: the knowledge service loads its model in
            # run(), after the sensor reported ready; stop once it listens too.
            while not (serving := listening(knowledge_port)) and time.monotonic() - started < 120:
                time.sleep(0.1)
            stop_at = time.monotonic()
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=120)
            stopped = time.monotonic() - stop_at
        restarted = "restarting" in log_path.read_text()
        return up, stopped, restarted, serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for n in range(1, args.runs + 1):
        up, stopped, restarted, serving = one_run()
        print(f"run {n}: ready after {up:.2f} s; idle stop on Ctrl-C {stopped:.2f} s "
              f"(knowledge service {'serving' if serving else 'not serving'}); "
              f"sensor restarted during stop: {'yes' if restarted else 'no'}")  # fmt: skip


if __name__ == "__main__":
    main()
