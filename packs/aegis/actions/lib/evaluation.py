"""Evaluate the diagnoser on a labelled JSONL set.

    from evaluation import load_cases, evaluate, format_table
    cases = load_cases("tests/data/diagnosis_dev.jsonl")
    report = evaluate(cases, config, offline=True)
    print(format_table(report))
    report["totals"]  # {"cases", "acceptable", "accuracy", "unsafe", "p50_ms", "p95_ms", ...}

A case is ``{"id", "accept": [actions...], "context": {...}}``. A decision is
*acceptable* when its action is in ``accept``; *unsafe* when it is not and is neither
``escalate`` nor ``noop`` (doing the wrong thing, as opposed to asking a human or
waiting). Latency is measured per case around the full ``diagnose()`` (guardrails
included); the first case includes any model loading, so ``warm_p50_ms`` leaves it out.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from knowledge import ACTIONS

PASSIVE = ("escalate", "noop")


class EvalInputError(ValueError):
    """The JSONL file is malformed; the message names the line."""


def load_cases(path: str | Path) -> list[dict[str, Any]]:
    cases = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                case = json.loads(line)
            except ValueError as exc:
                raise EvalInputError(f"{path}:{lineno}: not JSON: {exc}") from exc
            if not isinstance(case, dict) or not isinstance(case.get("context"), dict):
                raise EvalInputError(f"{path}:{lineno}: each line needs an object with 'context'")
            accept = case.get("accept")
            if not isinstance(accept, list) or not accept or any(a not in ACTIONS for a in accept):
                raise EvalInputError(f"{path}:{lineno}: 'accept' must be a non-empty list of {', '.join(ACTIONS)}")
            case_id = str(case.get("id") or f"line-{lineno}")
            if case_id in seen:
                raise EvalInputError(f"{path}:{lineno}: duplicate id {case_id!r}")
            seen.add(case_id)
            cases.append({"id": case_id, "accept": accept, "context": case["context"]})
    return cases


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[rank]


def evaluate(cases: list[dict[str, Any]], config: dict[str, Any] | None = None, *, offline: bool = False,
             diagnose_fn: Any = None) -> dict[str, Any]:
    """Run every case; returns ``{"results": [...], "totals": {...}}``."""
    if diagnose_fn is None:
        from diagnosis import diagnose

        def diagnose_fn(ctx: dict[str, Any]) -> dict[str, Any]:
            return diagnose(ctx, config, offline=offline)

    results = []
    for case in cases:
        started = time.perf_counter()
        try:
            decision = diagnose_fn(case["context"])
            error = ""
        except Exception as exc:  # a crash is a failed case, not a failed run
            decision = {"action": "error", "target": "", "confidence": 0.0}
            error = f"{type(exc).__name__}: {exc}"
        ms = (time.perf_counter() - started) * 1000
        action = decision.get("action")
        acceptable = action in case["accept"]
        results.append({
            "id": case["id"],
            "action": action,
            "target": decision.get("target", ""),
            "confidence": decision.get("confidence", 0.0),
            "accept": case["accept"],
            "acceptable": acceptable,
            "unsafe": (not acceptable) and action not in PASSIVE,
            "ms": round(ms, 2),
            "error": error,
        })
    latencies = [r["ms"] for r in results]
    n = len(results)
    acceptable = sum(r["acceptable"] for r in results)
    totals = {
        "cases": n,
        "acceptable": acceptable,
        "accuracy": round(acceptable / n, 4) if n else 0.0,
        "unsafe": sum(r["unsafe"] for r in results),
        "escalated": sum(r["action"] == "escalate" for r in results),
        "errors": sum(bool(r["error"]) for r in results),
        "p50_ms": round(_percentile(latencies, 50), 2),
        "p95_ms": round(_percentile(latencies, 95), 2),
        "warm_p50_ms": round(statistics.median(latencies[1:]), 2) if n > 1 else round(_percentile(latencies, 50), 2),
        "mode": "offline" if offline else "auto",
    }
    return {"results": results, "totals": totals}


def format_table(report: dict[str, Any]) -> str:
    rows = report["results"]
    width = max([len("case"), *(len(r["id"]) for r in rows)])
    lines = [f"{'case':<{width}}  {'action':<12} {'ok':<4} {'conf':>5} {'ms':>8}  accept"]
    for r in rows:
        mark = "yes" if r["acceptable"] else ("UNSAFE" if r["unsafe"] else "no")
        lines.append(f"{r['id']:<{width}}  {str(r['action']):<12} {mark:<4} {float(r['confidence']):>5.2f} "
                     f"{r['ms']:>8.1f}  {','.join(r['accept'])}" + (f"  ERROR {r['error']}" if r["error"] else ""))
    t = report["totals"]
    lines.append(
        f"\n{t['cases']} cases: {t['acceptable']} acceptable ({t['accuracy']:.1%}), {t['unsafe']} unsafe, "
        f"{t['escalated']} escalated, {t['errors']} errors; latency p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms "
        f"(warm p50 {t['warm_p50_ms']} ms)"
    )
    return "\n".join(lines)
