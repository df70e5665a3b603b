"""A private supervisord (Debian ``supervisor``) with its XML-RPC API on a loopback port.

    with Supervisord(tmp_dir, programs={"victim": "python3 -c 'import time; time.sleep(1e6)'"}) as sv:
        xmlrpc.client.ServerProxy(sv.url).supervisor.getProcessInfo("victim")
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import xmlrpc.client

from ._proc import free_port, stop_group, wait_for_port

BINARY = shutil.which("supervisord")


def available() -> str | None:
    return None if BINARY else "supervisord is not installed: apt-get install -y supervisor"


class Supervisord:
    def __init__(self, base_dir: str, programs: dict[str, str], username: str = "aegis", password: str = "s3cret") -> None:
        self.base_dir = str(base_dir)
        self.port = free_port()
        self.username, self.password = username, password
        self.url = f"http://127.0.0.1:{self.port}/RPC2"
        self.log_path = os.path.join(self.base_dir, "supervisord.log")
        lines = [
            "[supervisord]", "nodaemon=true", f"logfile={self.log_path}", f"pidfile={self.base_dir}/supervisord.pid",
            f"childlogdir={self.base_dir}",
            "[inet_http_server]", f"port=127.0.0.1:{self.port}", f"username={username}", f"password={password}",
            "[rpcinterface:supervisor]", "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        ]
        for name, command in programs.items():
            lines += [f"[program:{name}]", f"command={command}", "autostart=true", "autorestart=true", "startsecs=0",
                      "stopsignal=TERM", "stopwaitsecs=5"]
        self.config_path = os.path.join(self.base_dir, "supervisord.conf")
        with open(self.config_path, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        self._proc: subprocess.Popen | None = None

    def proxy(self) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy(f"http://{self.username}:{self.password}@127.0.0.1:{self.port}/RPC2")

    def start(self, timeout: float = 30) -> None:
        self._proc = subprocess.Popen([BINARY, "-c", self.config_path], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(self.port, timeout, self._proc, self.log_path)
        deadline = time.monotonic() + timeout
        while self.proxy().supervisor.getState()["statename"] != "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError("supervisord did not reach RUNNING")
            time.sleep(0.1)

    def wait_running(self, name: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            info = self.proxy().supervisor.getProcessInfo(name)
            if info["statename"] == "RUNNING" and info["pid"]:
                return info
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not RUNNING: {info['statename']}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            stop_group(self._proc)
            self._proc = None

    def __enter__(self) -> Supervisord:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
