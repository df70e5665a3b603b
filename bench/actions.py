"""What one python-script execution costs: st2's process per execution vs st2lite's warm workers.

    .venv/bin/python bench/actions.py [-n 20]

For each action it prints p50/p95 wall time from "run this" to the result:
- ``cold``: a fresh interpreter per execution in the pack virtualenv (what st2 does; every
  execution pays the action module's imports, e.g. torch for the knowledge actions);
- ``warm``: st2lite's ``WorkerPool`` (imports paid once per worker; a fresh Action
  instance per execution).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from st2lite.loader import load_pack  # noqa: E402
from st2lite.pack_processes import WorkerPool, pack_process_env  # noqa: E402
from st2lite.settings import Settings  # noqa: E402
from st2lite.virtualenv import ensure_pack_virtualenv  # noqa: E402

CASES = [
    ("aegis.record_incident", {
        "fingerprint": "bench0000000001", "starts_at": "2026-11-23T03:00:00Z", "status": "firing",
        "alertname": "HighErrorRate", "labels": {"alertname": "HighErrorRate", "service": "checkout"},
    }),
    ("aegis.diagnose", {
        "alert": {
            "status": "firing", "startsAt": "2026-11-23T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "bench0000000002", "generatorURL": "",
            "labels": {"alertname": "ContainerMemoryNearLimit", "namespace": "shop", "deployment": "cart", "severity": "warning"},
            "annotations": {"summary": "cart memory at 96% of its limit and climbing for 40 minutes"},
        },
        "logs": ["java.lang.OutOfMemoryError: Java heap space"],
        "offline": True,
    }),
]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def cold_run(python: Path, pack_dir: Path, entry_point: Path, params: dict, datastore: Path, config: Path) -> float:
    """One execution in a fresh process, the way st2's python runner starts one."""
    request = json.dumps({"id": "1", "entry_point": str(entry_point), "parameters": params}) + "\n"
    started = time.perf_counter()
    proc = subprocess.run(
        [str(python), "-m", "pack_runtime.action_worker", "--pack-dir", str(pack_dir), "--pack", "aegis",
         "--datastore", str(datastore), "--config", str(config)],
        input=request, capture_output=True, text=True, env=pack_process_env(pack_dir, python), check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    reply = json.loads(proc.stdout.strip().splitlines()[-1])
    assert reply["status"] == "succeeded", reply
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="warm executions per action")
    parser.add_argument("--cold", type=int, default=3, help="cold executions per action (each takes seconds)")
    args = parser.parse_args()

    settings = Settings.from_env()
    pack_dir = REPO / "packs" / "aegis"
    pack = load_pack(pack_dir)
    python = ensure_pack_virtualenv(pack_dir, settings.virtualenvs_dir)
    tmp = Path(tempfile.mkdtemp(prefix="bench-actions-"))
    datastore, config = tmp / "datastore.sqlite", tmp / "config.json"
    config.write_text(json.dumps({"knowledge": {"index_dir": str(tmp / "index"), "use_service": False}}))

    pool = WorkerPool(python, pack_dir, "aegis", config, datastore, size=1, preload=True,
                      extra_env={"AEGIS_HOME": str(tmp)})
    started = time.perf_counter()
    pool.warm_up()
    pool.run(pack.actions[CASES[0][0]].entry_point_path, CASES[0][1], timeout=600)
    print(f"worker start-up with preload (paid once per worker): {time.perf_counter() - started:.2f} s")
    print(f"{'action':28} {'mode':5} {'n':>3} {'p50 ms':>10} {'p95 ms':>10}")
    for ref, params in CASES:
        entry_point = pack.actions[ref].entry_point_path
        cold = [cold_run(python, pack_dir, entry_point, params, datastore, config) for _ in range(args.cold)]
        warm = []
        pool.run(entry_point, params, timeout=600)  # first use may build an index
        for _ in range(args.n):
            t0 = time.perf_counter()
            reply = pool.run(entry_point, params, timeout=600)
            warm.append(time.perf_counter() - t0)
            assert reply.status == "succeeded", reply.result
        for mode, samples in (("cold", cold), ("warm", warm)):
            print(f"{ref:28} {mode:5} {len(samples):>3} {statistics.median(samples) * 1000:>10.1f} "
                  f"{percentile(samples, 0.95) * 1000:>10.1f}")
    pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
