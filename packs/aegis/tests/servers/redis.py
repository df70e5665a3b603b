"""A private Redis (Debian ``redis-server``) on a loopback port, no persistence.

    with RedisServer(tmp_dir) as r:
        redis.Redis(port=r.port)
"""

from __future__ import annotations

import os
import shutil
import subprocess

from ._proc import free_port, stop_group, wait_for_port

BINARY = shutil.which("redis-server")


def available() -> str | None:
    return None if BINARY else "Redis is not installed: apt-get install -y redis-server"


class RedisServer:
    def __init__(self, base_dir: str) -> None:
        self.base_dir = str(base_dir)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = os.path.join(self.base_dir, "redis.log")
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> None:
        self._proc = subprocess.Popen(
            [BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.base_dir, "--logfile", self.log_path, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for_port(self.port, timeout, self._proc, self.log_path)

    def stop(self) -> None:
        if self._proc is not None:
            stop_group(self._proc)
            self._proc = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
