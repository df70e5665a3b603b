"""A private PostgreSQL (Debian ``postgresql``) on a loopback port, in a temporary directory.

    with PostgresServer() as pg:
        psycopg2.connect(pg.dsn("app"))          # trust auth on 127.0.0.1

PostgreSQL refuses to run as root: as root the cluster is created and run as the Debian
package's ``postgres`` user (``runuser``), in a directory it owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from ._proc import free_port, stop_group, wait_for_port


def _bindir() -> str | None:
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return dirs[-1] if dirs else None


BINDIR = _bindir()


def available() -> str | None:
    if not BINDIR:
        return "PostgreSQL is not installed: apt-get install -y postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
    return None


class PostgresServer:
    superuser = "admin"

    def __init__(self) -> None:
        self.base_dir = tempfile.mkdtemp(prefix="aegis-pg-")
        os.chmod(self.base_dir, 0o755)
        self.data_dir = os.path.join(self.base_dir, "data")
        self.port = free_port()
        self.log_path = os.path.join(self.base_dir, "postgres.log")
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            pw = pwd.getpwnam("postgres")
            os.chown(self.base_dir, pw.pw_uid, pw.pw_gid)
        self._proc: subprocess.Popen | None = None

    def dsn(self, user: str, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={user} dbname={dbname} connect_timeout=10"

    def start(self, timeout: float = 60) -> None:
        subprocess.run(self._as + [f"{BINDIR}/initdb", "-D", self.data_dir, "-U", self.superuser, "--auth=trust",
                                   "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 (owned by the child)
        self._proc = subprocess.Popen(
            self._as + [f"{BINDIR}/postgres", "-D", self.data_dir, "-h", "127.0.0.1", "-p", str(self.port),
                        "-k", self.base_dir, "-c", "fsync=off", "-c", "max_connections=30"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        wait_for_port(self.port, timeout, self._proc, self.log_path)
        import psycopg2  # in the pack venv


        deadline = time.monotonic() + timeout
        while True:  # accepting TCP is not accepting queries (startup recovery)
            try:
                psycopg2.connect(self.dsn(self.superuser)).close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self._proc is not None:
            stop_group(self._proc)
            self._proc = None
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
