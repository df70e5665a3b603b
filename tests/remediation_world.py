"""The world of the remediation tests: real servers on loopback and stand-ins.

    with World(tmp_dir) as world:                     # supervisord victims, Prometheus, Alertmanager, Redis,
        config = world.config(index_dir)              # Slack and PagerDuty stand-ins; the pack config for them
        am_alert = fire(world, "victim-ok")           # an alert in Alertmanager, as Prometheus posts it

Shared by tests/test_remediate_workflow.py (the workflow driven directly) and the ChatOps
tests (the same world behind the webhook sensor, st2's API and Slack's interactivity).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import requests
from conftest import REPO

sys.path.insert(0, str(REPO / "packs" / "aegis" / "tests"))
from servers import alertmanager, prometheus, redis, supervisord  # noqa: E402
from servers._proc import free_port  # noqa: E402
from servers.standins import PagerDutyStandIn, SlackStandIn, _StandIn  # noqa: E402


def missing() -> str | None:
    """None when every server of the world can run here, else why not (for pytest.skip)."""
    return next((why for why in (s.available() for s in (alertmanager, prometheus, redis, supervisord)) if why), None)


VICTIMS = ("victim-ok", "victim-advise", "victim-stuck", "victim-monitor", "victim-gone", "victim-loop", "victim-rate",
           "victim-template", "victim-crash", "victim-bystander")
VICTIM = textwrap.dedent('''
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    value = open(sys.argv[2]).read().strip()
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = ("victim_memory_ratio %s\\n" % value).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
''')


class AlertmanagerProxy(_StandIn):
    """Forwards to the real Alertmanager; ``hooks[(method, path)]`` runs before forwarding."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target, self.hooks = target, {}

    def route(self, req):
        hook = self.hooks.pop((req["method"], req["path"]), None)
        if hook:
            hook()
        resp = requests.request(req["method"], self.target + req["path"], params=req["query"],
                                json=req["body"] if isinstance(req["body"], (dict, list)) else None, timeout=10)
        return resp.status_code, (resp.json() if resp.content else None)


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ports = {name: free_port() for name in VICTIMS}
        script = tmp / "victim.py"
        script.write_text(VICTIM)
        for name in VICTIMS:
            (tmp / f"{name}.state").write_text("0.95")
            # What the victim logs while it leaks: the diagnoser acts only when the workload's
            # own logs confirm what the alert says (an alert name alone escalates).
            (tmp / f"{name}.log").write_text(
                f'2026-11-30T11:58:00Z level=warn service={name} msg="RSS keeps growing" rss_bytes=1.8e9 uptime=5d\n'
                f'2026-11-30T11:59:00Z level=warn service={name} msg="memory usage above 90% of limit"\n')
        self.sv = supervisord.Supervisord(str(tmp), {
            name: f"{sys.executable} {script} {port} {tmp / (name + '.state')}" for name, port in self.ports.items()})
        (tmp / "prom").mkdir()
        self.prom = prometheus.Prometheus(str(tmp / "prom"), [f"127.0.0.1:{p}" for p in self.ports.values()])
        (tmp / "am").mkdir()
        self.am = alertmanager.Alertmanager(str(tmp / "am"), "http://127.0.0.1:9/unused")
        self.slack, self.pd = SlackStandIn(), PagerDutyStandIn()
        (tmp / "redis").mkdir()
        self.redis = redis.RedisServer(str(tmp / "redis"))

    def __enter__(self):
        self.sv.start()
        self.redis.start()
        self.prom.start()
        self.am.start()
        self.proxy = AlertmanagerProxy(self.am.url).__enter__()
        self.slack.__enter__()
        self.pd.__enter__()
        for port in self.ports.values():
            self.prom.wait_for_value(f'victim_memory_ratio{{instance="127.0.0.1:{port}"}}', 0.95, timeout=60)
        return self

    def __exit__(self, *exc):
        for server in (self.pd, self.slack, self.proxy):
            server.__exit__()
        self.am.stop()
        self.prom.stop()
        self.redis.stop()
        self.sv.stop()

    def config(self, index_dir: Path) -> dict:
        return {
            "mode": "auto",
            "knowledge": {"use_service": False, "index_dir": str(index_dir)},
            "default_backend": "supervisor",
            "supervisor": {"url": self.sv.url, "username": self.sv.username, "password": self.sv.password},
            "prometheus": {"url": self.prom.url},
            "alertmanager_api": {"url": self.proxy.url},
            "redis": {"instances": {name: {"url": self.redis.url, "cache": True, "prefixes": [f"{name}:"]}
                                    for name in ("cache-yes", "cache-no", "cache-late")}},
            "verify": {"checks": {"HighMemoryUsage": [{"query": 'victim_memory_ratio{instance="${instance}"}', "below": 0.7}],
                                  # alert-style: the cache alert's condition, healthy when empty
                                  "RedisOutOfMemory": [{"query": 'victim_memory_ratio{instance="${instance}"} > 1'}]},
                       "interval_seconds": 0.3, "max_interval_seconds": 0.5, "consecutive": 2, "timeout_seconds": 8},
            "slack": {"token": "xoxb-test", "channel": "#ops", "base_url": self.slack.url + "/api/"},
            "pagerduty": {"routing_key": "R0UT1NG", "base_url": self.pd.url},
            "safety": {"silence_minutes": 10},
            "context": {"log_files": {name: [str(self.tmp / f"{name}.log")] for name in VICTIMS}},
        }


def fire(world: World, service: str, alertname: str = "HighMemoryUsage", summary: str = "", **extra_labels) -> dict:
    """Post a firing alert to Alertmanager as Prometheus would; return it as Alertmanager has it."""
    port = world.ports.get(service, world.ports.get(extra_labels.pop("port_of", ""), world.redis.port))
    labels = {"alertname": alertname, "service": service, "instance": f"127.0.0.1:{port}", "severity": "warning", **extra_labels}
    annotations = {"summary": summary or f"{service} memory above 90% and growing steadily (memory leak)"}
    world.am.post_alerts([{"labels": labels, "annotations": annotations}])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [a for a in requests.get(world.am.url + "/api/v2/alerts", timeout=5).json() if a["labels"] == labels]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("the alert did not reach Alertmanager")


CACHE_SUMMARY = "redis cache used memory at maxmemory, OOM command not allowed when used memory > 'maxmemory'"


class RedisCli:
    """The few Redis commands these tests need, through redis-cli (no client in the runtime venv)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def _run(self, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()

    def set(self, key: str, value: str) -> None:
        self._run("SET", key, value)

    def exists(self, key: str) -> int:
        return int(self._run("EXISTS", key))

    def get(self, key: str) -> bytes:
        return self._run("GET", key).encode()
