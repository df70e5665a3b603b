"""A real RabbitMQ (Debian ``rabbitmq-server``) on loopback ports, private to one test.

    with RabbitMQ(tmp_dir) as broker:
        Connection(broker.url) ...
        broker.stop(); broker.start()   # same node, same data: durable queues survive

Everything lives under ``tmp_dir`` (mnesia, logs, cookie); the node gets its own AMQP,
distribution and epmd ports, and we run epmd ourselves (in the foreground) so that no
daemonized epmd is left behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from ._proc import free_port, stop_group, wait_for_port

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the Debian wrapper in /usr/sbin would su to rabbitmq
EPMD = shutil.which("epmd") or "/usr/bin/epmd"


def available() -> str | None:
    """None when RabbitMQ can run here, else why not (for pytest.skip)."""
    if not os.path.exists(SERVER):
        return "RabbitMQ is not installed: apt-get install -y rabbitmq-server"
    if not os.path.exists(EPMD):
        return "epmd is not installed: apt-get install -y erlang-base"
    return None


class RabbitMQ:
    def __init__(self, base_dir: str) -> None:
        self.base_dir = str(base_dir)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self._server: subprocess.Popen | None = None
        self._epmd: subprocess.Popen | None = None
        os.makedirs(self.base_dir, exist_ok=True)
        with open(os.path.join(self.base_dir, "enabled_plugins"), "w") as fh:
            fh.write("[].\n")
        self.log_path = os.path.join(self.base_dir, "server.log")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.base_dir,  # the Erlang cookie goes here, not in the real home
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": f"aegis-test-{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": os.path.join(self.base_dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.base_dir, "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_PID_FILE": os.path.join(self.base_dir, "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.base_dir, "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.base_dir, "rabbitmq"),  # absent: defaults
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.base_dir, "advanced.config"),
        }

    def start(self, timeout: float = 60) -> None:
        if self._epmd is None or self._epmd.poll() is not None:
            self._epmd = subprocess.Popen([EPMD, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                          env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True)  # fmt: skip
        log = open(self.log_path, "ab")  # noqa: SIM115 (owned by the child)
        self._server = subprocess.Popen([SERVER], env=self.env, cwd=self.base_dir, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        log.close()
        wait_for_port(self.port, timeout, self._server, self.log_path)

    def stop(self) -> None:
        """Stop the broker (SIGTERM: a clean shutdown that keeps durable queues)."""
        if self._server is not None:
            stop_group(self._server)
            self._server = None

    def close(self) -> None:
        self.stop()
        if self._epmd is not None:
            stop_group(self._epmd)
            self._epmd = None

    def __enter__(self) -> RabbitMQ:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
