"""Retrieval and diagnosis latency, and what one alert costs with and without the warm service.

    PYTHONPATH=st2lite/pack_env:packs/aegis/actions/lib .venvs/aegis/bin/python bench/retrieval.py [--entries 10000]

Prints:
1. search latency (p50/p99) on an index of ``--entries`` documents (the runbooks plus
   synthetic incidents), for a bare ``faiss.IndexFlatIP.search`` and for
   ``KnowledgeIndex.search_vector`` on the same index (the target: within 3x of bare);
   plus the full text search (query embedding included) for reference;
2. offline diagnosis p50 warm (model loaded, in-process) over the dev set's contexts;
3. the per-alert cost in a fresh process (what a real StackStorm pays per python action):
   answered by the knowledge service (model warm elsewhere) vs in-process cold (imports
   torch and loads the model).

Synthetic incidents: a few hundred incident texts are embedded for real; the rest of the
10k vectors are those plus small noise, renormalised (embedding 10k texts would take
minutes on 2 cores and does not change search cost, which depends only on the count).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "packs" / "aegis" / "actions" / "lib"
sys.path[:0] = [str(REPO / "st2lite" / "pack_env"), str(LIB)]
os.environ.pop("ANTHROPIC_API_KEY", None)

ALERTS = ["HighMemoryUsage", "KubePodCrashLooping", "HighErrorRate", "NodeFilesystemAlmostOutOfSpace",
          "PostgresLongRunningQuery", "RedisMemoryHigh", "KafkaConsumerLagHigh", "HighRequestLatency"]
SERVICES = ["checkout", "cart", "search", "billing", "auth", "reports", "orders", "inventory", "ledger"]
ACTIONS = ["restart", "scale_up", "rollback", "cleanup_disk", "cancel_query", "clear_cache"]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fmt(values: list[float]) -> str:
    return f"p50 {pct(values, 50):8.3f} ms   p99 {pct(values, 99):8.3f} ms"


def build_big_index(settings, entries: int) -> None:
    import faiss
    import numpy as np

    from knowledge import KnowledgeIndex, embed

    index = KnowledgeIndex(settings)
    index.update()
    snap = index.snapshot()
    base_vectors = snap.index.reconstruct_n(0, snap.index.ntotal)
    docs = list(snap.docs)
    rng = random.Random(7)
    texts = [f"Past incident {rng.choice(ALERTS)} on {rng.choice(SERVICES)}-{i}: {rng.choice(ACTIONS)} "
             f"{rng.choice(['fixed it', 'did not fix it'])} after {rng.randint(1, 90)} minutes" for i in range(400)]
    seeds = embed(settings.embedding_model, texts)
    n_extra = max(0, entries - len(docs))
    nrng = np.random.default_rng(7)
    picks = nrng.integers(0, len(seeds), n_extra)
    extra = seeds[picks] + nrng.normal(0, 0.02, (n_extra, seeds.shape[1])).astype("float32")
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    for i, pick in enumerate(picks):
        docs.append({"id": f"incident-bench-{i}", "kind": "incident", "title": texts[pick][:80], "action": "restart",
                     "safety": "safe", "signature": f"Bench|{i}", "outcome": "resolved"})
    matrix = np.ascontiguousarray(np.vstack([base_vectors, extra]), dtype="float32")
    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(matrix)
    manifest = dict(snap.manifest, count=len(docs), sources={d["id"]: "bench" for d in docs})
    index._write_generation(manifest, docs, flat)


def fresh_process(code: str, env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    wall = (time.perf_counter() - started) * 1000
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return wall, json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--dev-set", default=str(REPO / "tests" / "data" / "diagnosis_dev.jsonl"))
    args = parser.parse_args()

    from knowledge import KnowledgeIndex, KnowledgeSettings, embed

    work = Path(tempfile.mkdtemp(prefix="aegis-bench-"))
    knowledge_cfg = {"runbooks_dir": str(REPO / "knowledge" / "runbooks"), "index_dir": str(work / "index"),
                     "use_service": False}
    settings = KnowledgeSettings.from_config({"knowledge": knowledge_cfg})
    t0 = time.perf_counter()
    build_big_index(settings, args.entries)
    index = KnowledgeIndex(settings)
    snap = index.snapshot()
    print(f"index: {snap.index.ntotal} entries, dim {snap.index.d} (built in {time.perf_counter() - t0:.1f} s)")

    rng = random.Random(11)
    queries_text = [f"{rng.choice(ALERTS)} on {rng.choice(SERVICES)}: {rng.choice(['pods restarting', 'disk full', 'slow queries', 'latency up after deploy'])} {i}"
                    for i in range(args.queries)]
    qvecs = embed(settings.embedding_model, queries_text)

    bare, ours, full = [], [], []
    for v in qvecs:  # warm both paths once
        snap.index.search(v.reshape(1, -1), 5)
        index.search_vector(v, 5, snapshot=snap)
        break
    for v in qvecs:
        q = v.reshape(1, -1)
        t = time.perf_counter()
        snap.index.search(q, 5)
        bare.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        index.search_vector(v, 5)
        ours.append((time.perf_counter() - t) * 1000)
    for text in queries_text[:100]:
        t = time.perf_counter()
        index.search(text + " (uncached)", 5)
        full.append((time.perf_counter() - t) * 1000)
    ratio = pct(ours, 50) / max(pct(bare, 50), 1e-9)
    print("\nsearch, k=5, over", snap.index.ntotal, "entries")
    print(f"  bare faiss IndexFlatIP.search     {fmt(bare)}")
    print(f"  KnowledgeIndex.search_vector      {fmt(ours)}   ({ratio:.2f}x bare at p50; target <= 3x)")
    print(f"  KnowledgeIndex.search (text)      {fmt(full)}   (includes embedding the query)")

    # offline diagnosis, warm, on the real runbook index (not the 10k one)
    small = {"runbooks_dir": knowledge_cfg["runbooks_dir"], "index_dir": str(work / "small"), "use_service": False}
    config = {"knowledge": small}
    KnowledgeIndex(KnowledgeSettings.from_config(config)).update()
    from diagnosis import diagnose

    contexts = []
    if Path(args.dev_set).exists():
        contexts = [json.loads(line)["context"] for line in open(args.dev_set) if line.strip()]
    if not contexts:
        raise SystemExit(f"no contexts: {args.dev_set} missing")
    diagnose(contexts[0], config)
    warm = []
    for ctx in contexts:
        t = time.perf_counter()
        diagnose(ctx, config, offline=True)
        warm.append((time.perf_counter() - t) * 1000)
    print(f"\noffline diagnosis, warm (in-process, {len(warm)} dev-set contexts)   {fmt(warm)}   (target p50 < 50 ms)")

    # per-alert cost in a fresh process: service vs in-process cold
    from knowledge_service import KnowledgeService

    svc = KnowledgeService(KnowledgeSettings.from_config(config), port=0)
    svc.start()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "st2lite" / "pack_env"), str(LIB)])
    ctx_json = json.dumps(contexts[0])
    code_tpl = (
        "import json, sys, time\nt0 = time.perf_counter()\nfrom diagnosis import diagnose\n"
        "t1 = time.perf_counter()\n"
        "cfg = json.loads(CFG)\n"
        "d = diagnose(json.loads(CTX), cfg, offline=True)\n"
        "t2 = time.perf_counter()\n"
        "print(json.dumps({'import_ms': (t1 - t0) * 1000, 'diagnose_ms': (t2 - t1) * 1000, 'action': d['action'], "
        "'torch': 'torch' in sys.modules}))\n"
    )

    def code(cfg: dict) -> str:
        return code_tpl.replace("CFG", repr(json.dumps(cfg))).replace("CTX", repr(ctx_json))

    served_cfg = {"knowledge": {**small, "use_service": True, "service_port": svc.port, "service_timeout": 5}}
    cold_cfg = {"knowledge": small}
    served = [fresh_process(code(served_cfg), env) for _ in range(5)]
    cold = [fresh_process(code(cold_cfg), env) for _ in range(2)]
    svc.stop()

    def show(label: str, runs: list[tuple[float, dict]]) -> None:
        walls = [w for w, _ in runs]
        diag = [r["diagnose_ms"] for _, r in runs]
        print(f"  {label:<34} process wall p50 {statistics.median(walls):8.0f} ms   diagnose() p50 "
              f"{statistics.median(diag):8.1f} ms   torch imported: {runs[0][1]['torch']}")

    print("\nper alert in a fresh process (a real st2 python action):")
    show("via the knowledge service (warm)", served)
    show("in-process, cold (loads the model)", cold)
    print("\n(st2lite's warm workers keep the model cached per worker after the first alert: "
          f"that is the warm p50 above, {pct(warm, 50):.1f} ms)")


if __name__ == "__main__":
    main()
