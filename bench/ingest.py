"""Webhook ingest benchmark: alerts/s and latency from POST to recorded trigger instance.

Starts the real ``aegis.AlertmanagerWebhookSensor`` in its own process, as st2lite's sensor
container runs it (``pack_runtime.sensor_wrapper``: real ``SensorService`` over a
temporary history database), then POSTs Alertmanager v4 notifications over
keep-alive connections. The sensor answers only after every trigger of a request is
recorded (SQLite, WAL; one transaction per request and store), so the time to the answer
is the time to the durable record. Every alert is a new episode (a new incident and
open-index entry in the datastore, and a trigger instance in the history).

    .venvs/aegis/bin/python bench/ingest.py [--single 500] [--batches 150] [--clients 2]

Targets (2-core machine): >= 10,000 alerts/s with batches of 100, p99 < 5 ms for single
alerts. The machine's load average is printed beside the figures: on a shared machine
other processes take the cores the sensor and the clients need.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK = os.path.join(REPO, "packs", "aegis")
for path in (os.path.join(REPO, "st2lite", "pack_env"), os.path.join(PACK, "actions", "lib"), os.path.join(PACK, "sensors")):
    sys.path.insert(0, path)

import yaml  # noqa: E402
from alertmanager_webhook_sensor import AlertmanagerWebhookSensor  # noqa: E402
from pack_runtime.datastore import KeyValueStore  # noqa: E402
from pack_runtime.records import Records  # noqa: E402
from pack_runtime.sensor_service import SensorService  # noqa: E402

_counter = iter(range(10**12))
_counter_lock = threading.Lock()


def _alerts(n: int) -> list[dict]:
    with _counter_lock:
        ids = [next(_counter) for _ in range(n)]
    return [
        {
            "status": "firing",
            "labels": {"alertname": "BenchDown", "instance": f"host-{i}:9100", "job": "node", "severity": "critical"},
            "annotations": {"summary": f"host-{i} is down", "runbook_url": "https://runbooks.example.com/down"},
            "startsAt": "2024-05-01T10:00:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
            "fingerprint": f"{i:016x}",
        }
        for i in ids
    ]


def _body(n: int) -> bytes:
    return json.dumps({
        "version": "4", "status": "firing", "receiver": "aegis", "groupKey": '{}:{alertname="BenchDown"}',
        "groupLabels": {"alertname": "BenchDown"}, "commonLabels": {"alertname": "BenchDown"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
        "alerts": _alerts(n),
    }).encode()  # fmt: skip


def _start_sensor_process(tmp: str, trigger_types: dict) -> tuple[int, object]:
    """Run the sensor as st2lite's sensor container does: ``pack_runtime.sensor_wrapper``, own process."""
    port = _free_port()
    config = os.path.join(tmp, "config.json")
    with open(config, "w") as fh:
        json.dump({"alertmanager": {"host": "127.0.0.1", "port": port, "path": "/alertmanager",
                                     "max_concurrent_requests": 64}}, fh)  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(REPO, "st2lite", "pack_env"), os.path.join(PACK, "actions", "lib")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pack_runtime.sensor_wrapper", "--pack-dir", PACK, "--pack", "aegis",
         "--file", os.path.join(PACK, "sensors", "alertmanager_webhook_sensor.py"),
         "--class-name", "AlertmanagerWebhookSensor", "--trigger-types", json.dumps(trigger_types),
         "--datastore", os.path.join(tmp, "datastore.sqlite"), "--records", os.path.join(tmp, "history.sqlite"),
         "--config", config],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the sensor process did not start listening") from None
            time.sleep(0.05)

    def stop() -> None:
        proc.terminate()
        proc.wait(10)

    stop.pid = proc.pid  # type: ignore[attr-defined]
    return port, stop


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(port: int, batch: int, requests_per_client: int, clients: int) -> tuple[list[float], float, int]:
    """POST ``requests_per_client`` bodies of ``batch`` alerts from each client; (latencies, wall, alerts)."""

    def client(_: int) -> list[float]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        latencies = []
        bodies = [_body(batch) for _ in range(requests_per_client)]  # built before timing
        for body in bodies:
            started = time.perf_counter()
            conn.request("POST", "/alertmanager", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            latencies.append(time.perf_counter() - started)
            if resp.status != 200:
                raise RuntimeError(f"sensor answered {resp.status}")
        conn.close()
        return latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    wall = time.perf_counter() - started
    return [x for r in results for x in r], wall, batch * requests_per_client * clients


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000 if len(values) > 1 else values[0] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=500, help="single-alert requests (sequential)")
    parser.add_argument("--batches", type=int, default=150, help="100-alert requests per client")
    parser.add_argument("--clients", type=int, default=2, help="concurrent clients for the batch run")
    parser.add_argument("--in-process", action="store_true", help="run the sensor in this process (shares the GIL with the clients)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    with open(os.path.join(PACK, "sensors", "alertmanager_webhook_sensor.yaml")) as fh:
        meta = yaml.safe_load(fh)
    trigger_types = {f"aegis.{t['name']}": t for t in meta["trigger_types"]}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="aegis-bench-") as tmp:
        records_path = os.path.join(tmp, "history.sqlite")
        if args.in_process:
            records = Records(records_path)
            service = SensorService("aegis", "AlertmanagerWebhookSensor", trigger_types, records,
                                    KeyValueStore(os.path.join(tmp, "datastore.sqlite")))  # fmt: skip
            sensor = AlertmanagerWebhookSensor(service, {"alertmanager": {"port": 0, "max_concurrent_requests": 64}})
            sensor.setup()
            thread = threading.Thread(target=sensor.run, daemon=True)
            thread.start()
            port, stop = sensor.port, lambda: (sensor.cleanup(), thread.join(5))
        else:
            port, stop = _start_sensor_process(tmp, trigger_types)
        try:
            pid = getattr(stop, "pid", os.getpid())
            _run(port, 1, 20, 1)  # warm up
            single, single_wall, single_n = _run(port, 1, args.single, 1)
            cpu_before = _cpu_seconds(pid)
            batch, batch_wall, batch_n = _run(port, 100, args.batches, args.clients)
            cpu_after = _cpu_seconds(pid)
        finally:
            stop()
        recorded = Records(records_path)._conn().execute("SELECT COUNT(*) FROM trigger_instances").fetchone()[0]

    load_after = os.getloadavg()
    print(f"sensor: {'in this process' if args.in_process else 'its own process, as the sensor container runs it'}")
    print(f"load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'run':<28} {'alerts':>7} {'alerts/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"{'batch 1 (1 client)':<28} {single_n:>7} {single_n / single_wall:>9.0f} {_pct(single, 50):>8.2f} {_pct(single, 99):>8.2f}")
    print(f"{f'batch 100 ({args.clients} clients)':<28} {batch_n:>7} {batch_n / batch_wall:>9.0f} {_pct(batch, 50):>8.2f} {_pct(batch, 99):>8.2f}")
    if cpu_before is not None and cpu_after is not None and not args.in_process:
        per_alert = (cpu_after - cpu_before) / batch_n * 1e6
        print(f"sensor process CPU at batch 100: {per_alert:.0f} us per alert"
              f" (one core's worth: {1e6 / per_alert:,.0f} alerts/s; independent of the load of other processes)")
    print(f"trigger instances recorded: {recorded} (expected {20 + single_n + batch_n})")
    print("latency = POST sent -> 200 received; the sensor answers after every trigger is recorded")
    ok = single_n and _pct(single, 99) < 5 and batch_n / batch_wall >= 10_000 and recorded == 20 + single_n + batch_n
    print("targets (>= 10000 alerts/s at batch 100, p99 < 5 ms single):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
