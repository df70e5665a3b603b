"""Everything the demo runs, on loopback, on free ports, under one directory: start, use, stop.

    with Stack(base_dir) as stack:            # supervisord (victim, Redis, PostgreSQL,
        stack.fault("memory_leak")            #   Prometheus, Alertmanager), stand-in Slack and
        stack.prometheus_query("up")          #   PagerDuty, and the Aegis runtime in auto mode
        ...

The demo (``scripts/demo.sh``), the end-to-end test and ``bench/mttr.py`` share it. Config
files come from ``demo/config/*.tmpl`` with ports and paths filled in; the pack config is
``demo/config/aegis.yaml.tmpl``. Stopping (also on an exception or Ctrl-C) stops the runtime
(SIGTERM, it drains), then supervisord (which stops its programs), then anything still in
their process groups, so nothing is left listening.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "demo" / "config"
VICTIM = REPO / "demo" / "victim"
HOST_NAME = "demo-host"  # the victim host's name in alerts (Prometheus relabels instance to it)


class StackError(RuntimeError):
    pass


# -- tools -----------------------------------------------------------------------------------

def _pg_bindir() -> str | None:
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return dirs[-1] if dirs else None


# Debian package → how to find what it provides.
TOOLS: dict[str, Callable[[], str | None]] = {
    "prometheus": lambda: shutil.which("prometheus"),
    "prometheus-alertmanager": lambda: shutil.which("prometheus-alertmanager") or shutil.which("alertmanager"),
    "supervisor": lambda: shutil.which("supervisord"),
    "redis-server": lambda: shutil.which("redis-server"),
    "postgresql": _pg_bindir,
}


def missing_packages() -> list[str]:
    """Debian packages the stack needs that are not installed (``scripts/setup.sh --services``)."""
    return [package for package, find in TOOLS.items() if not find()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` (exceptions count as not yet) until truthy; StackError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 (a server still starting refuses, resets, ...)
            last = exc
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last})" if last else ""))
        time.sleep(interval)


def ensure_victim_python(venv: Path | None = None) -> Path:
    """The victim's own virtualenv (demo/victim/requirements.txt), rebuilt when that file changes."""
    venv = Path(venv or os.environ.get("AEGIS_DEMO_VENV") or REPO / ".venvs" / "victim")
    requirements = VICTIM / "requirements.txt"
    stamp = hashlib.sha256(requirements.read_bytes()).hexdigest()
    python = venv / "bin" / "python"
    if python.exists() and (venv / ".stamp").exists() and (venv / ".stamp").read_text().strip() == stamp:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise StackError(f"building the victim's virtualenv failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    (venv / ".stamp").write_text(stamp + "\n")
    return python


def render(template: Path, dest: Path, values: dict[str, Any]) -> Path:
    """Fill ``${NAME}`` placeholders (every one must be known: a typo fails here, not later)."""
    dest.write_text(string.Template(template.read_text()).substitute({k: str(v) for k, v in values.items()}))
    return dest


# -- the stack ----------------------------------------------------------------------------------

class Stack:
    """The demo's servers and the Aegis runtime. See the module docstring."""

    def __init__(self, base_dir: Path | str, mode: str = "auto", runtime: bool = True,
                 virtualenvs: Path | str | None = None, extra_config: dict[str, Any] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.base = Path(base_dir).resolve()
        self.mode = mode
        self.with_runtime = runtime
        self.virtualenvs = Path(virtualenvs or os.environ.get("AEGIS_VIRTUALENVS") or REPO / ".venvs")
        self.extra_config = extra_config or {}
        self.log = log or (lambda line: None)
        self.ports = {name: free_port() for name in (
            "supervisor", "redis", "pg", "victim", "prometheus", "alertmanager", "webhook", "api", "knowledge",
            "st2api", "st2auth", "st2stream")}
        self.webhook_token = secrets.token_urlsafe(24)
        self.supervisor_password = secrets.token_urlsafe(12)
        self.deploy_token = secrets.token_urlsafe(16)
        self.slack_token = "xoxb-demo-" + secrets.token_hex(8)
        self.pagerduty_key = secrets.token_hex(16)
        self.home = self.base / "home"
        self._supervisord: subprocess.Popen | None = None
        self._runtime: subprocess.Popen | None = None
        self._cleanups: list[Callable[[], None]] = []
        self.slack: Any = None  # stand-ins for Slack and PagerDuty (they record what they get)
        self.pagerduty: Any = None

    # URLs ------------------------------------------------------------------------------------
    @property
    def victim_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['victim']}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['alertmanager']}"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['webhook']}/alertmanager"

    @property
    def supervisor_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['supervisor']}/RPC2"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    def pg_dsn(self, user: str = "admin", dbname: str = "orders") -> str:
        return f"host=127.0.0.1 port={self.ports['pg']} dbname={dbname} user={user} connect_timeout=5"

    def supervisor(self) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy(
            f"http://aegis:{self.supervisor_password}@127.0.0.1:{self.ports['supervisor']}/RPC2")

    def runtime_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(AEGIS_HOME=str(self.home), AEGIS_VIRTUALENVS=str(self.virtualenvs),
                   AEGIS_API_LISTEN=f"127.0.0.1:{self.ports['api']}", PYTHONPATH=str(REPO),
                   AEGIS_ST2_API_LISTEN=f"127.0.0.1:{self.ports['st2api']}",
                   AEGIS_ST2_AUTH_LISTEN=f"127.0.0.1:{self.ports['st2auth']}",
                   AEGIS_ST2_STREAM_LISTEN=f"127.0.0.1:{self.ports['st2stream']}")  # not st2's fixed 9102
        env.pop("AEGIS_PACKS_DIR", None)
        for key in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):  # the demo diagnoses offline
            env.pop(key, None)
        return env

    def aegis(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run the runtime's CLI (``aegis ...``) against this stack's home."""
        return subprocess.run([sys.executable, "-m", "st2lite.cli", *args], env=self.runtime_env(), cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)

    # start ---------------------------------------------------------------------------------------
    def start(self) -> Stack:
        missing = missing_packages()
        if missing:
            raise StackError(f"missing Debian packages: {' '.join(missing)} (run: scripts/setup.sh --services)")
        try:
            self._prepare()
            self._start_supervisord()
            self._init_database()
            if self.with_runtime:
                self._start_runtime()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare(self) -> None:
        for sub in ("logs", "redis", "prometheus", "alertmanager", "victim/releases", "volumes/logs", "volumes/data",
                    "home/configs"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        for release in (VICTIM / "releases").glob("*.json"):
            shutil.copy(release, self.base / "victim" / "releases" / release.name)
        current = self.base / "victim" / "current"
        if not current.is_symlink():
            current.symlink_to(self.base / "victim" / "releases" / "v1.json")
        token_file = self.base / "alertmanager" / "aegis.token"
        token_file.write_text(self.webhook_token)
        token_file.chmod(0o600)
        # PostgreSQL refuses to run as root: then its Debian user runs it, in a directory of its
        # own that it can reach (the base directory may sit under a private temp directory).
        self.pg_dir = Path(tempfile.mkdtemp(prefix="aegis-demo-pg-"))
        self.on_stop(lambda: shutil.rmtree(self.pg_dir, ignore_errors=True))
        os.chmod(self.pg_dir, 0o755)
        pg_user = ""
        if os.geteuid() == 0:
            pg_user = "user=postgres"
            pw = pwd.getpwnam("postgres")
            os.chown(self.pg_dir, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"] if pg_user else []
        bindir = TOOLS["postgresql"]()
        if not (self.pg_dir / "data" / "PG_VERSION").exists():
            proc = subprocess.run([*run_as, f"{bindir}/initdb", "-D", str(self.pg_dir / "data"), "-U", "admin",
                                   "--auth=trust", "-E", "UTF8", "--no-sync"], capture_output=True, text=True)
            if proc.returncode != 0:
                raise StackError(f"initdb failed: {proc.stderr[-2000:]}")
        values = {
            "BASE": self.base, "REPO": REPO, "HOST_NAME": HOST_NAME,
            "SUPERVISOR_PORT": self.ports["supervisor"], "SUPERVISOR_PASSWORD": self.supervisor_password,
            "SUPERVISORD_USER": "user=root" if os.geteuid() == 0 else "",
            "REDIS_SERVER": TOOLS["redis-server"](), "REDIS_PORT": self.ports["redis"],
            "PG_BINDIR": bindir, "PG_DATA": self.pg_dir / "data", "PG_PORT": self.ports["pg"],
            "PG_SOCKET_DIR": self.pg_dir, "PG_USER": pg_user,
            "VICTIM_PYTHON": ensure_victim_python(), "VICTIM_PORT": self.ports["victim"],
            "VOLUME_BYTES": 48 << 20, "DEPLOY_TOKEN": self.deploy_token,
            "PROMETHEUS": TOOLS["prometheus"](), "PROMETHEUS_PORT": self.ports["prometheus"],
            "ALERTMANAGER": TOOLS["prometheus-alertmanager"](), "ALERTMANAGER_PORT": self.ports["alertmanager"],
            "RULES_FILE": CONFIG / "alert_rules.yml", "VICTIM_ADDR": f"127.0.0.1:{self.ports['victim']}",
            "ALERTMANAGER_ADDR": f"127.0.0.1:{self.ports['alertmanager']}",
            "WEBHOOK_URL": self.webhook_url, "TOKEN_FILE": token_file,
        }
        render(CONFIG / "supervisord.conf.tmpl", self.base / "supervisord.conf", values)
        render(CONFIG / "prometheus.yml.tmpl", self.base / "prometheus.yml", values)
        render(CONFIG / "alertmanager.yml.tmpl", self.base / "alertmanager.yml", values)

    def _start_supervisord(self) -> None:
        self.log("starting supervisord: redis, postgres, victim, prometheus, alertmanager")
        self._supervisord = subprocess.Popen(
            [TOOLS["supervisor"](), "-c", str(self.base / "supervisord.conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(self.base / "logs" / "supervisord.err", "ab"),  # noqa: SIM115
            start_new_session=True,
        )

        def all_running() -> bool:
            if self._supervisord.poll() is not None:
                raise StackError(f"supervisord exited with {self._supervisord.returncode}; see {self.base}/logs")
            states = {p["name"]: p["statename"] for p in self.supervisor().supervisor.getAllProcessInfo()}
            failed = [n for n, s in states.items() if s in ("FATAL", "EXITED", "BACKOFF")]
            if failed:
                raise StackError(f"supervisord programs failed to start: {failed}; see {self.base}/logs")
            return all(s == "RUNNING" for s in states.values())

        self._until(all_running, 60, "supervisord's programs to run")
        self._until(lambda: requests.get(self.prometheus_url + "/-/ready", timeout=2).ok, 60, "Prometheus to be ready")
        self._until(lambda: requests.get(self.alertmanager_url + "/-/ready", timeout=2).ok, 60, "Alertmanager to be ready")
        self._until(lambda: requests.get(self.victim_url + "/health", timeout=2).ok, 60, "the victim to answer")

    def _until(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        def check() -> Any:
            if self._supervisord is not None and self._supervisord.poll() is not None:
                raise StackError(f"supervisord exited with {self._supervisord.returncode}; see {self.base}/logs")
            return predicate()

        return wait_until(check, timeout, what)

    def psql(self, sql: str, user: str = "admin", dbname: str = "orders") -> str:
        """Run SQL with the Debian ``psql`` client (the runtime's environment has no driver)."""
        psql = os.path.join(TOOLS["postgresql"](), "psql")
        proc = subprocess.run([psql, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                               "-p", str(self.ports["pg"]), "-U", user, "-d", dbname, "-c", sql],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise StackError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def _init_database(self) -> None:
        self._until(lambda: self.psql("SELECT 1", dbname="postgres") == "1", 60, "PostgreSQL to accept queries")
        if self.psql("SELECT count(*) FROM pg_database WHERE datname = 'orders'", dbname="postgres") == "0":
            self.psql("CREATE DATABASE orders", dbname="postgres")
            self.psql("CREATE ROLE victim LOGIN; CREATE ROLE report LOGIN; GRANT pg_read_all_stats TO victim;"
                      " CREATE TABLE orders (id int PRIMARY KEY, n bigint NOT NULL);"
                      " INSERT INTO orders VALUES (1, 0); GRANT SELECT, UPDATE ON orders TO victim, report;")

    def pack_config(self) -> dict[str, Any]:
        import yaml

        values = {
            "BASE": self.base, "HOST_NAME": HOST_NAME, "MODE": self.mode,
            "WEBHOOK_PORT": self.ports["webhook"], "KNOWLEDGE_PORT": self.ports["knowledge"],
            "PROMETHEUS_URL": self.prometheus_url, "ALERTMANAGER_URL": self.alertmanager_url,
            "SUPERVISOR_URL": self.supervisor_url, "SUPERVISOR_PASSWORD": self.supervisor_password,
            "DEPLOY_URL": self.victim_url + "/deploy", "DEPLOY_TOKEN": self.deploy_token,
            "REDIS_URL": self.redis_url, "PG_DSN": self.pg_dsn(),
            "SLACK_URL": self.slack.url + "/api/" if self.slack else "", "VICTIM_URL": self.victim_url,
            "PAGERDUTY_URL": self.pagerduty.url if self.pagerduty else "",
        }
        config = yaml.safe_load(string.Template((CONFIG / "aegis.yaml.tmpl").read_text()).substitute(
            {k: str(v) for k, v in values.items()}))
        for key, value in self.extra_config.items():
            config[key] = value
        return config

    def _start_receivers(self) -> None:
        """Slack and PagerDuty stand-ins speaking their wire formats (the pack's test servers)."""
        sys.path.insert(0, str(REPO / "packs" / "aegis" / "tests"))
        from servers.standins import PagerDutyStandIn, SlackStandIn

        self.slack = SlackStandIn(token=self.slack_token).__enter__()
        self.on_stop(self.slack.__exit__)
        self.pagerduty = PagerDutyStandIn().__enter__()
        self.on_stop(self.pagerduty.__exit__)

    def _start_runtime(self) -> None:
        import yaml

        self._start_receivers()
        # The repository's runbooks plus the demo's site runbooks, as knowledge.runbooks_dir.
        runbooks = self.base / "runbooks"
        runbooks.mkdir(exist_ok=True)
        for source in [*(REPO / "knowledge" / "runbooks").glob("*.md"), *(REPO / "demo" / "runbooks").glob("*.md")]:
            shutil.copy(source, runbooks / source.name)
        (self.home / "configs" / "aegis.yaml").write_text(yaml.safe_dump(self.pack_config(), sort_keys=False))
        secrets_ = {"alertmanager_token": self.webhook_token, "supervisor_password": self.supervisor_password,
                    "deploy_token": self.deploy_token, "slack_token": self.slack_token,
                    "pagerduty_routing_key": self.pagerduty_key}
        for name, value in secrets_.items():
            result = self.aegis("key", "set", f"aegis.{name}", value, "--encrypt")
            if result.returncode != 0:
                raise StackError(f"aegis key set aegis.{name} failed: {result.stderr}")
        self.log(f"starting the Aegis runtime (mode {self.mode})")
        with open(self.base / "logs" / "aegis.log", "ab") as log:
            self._runtime = subprocess.Popen([sys.executable, "-m", "st2lite.cli", "run"], env=self.runtime_env(),
                                             cwd=REPO, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                             start_new_session=True)

        def webhook_up() -> bool:
            if self._runtime.poll() is not None:
                raise StackError(f"the Aegis runtime exited with {self._runtime.returncode}; see {self.base}/logs/aegis.log")
            return requests.get(f"http://127.0.0.1:{self.ports['webhook']}/healthz", timeout=2).ok

        wait_until(webhook_up, 180, "the Aegis webhook sensor to listen")
        # The knowledge service loads the model: the first diagnosis should not pay that.
        wait_until(lambda: self._knowledge_ready(), 180, "the knowledge service to answer")

    def _knowledge_ready(self) -> bool:
        if self._runtime is not None and self._runtime.poll() is not None:
            raise StackError(f"the Aegis runtime exited with {self._runtime.returncode}; see {self.base}/logs/aegis.log")
        with socket.socket() as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", self.ports["knowledge"])) == 0

    # use -----------------------------------------------------------------------------------------
    def fault(self, name: str, on: bool = True) -> dict[str, Any]:
        method = requests.post if on else requests.delete
        resp = method(f"{self.victim_url}/admin/faults/{name}", timeout=10)
        resp.raise_for_status()
        return resp.json()

    def deploy(self, version: str) -> dict[str, Any]:
        """Deploy a release through the victim's deploy API (the process restarts into it)."""
        resp = requests.post(self.victim_url + "/deploy", json={"action": "deploy", "version": version},
                             headers={"Authorization": f"Bearer {self.deploy_token}"}, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def prometheus_query(self, expr: str) -> list[dict[str, Any]]:
        resp = requests.get(self.prometheus_url + "/api/v1/query", params={"query": expr}, timeout=5)
        resp.raise_for_status()
        return resp.json()["data"]["result"]

    def alerts(self, active_only: bool = False) -> list[dict[str, Any]]:
        """Alertmanager's view (API v2)."""
        params = {"active": "true", "silenced": "false", "inhibited": "false"} if active_only else {}
        resp = requests.get(self.alertmanager_url + "/api/v2/alerts", params=params, timeout=5)
        resp.raise_for_status()
        return resp.json()

    def programs(self) -> dict[str, dict[str, Any]]:
        """supervisord's programs: name → {pid, start, statename}."""
        return {p["name"]: p for p in self.supervisor().supervisor.getAllProcessInfo()}

    def victim_state(self) -> dict[str, Any]:
        return requests.get(self.victim_url + "/admin/faults", timeout=5).json()

    # stop ------------------------------------------------------------------------------------------
    def stop(self) -> None:
        if self._runtime is not None:
            _stop_group(self._runtime, signal.SIGTERM, timeout=60)
            self._runtime = None
        if self._supervisord is not None:
            # supervisord makes each program a process group leader and stops it (stopasgroup)
            # when it gets SIGTERM; the groups are remembered in case it cannot.
            groups = []
            with contextlib.suppress(Exception):
                groups = [p["pid"] for p in self.programs().values() if p["pid"]]
            _stop_group(self._supervisord, signal.SIGTERM, timeout=30)
            self._supervisord = None
            for pgid in groups:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
        for cleanup in reversed(self._cleanups):
            cleanup()
        self._cleanups.clear()

    def on_stop(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    def listening_ports(self) -> list[int]:
        """The stack's ports something still accepts connections on (empty after stop)."""
        found = []
        for port in self.ports.values():
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    found.append(port)
        return found

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_group(proc: subprocess.Popen, sig: int, timeout: float) -> None:
    """Signal the process group ``proc`` leads; SIGKILL it if it is not gone after ``timeout``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything the leader left behind in its group


def describe(stack: Stack) -> str:
    return json.dumps({"base": str(stack.base), "ports": stack.ports}, indent=2)
