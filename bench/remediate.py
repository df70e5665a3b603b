"""Aegis's own time per stage of ``aegis.remediate``, for a warm runtime, on real servers.

A victim process under a real supervisord, a real Prometheus scraping it and a real
Alertmanager holding the alert; each iteration records a fresh incident and runs the whole
workflow in mode ``auto`` (restart → verify → learn → resolve). Per stage, from the
execution history: Aegis's time is the task's wall time minus the time spent waiting on
the target (the restart itself, reported by the acting action, and verification's polling
interval). Each worker loads the embedding model first (the knowledge service is off, so
actions search in-process, as st2lite's warm workers do without it), and the first run
warms the rest (index, imports) and is not counted.

    .venv/bin/python bench/remediate.py [-n 10]

Goal: under 0.5 s p50 for everything but the waiting on the target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "packs" / "aegis" / "tests"), str(REPO / "packs" / "aegis" / "actions" / "lib")]
os.environ.setdefault("AEGIS_VIRTUALENVS", str(REPO / ".venvs"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from incidents import IncidentStore  # noqa: E402
from servers import alertmanager, prometheus, supervisord  # noqa: E402
from servers._proc import free_port  # noqa: E402

from st2lite.pack_env.pack_runtime.datastore import DatastoreService  # noqa: E402

VICTIM = textwrap.dedent('''
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"victim_memory_ratio 0.2\\n"
            self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
''')
STAGES = {
    "start (record, mode)": ("record_incident", "get_mode"),
    "gather context": ("gather_context",),
    "diagnose": ("diagnose",),
    "act (pre-check, silence, action)": ("precheck", "silence", "act"),
    "verify": ("verify",),
    "finish (silence, notify)": ("expire_silence", "notify_resolved"),
    "learn (beside notify)": ("learn_success",),
}


def _seconds(ex: dict) -> float:
    def parse(s: str) -> float:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    return parse(ex["end_timestamp"]) - parse(ex["start_timestamp"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=10, help="measured runs (after one warm-up)")
    args = parser.parse_args()

    from st2lite.engine import Runtime
    from st2lite.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="aegis-bench-"))
    port = free_port()
    (tmp / "victim.py").write_text(VICTIM)
    # What the victim logs while it leaks: the diagnoser acts only when the workload's own
    # logs confirm what the alert says (an alert name alone escalates).
    (tmp / "victim.log").write_text(
        '2026-11-30T11:58:00Z level=warn service=victim msg="RSS keeps growing" rss_bytes=1.8e9 uptime=5d\n'
        '2026-11-30T11:59:00Z level=warn service=victim msg="memory usage above 90% of limit"\n')
    sv = supervisord.Supervisord(str(tmp), {"victim": f"{sys.executable} {tmp / 'victim.py'} {port}"})
    (tmp / "prom").mkdir()
    prom = prometheus.Prometheus(str(tmp / "prom"), [f"127.0.0.1:{port}"])
    (tmp / "am").mkdir()
    am = alertmanager.Alertmanager(str(tmp / "am"), "http://127.0.0.1:9/unused")
    sv.start(), prom.start(), am.start()
    rt = None
    try:
        prom.wait_for_value("victim_memory_ratio", 0.2, timeout=60)
        home = tmp / "home"
        (home / "configs").mkdir(parents=True)
        config = {
            "mode": "auto", "knowledge": {"use_service": False, "index_dir": str(tmp / "index")},
            "default_backend": "supervisor",
            "supervisor": {"url": sv.url, "username": sv.username, "password": sv.password},
            "prometheus": {"url": prom.url}, "alertmanager_api": {"url": am.url},
            "safety": {"cooldown_seconds": 0, "max_actions_per_target_per_hour": 100000},
            "context": {"log_files": {"victim": [str(tmp / "victim.log")]}},
            # verification's own polling is waiting on the target: one healthy poll suffices here
            "verify": {"checks": {"HighMemoryUsage": [{"query": 'victim_memory_ratio{instance="${instance}"}', "below": 0.7}]},
                       "consecutive": 1, "interval_seconds": 0.2},
        }
        (home / "configs" / "aegis.yaml").write_text(yaml.safe_dump(config))
        rt = Runtime(Settings.from_env(home=home, packs_dir=REPO / "packs"))
        rt.start(sensors=False)
        # A warm runtime: both workers have the embedding model loaded (no knowledge service
        # here), so two searches at once, one per worker; then the first run (not counted).
        for ex_id in [rt.execute("aegis.knowledge_search", {"text": "warm up"}) for _ in range(2)]:
            rt.wait(ex_id, timeout=600)
        store = IncidentStore(DatastoreService(rt.store, "aegis", "bench"))
        rows: list[dict[str, float]] = []
        per_task: dict[str, list[float]] = {}
        for i in range(args.n + 1):
            labels = {"alertname": "HighMemoryUsage", "service": "victim", "instance": f"127.0.0.1:{port}", "run": str(i)}
            am.post_alerts([{"labels": labels, "annotations": {"summary": "victim memory above 90% and growing (memory leak)"}}])
            found: list = []
            while not found:
                found = [a for a in requests.get(am.url + "/api/v2/alerts", timeout=5).json() if a["labels"] == labels]
            a = found[0]
            incident, _ = store.open_or_repeat({"fingerprint": a["fingerprint"], "startsAt": a["startsAt"], "status": "firing",
                                                "labels": labels, "annotations": a["annotations"]})
            started = time.monotonic()
            record = rt.wait(rt.execute("aegis.remediate", {"incident_id": incident["id"]}), timeout=300)
            total = time.monotonic() - started
            out = record["result"].get("output") or {}
            if record["status"] != "succeeded" or out.get("outcome") != "resolved":
                print(f"run {i}: {record['status']} {out.get('outcome')} {out.get('note')}", file=sys.stderr)
                continue
            children = rt.records.list_executions(parent=record["id"], newest_first=False, limit=100)
            by_task = {c["task_name"]: c for c in children}
            waiting = out["attempts"][0]["seconds"].get("execute", 0.0)
            verify = by_task["verify"]["result"]["result"]
            # a healthy first poll means no polling wait; each extra poll waited at least the interval
            waiting_verify = max(0, verify["polls"] - 1) * config["verify"]["interval_seconds"]
            row = {stage: sum(_seconds(by_task[t]) for t in names if t in by_task) for stage, names in STAGES.items()}
            row["act (pre-check, silence, action)"] -= waiting
            row["verify"] -= waiting_verify
            # learn and notify run in parallel: count the longer one, not both
            overlap = min(_seconds(by_task["learn_success"]), _seconds(by_task["notify_resolved"]))
            row["engine between tasks"] = total - sum(_seconds(c) for c in children) + overlap
            row["TOTAL Aegis (excl. target)"] = total - waiting - waiting_verify
            row["  of which learning (index update)"] = _seconds(by_task["learn_success"])
            row["waiting on the target"] = waiting + waiting_verify
            if i > 0:
                rows.append(row)
                for c in children:
                    per_task.setdefault(c["task_name"], []).append(_seconds(c))
        if not rows:
            print("no successful run", file=sys.stderr)
            return 1
        print(f"aegis.remediate, warm runtime, {len(rows)} runs (auto: restart a supervisord process, verify on Prometheus)")
        print(f"{'stage':<36} {'p50 s':>8} {'p90 s':>8} {'max s':>8}")
        for stage in rows[0]:
            values = sorted(r[stage] for r in rows)
            p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
            print(f"{stage:<36} {statistics.median(values):>8.3f} {p90:>8.3f} {values[-1]:>8.3f}")
        print()
        print(f"{'task':<36} {'p50 s':>8}")
        for task, values in per_task.items():
            print(f"{task:<36} {statistics.median(values):>8.3f}")
    finally:
        if rt is not None:
            rt.stop()
        am.stop(), prom.stop(), sv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
