"""The demo's victim: a small web service that can be broken on purpose, one fault at a time.

    python victim.py --port 8080 --state-dir /tmp/victim          # under supervisord or Docker
    curl -XPOST localhost:8080/admin/faults/memory_leak            # break it
    curl -XDELETE localhost:8080/admin/faults/memory_leak          # (or let Aegis fix it)

It serves ``/`` (a "checkout" request: reads a price from the Redis cache and records an
order in PostgreSQL), ``/health``, ``/metrics`` (prometheus-client) and, on its own, keeps a
steady trickle of requests going so its metrics move without a load generator.

Faults (``POST``/``DELETE /admin/faults/<name>``, ``GET /admin/faults``) are in :data:`FAULTS`.
Those that live in the process (leak, spin, hang, slow dependency) end with it, so a restart
fixes them, as it would in production; the others live where they would in production
(files on disk, keys in Redis, a session in PostgreSQL, the deployed release) and need the
matching fix.

Releases: ``<state-dir>/releases/<version>.json`` (``{"version", "error_ratio"}``), the
running one chosen by the symlink ``<state-dir>/current``, read at start. The deploy API
(``POST /deploy`` with ``{"action": "deploy", "version": ...}`` or ``{"action": "rollback"}``,
bearer token from ``$VICTIM_DEPLOY_TOKEN`` or the file ``$VICTIM_DEPLOY_TOKEN_FILE``) switches the symlink, remembers the previous
version and exits so that the supervisor starts the new release.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import random
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)  # process_resident_memory_bytes, process_cpu_seconds_total
REQUESTS = Counter("victim_requests_total", "Requests served", ["code"], registry=REGISTRY)
LATENCY = Histogram("victim_request_duration_seconds", "Request latency", registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
STALE = Counter("victim_cache_stale_reads_total", "Cache reads older than the source of truth", registry=REGISTRY)
DB_ERRORS = Counter("victim_db_errors_total", "Database statements that failed (lock timeouts)", ["error"],
                    registry=REGISTRY)
INFO = Gauge("victim_release_info", "The running release", ["version"], registry=REGISTRY)
FAULT = Gauge("victim_fault_active", "1 while a fault switch is on (for the demo's display)", ["fault"],
              registry=REGISTRY)
VOLUME_USED = Gauge("victim_volume_used_bytes", "Bytes used on a size-limited volume", ["volume", "mountpoint"],
                    registry=REGISTRY)
IDLE_TX = Gauge("victim_db_idle_in_transaction_seconds",
                "Age of the oldest session idle in transaction (what postgres_exporter would export)",
                ["database"], registry=REGISTRY)
VOLUME_SIZE = Gauge("victim_volume_size_bytes", "Size of a size-limited volume", ["volume", "mountpoint"],
                    registry=REGISTRY)

CACHE_PREFIX = "victim:cache:"
PRICE_VERSION_KEY = "price_version"  # the source of truth's version of the price
SESSION_KEY = "victim:session:demo-user"


class Victim:
    """The service's state: release, faults, connections, volumes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state_dir = Path(args.state_dir)
        self.release = self._load_release()
        self.error_ratio = float(self.release.get("error_ratio", 0.0))
        INFO.labels(self.release["version"]).set(1)
        self.faults: dict[str, threading.Event] = {name: threading.Event() for name in FAULTS}
        for name in FAULTS:
            FAULT.labels(name).set(0)
        self.leak: list[bytes] = []
        self.hang = threading.Lock()  # held while the "hung" fault is on: every request blocks on it
        self.volumes = {"logs": (Path(args.log_dir), "/var/log/victim"), "data": (Path(args.data_dir), "/data")}
        for path, _ in self.volumes.values():
            path.mkdir(parents=True, exist_ok=True)
        self._redis = None
        self._db = None
        self._db_lock = threading.Lock()
        self._stop = threading.Event()

    # -- releases --------------------------------------------------------------------------
    def _load_release(self) -> dict[str, Any]:
        current = self.state_dir / "current"
        if not current.exists():
            return {"version": "unversioned", "error_ratio": 0.0}
        return json.loads(current.read_text())

    def deploy(self, body: dict[str, Any]) -> dict[str, Any]:
        releases = self.state_dir / "releases"
        current = self.state_dir / "current"
        previous_file = self.state_dir / "previous"
        from_version = current.resolve().stem if current.exists() else None
        if body.get("action") == "rollback":
            if not previous_file.exists():
                raise ValueError("no previous release to roll back to")
            to_version = previous_file.read_text().strip()
        elif body.get("action") == "deploy":
            to_version = str(body.get("version") or "")
        else:
            raise ValueError('action must be "deploy" or "rollback"')
        target = releases / f"{to_version}.json"
        if not to_version or "/" in to_version or not target.is_file():
            raise ValueError(f"unknown release {to_version!r}")
        tmp = self.state_dir / "current.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, current)  # atomic switch
        if from_version:
            previous_file.write_text(from_version + "\n")
        # The new release starts when the supervisor restarts us (autorestart), after this answer.
        threading.Timer(0.2, os._exit, args=(0,)).start()
        return {"from_version": from_version, "to_version": to_version, "service": "victim"}

    # -- dependencies -----------------------------------------------------------------------
    def redis(self):
        if self._redis is None and self.args.redis_url:
            import redis

            self._redis = redis.Redis.from_url(self.args.redis_url, socket_timeout=2, socket_connect_timeout=2)
            self._redis.setnx(PRICE_VERSION_KEY, 1)
            # Sessions live in the same Redis but are data, not cache: clearing the cache keeps them.
            self._redis.setnx(SESSION_KEY, json.dumps({"user": "demo", "cart": ["sku-1"]}))
        return self._redis

    def db(self):
        if self._db is None and self.args.pg_dsn:
            import psycopg2

            self._db = psycopg2.connect(self.args.pg_dsn, connect_timeout=3)
            self._db.autocommit = True
            with self._db.cursor() as cur:
                cur.execute("SET lock_timeout = '200ms'")
        return self._db

    # -- one request -----------------------------------------------------------------------
    def handle_checkout(self) -> int:
        """A "checkout": the code path every fault can hurt. Returns the HTTP status."""
        if self.faults["slow_dependency"].is_set():
            time.sleep(random.uniform(0.6, 1.2))  # the payment provider answers slowly
        if random.random() < self.error_ratio:
            return 500  # the bad release's bug
        self._read_price()
        self._record_order()  # a failed write is queued for retry: the customer still gets 200
        return 200

    def _read_price(self) -> None:
        r = self.redis()
        if r is None:
            return
        try:
            truth = int(r.get(PRICE_VERSION_KEY) or 1)
            key = CACHE_PREFIX + "price:sku-1"
            cached = r.get(key)
            if cached is None:
                r.set(key, json.dumps({"version": truth, "price": 42}))
            elif json.loads(cached)["version"] < truth:
                STALE.inc()  # served the old price
        except Exception:  # noqa: BLE001 (a cache outage is not this demo's fault to show)
            self._redis = None

    def _record_order(self) -> bool:
        if not self.args.pg_dsn:
            return True
        with self._db_lock:
            try:
                with self.db().cursor() as cur:
                    cur.execute("UPDATE orders SET n = n + 1 WHERE id = 1")
                return True
            except Exception as exc:  # noqa: BLE001
                DB_ERRORS.labels(type(exc).__name__).inc()
                if getattr(exc, "pgcode", None) is None:  # the connection itself broke
                    self._db = None
                return False

    def serve_request(self) -> int:
        started = time.monotonic()
        with self.hang:
            pass
        code = self.handle_checkout()
        REQUESTS.labels(str(code)).inc()
        LATENCY.observe(time.monotonic() - started)
        return code

    def traffic(self) -> None:
        """Steady synthetic traffic (10 requests/s) so that rates and ratios are defined."""
        while not self._stop.wait(0.1):
            try:
                self.serve_request()
            except Exception:  # noqa: BLE001 (traffic never stops on a bad request)
                pass

    def measure(self) -> None:
        """Gauges a sidecar exporter would provide: volume usage, PostgreSQL's idle transactions."""
        monitor = None
        while not self._stop.wait(0.5):
            for name, (path, mount) in self.volumes.items():
                used = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                VOLUME_USED.labels(name, mount).set(used)
                VOLUME_SIZE.labels(name, mount).set(self.args.volume_bytes)
            if not self.args.pg_dsn:
                continue
            try:
                if monitor is None:
                    import psycopg2

                    monitor = psycopg2.connect(self.args.pg_dsn, connect_timeout=3)
                    monitor.autocommit = True
                with monitor.cursor() as cur:
                    cur.execute("SELECT current_database(), coalesce(max(extract(epoch FROM now() - state_change)), 0)"
                                " FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'")
                    database, age = cur.fetchone()
                IDLE_TX.labels(database).set(float(age))
            except Exception:  # noqa: BLE001 (reconnect next round)
                monitor = None

    def set_fault(self, name: str, on: bool) -> None:
        if name not in FAULTS:
            raise KeyError(name)
        event = self.faults[name]
        if on and not event.is_set():
            event.set()
            FAULT.labels(name).set(1)
            threading.Thread(target=FAULTS[name], args=(self, event), name=f"fault-{name}", daemon=True).start()
        elif not on and event.is_set():
            event.clear()
            FAULT.labels(name).set(0)


# -- faults: each runs in its own thread while its event is set ------------------------------

def _memory_leak(v: Victim, on: threading.Event) -> None:
    while on.is_set() and len(v.leak) < 60:  # 8 MiB every 0.25 s, capped at 480 MiB
        v.leak.append(os.urandom(8 << 20))
        time.sleep(0.25)
    on.wait()  # leaked memory stays leaked: only a restart gives it back


def _cpu_spin(v: Victim, on: threading.Event) -> None:
    while on.is_set():
        sum(i * i for i in range(10000))


def _hung(v: Victim, on: threading.Event) -> None:
    with v.hang:  # every request (health and metrics included) now waits for this lock
        while on.is_set():
            time.sleep(0.2)


def _slow_dependency(v: Victim, on: threading.Event) -> None:
    pass  # handle_checkout reads the switch


def _fill_logs(v: Victim, on: threading.Event) -> None:
    """A logging loop: rotated log files pile up in the log directory."""
    logs, _ = v.volumes["logs"]
    n = 0
    while on.is_set() and sum(f.stat().st_size for f in logs.glob("*")) < v.args.volume_bytes * 0.95:
        n += 1
        (logs / f"victim.log.{n}").write_bytes(b"DEBUG request dump " * (1 << 16))  # ~1.2 MiB
        time.sleep(0.05)


def _fill_data(v: Victim, on: threading.Event) -> None:
    """The data volume grows (orders piling up): nothing there may be deleted automatically."""
    data, _ = v.volumes["data"]
    n = 0
    while on.is_set() and sum(f.stat().st_size for f in data.glob("*")) < v.args.volume_bytes * 0.95:
        n += 1
        (data / f"orders-{n:04d}.seg").write_bytes(os.urandom(1 << 20))
        time.sleep(0.05)


def _poison_cache(v: Victim, on: threading.Event) -> None:
    """The price changed in the source of truth; the cache keeps serving the old one."""
    r = v.redis()
    if r is not None:
        r.set(PRICE_VERSION_KEY, int(r.get(PRICE_VERSION_KEY) or 1) + 1)


def _idle_in_transaction(v: Victim, on: threading.Event) -> None:
    """A report job opens a transaction, takes the order row's lock, then waits forever."""
    import psycopg2

    conn = psycopg2.connect(v.args.report_dsn or v.args.pg_dsn, connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT n FROM orders WHERE id = 1 FOR UPDATE")
        while on.is_set():  # idle in transaction until someone terminates the session
            time.sleep(0.5)
            try:
                conn.poll()
            except psycopg2.Error:
                break
    finally:
        try:
            conn.close()
        except psycopg2.Error:
            pass


def _bad_release(v: Victim, on: threading.Event) -> None:
    """Deploy the next release (which has a bug) through the deploy API's own code path."""
    v.deploy({"action": "deploy", "version": v.args.bad_release})


FAULTS: dict[str, Callable[[Victim, threading.Event], None]] = {
    "memory_leak": _memory_leak,
    "cpu_spin": _cpu_spin,
    "hung": _hung,
    "slow_dependency": _slow_dependency,
    "bad_release": _bad_release,
    "fill_logs": _fill_logs,
    "fill_data": _fill_data,
    "poison_cache": _poison_cache,
    "idle_in_transaction": _idle_in_transaction,
}


def make_handler(v: Victim) -> type[BaseHTTPRequestHandler]:
    token = os.environ.get("VICTIM_DEPLOY_TOKEN", "")
    if not token and os.environ.get("VICTIM_DEPLOY_TOKEN_FILE"):
        with open(os.environ["VICTIM_DEPLOY_TOKEN_FILE"]) as fh:
            token = fh.read().strip()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, code: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else (json.dumps(body) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/metrics":
                with v.hang:
                    pass
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif self.path == "/health":
                with v.hang:
                    pass
                self._send(200, {"status": "ok", "version": v.release["version"]})
            elif self.path == "/":
                code = v.serve_request()
                self._send(code, {"status": "ok" if code == 200 else "error", "version": v.release["version"]})
            elif self.path == "/admin/faults":
                self._send(200, {name: ev.is_set() for name, ev in v.faults.items()})
            else:
                self._send(404, {"error": "not found"})

        def _fault_name(self) -> str | None:
            prefix = "/admin/faults/"
            return self.path[len(prefix):] if self.path.startswith(prefix) else None

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            name = self._fault_name()
            if name is not None:
                try:
                    v.set_fault(name, True)
                except KeyError:
                    return self._send(404, {"error": f"unknown fault {name!r}", "faults": list(FAULTS)})
                except Exception as exc:  # noqa: BLE001
                    return self._send(409, {"error": str(exc)})
                return self._send(200, {"fault": name, "active": True})
            if self.path == "/deploy":
                given = self.headers.get("Authorization", "")
                if token and not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    return self._send(401, {"error": "bearer token required"})
                try:
                    return self._send(200, v.deploy(json.loads(raw or b"{}")))
                except (ValueError, json.JSONDecodeError) as exc:
                    return self._send(400, {"error": str(exc)})
            self._send(404, {"error": "not found"})

        def do_DELETE(self) -> None:  # noqa: N802
            name = self._fault_name()
            if name is None or name not in FAULTS:
                return self._send(404, {"error": "not found"})
            v.set_fault(name, False)
            self._send(200, {"fault": name, "active": False})

        def log_message(self, *args: object) -> None:
            pass  # a log line per scrape would fill the demo's log

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--state-dir", required=True, help="releases/, current, previous")
    parser.add_argument("--log-dir", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--volume-bytes", type=int, default=64 << 20, help="size of the log and data 'volumes'")
    parser.add_argument("--redis-url", default=os.environ.get("VICTIM_REDIS_URL", ""))
    parser.add_argument("--pg-dsn", default=os.environ.get("VICTIM_PG_DSN", ""))
    parser.add_argument("--report-dsn", default=os.environ.get("VICTIM_REPORT_DSN", ""),
                        help="the report job's session (idle_in_transaction); default: --pg-dsn")
    parser.add_argument("--bad-release", default="v2", help="the release the bad_release fault deploys")
    args = parser.parse_args(argv)
    victim = Victim(args)
    for target in (victim.traffic, victim.measure):
        threading.Thread(target=target, daemon=True).start()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(victim))
    server.daemon_threads = True
    print(f"victim {victim.release['version']} listening on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
