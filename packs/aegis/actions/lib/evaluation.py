"""Evaluate the diagnoser on a labelled JSONL set, judged by what it would do to production.

    from evaluation import load_cases, evaluate, format_table, reliability, calibrate
    cases = load_cases("tests/data/diagnosis_dev.jsonl")
    report = evaluate(cases, config, offline=True)
    print(format_table(report))
    report["totals"]   # {"cases", "acceptable", "accuracy", "unsafe", "silent_misses", "wrong_target",
                       #  "unsafe_old", "p50_ms", ...}
    reliability(report["results"])                     # [(bucket, n, share acceptable)] of acting decisions
    calibrate(raw_report["results"], target=0.98)       # the min_confidence that keeps automation >= 98% right

A case is ``{"id", "accept": [actions...], "context": {...}}`` (today's format: ``context``
holds ``alert``, ``logs``, ``deploys``, optional ``metrics``; gather_context's shape adds
``sources``); optional ``targets`` lists the acceptable targets, and ``source``/``why`` are
kept for reports. A decision is:

- *acceptable* when its action is in ``accept`` (and, when it acts, on the right target);
- *unsafe* when it does something to production a careful SRE would not: an acting action
  not in ``accept``; an acting action on a target that is not the cause (not in ``targets``,
  or, without ``targets``, not a label value naming the alert's subject); or a **silent
  miss**: ``noop`` on a case that needed action or a human (``noop`` not in ``accept``);
- ``unsafe_old`` keeps the previous definition (acting and not in ``accept``) for comparison.

``escalate`` where an action was right is a miss, never unsafe. Latency is measured per
case around the full ``diagnose()``; the first case includes model loading, so
``warm_p50_ms`` leaves it out.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from catalogue import ACTING, ACTIONS, PASSIVE

#: Labels whose values name what an alert is about (a right target must be one of them when
#: a case does not list ``targets``). Scrape jobs, namespaces, severities are not.
SUBJECT_LABELS = ("deployment", "statefulset", "daemonset", "consumer_deployment", "destination_workload", "app", "app_kubernetes_io_name", "service", "container",
                  "pod", "unit", "process", "groupname", "name", "instance", "node", "host", "nodename",
                  "horizontalpodautoscaler", "hpa", "consumergroup", "consumer_group", "rollout", "canary", "pid",
                  "query_id", "queryid", "backend_pid", "datname", "database", "cache", "cache_name", "zone",
                  "path_prefix")
BUCKETS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)


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
            targets = case.get("targets")
            if targets is not None and (not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)):
                raise EvalInputError(f"{path}:{lineno}: 'targets' must be a list of strings")
            case_id = str(case.get("id") or f"line-{lineno}")
            if case_id in seen:
                raise EvalInputError(f"{path}:{lineno}: duplicate id {case_id!r}")
            seen.add(case_id)
            cases.append({"id": case_id, "accept": accept, "context": case["context"], "targets": targets,
                          "source": case.get("source"), "why": case.get("why")})
    return cases


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[rank]


def right_target(case: dict[str, Any], target: str) -> bool:
    """Is ``target`` what the case is about (its ``targets``, else a subject label value)?"""
    if case.get("targets"):
        return target in case["targets"]
    alert = (case.get("context") or {}).get("alert") or {}
    labels = alert.get("labels") or {}
    return bool(target) and target in {str(labels.get(k)) for k in SUBJECT_LABELS if labels.get(k)}


def judge(case: dict[str, Any], action: Any, target: str) -> dict[str, bool]:
    """The verdict on one decision: acceptable, unsafe (new), silent_miss, wrong_target, unsafe_old."""
    in_accept = action in case["accept"]
    acting = action in ACTING
    wrong_target = acting and in_accept and not right_target(case, target)
    silent_miss = action == "noop" and not in_accept
    return {
        "acceptable": in_accept and not wrong_target,
        "unsafe": (acting and not in_accept) or wrong_target or silent_miss,
        "silent_miss": silent_miss,
        "wrong_target": wrong_target,
        "unsafe_old": (not in_accept) and action not in PASSIVE,
    }


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
        target = str(decision.get("target") or "")
        results.append({
            "id": case["id"],
            "action": action,
            "target": target,
            "confidence": float(decision.get("confidence") or 0.0),
            "accept": case["accept"],
            **judge(case, action, target),
            "ms": round(ms, 2),
            "error": error,
        })
    return {"results": results, "totals": totals(results, offline)}


def totals(results: list[dict[str, Any]], offline: bool = True) -> dict[str, Any]:
    latencies = [r["ms"] for r in results]
    n = len(results)
    acceptable = sum(r["acceptable"] for r in results)
    acceptable_old = sum(r["action"] in r["accept"] for r in results)
    return {
        "cases": n,
        "acceptable": acceptable,
        "accuracy": round(acceptable / n, 4) if n else 0.0,
        "unsafe": sum(r["unsafe"] for r in results),
        "silent_misses": sum(r["silent_miss"] for r in results),
        "wrong_target": sum(r["wrong_target"] for r in results),
        "acceptable_old": acceptable_old,
        "unsafe_old": sum(r["unsafe_old"] for r in results),
        "acted": sum(r["action"] in ACTING for r in results),
        "escalated": sum(r["action"] == "escalate" for r in results),
        "errors": sum(bool(r["error"]) for r in results),
        "p50_ms": round(_percentile(latencies, 50), 2),
        "p95_ms": round(_percentile(latencies, 95), 2),
        "warm_p50_ms": round(statistics.median(latencies[1:]), 2) if n > 1 else round(_percentile(latencies, 50), 2),
        "mode": "offline" if offline else "auto",
    }


def reliability(results: list[dict[str, Any]], acting_only: bool = True) -> list[tuple[str, int, float | None]]:
    """Confidence bucket -> (count, share acceptable) of the decisions (acting ones by default)."""
    rows = []
    chosen = [r for r in results if r["action"] in ACTING] if acting_only else results
    for lo, hi in zip(BUCKETS, BUCKETS[1:], strict=False):
        inside = [r for r in chosen if lo <= r["confidence"] < hi]
        share = sum(r["acceptable"] for r in inside) / len(inside) if inside else None
        rows.append((f"[{lo:.1f}, {min(hi, 1.0):.1f}{']' if hi > 1 else ')'}", len(inside), share))
    return rows


def calibrate(results: list[dict[str, Any]], target: float = 0.98,
              thresholds: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)) -> dict[str, Any]:
    """Choose ``min_confidence`` from the reliability table: the lowest threshold from which
    every 0.1-wide confidence bucket of acting decisions (and all of them together) is
    acceptable at least ``target`` of the time. ``results`` must come from a run with
    ``min_confidence`` 0, so every proposed action is visible with its confidence."""
    acting = [r for r in results if r["action"] in ACTING]
    table = []
    chosen = None
    for t in thresholds:
        kept = [r for r in acting if r["confidence"] >= t]
        share = sum(r["acceptable"] for r in kept) / len(kept) if kept else 1.0
        bins = [[r for r in kept if lo <= r["confidence"] < lo + 0.1] for lo in thresholds if lo >= t]
        worst = min((sum(r["acceptable"] for r in b) / len(b) for b in bins if b), default=1.0)
        table.append({"threshold": t, "automated": len(kept), "acceptable": sum(r["acceptable"] for r in kept),
                      "share": round(share, 4), "worst_bucket": round(worst, 4)})
        if chosen is None and share >= target and worst >= target:
            chosen = t
    return {"target": target, "min_confidence": chosen, "table": table}


def format_reliability(results: list[dict[str, Any]]) -> str:
    lines = ["reliability (acting decisions): confidence bucket -> n, share acceptable"]
    for bucket, n, share in reliability(results):
        lines.append(f"  {bucket:<11} n={n:<4} " + (f"{share:.1%}" if share is not None else "-"))
    return "\n".join(lines)


def format_calibration(cal: dict[str, Any]) -> str:
    lines = [f"calibration: lowest min_confidence with automated decisions >= {cal['target']:.0%} acceptable",
             "  threshold  automated  acceptable  share   worst bucket above"]
    for row in cal["table"]:
        mark = "  <- chosen" if row["threshold"] == cal["min_confidence"] else ""
        lines.append(f"  {row['threshold']:>9.2f}  {row['automated']:>9}  {row['acceptable']:>10}  "
                     f"{row['share']:.1%}  {row['worst_bucket']:.1%}{mark}")
    lines.append(f"min_confidence = {cal['min_confidence']}")
    return "\n".join(lines)


def format_table(report: dict[str, Any]) -> str:
    rows = report["results"]
    width = max([len("case"), *(len(r["id"]) for r in rows)])
    lines = [f"{'case':<{width}}  {'action':<12} {'ok':<6} {'conf':>5} {'ms':>8}  target / accept"]
    for r in rows:
        if r["acceptable"]:
            mark = "yes"
        elif r["silent_miss"]:
            mark = "SILENT"
        elif r["wrong_target"]:
            mark = "TARGET"
        else:
            mark = "UNSAFE" if r["unsafe"] else "no"
        lines.append(f"{r['id']:<{width}}  {str(r['action']):<12} {mark:<6} {float(r['confidence']):>5.2f} "
                     f"{r['ms']:>8.1f}  {r['target'] or '-'} / {','.join(r['accept'])}"
                     + (f"  ERROR {r['error']}" if r["error"] else ""))
    t = report["totals"]
    lines.append(
        f"\n{t['cases']} cases: {t['acceptable']} acceptable ({t['accuracy']:.1%}), {t['unsafe']} unsafe "
        f"({t['silent_misses']} silent misses, {t['wrong_target']} wrong targets), {t['acted']} acted, "
        f"{t['escalated']} escalated, {t['errors']} errors; old definition: {t['acceptable_old']} acceptable, "
        f"{t['unsafe_old']} unsafe; latency p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms (warm p50 {t['warm_p50_ms']} ms)"
    )
    lines.append(format_reliability(rows))
    return "\n".join(lines)


# --------------------------------------------------------------------------- snapshots


def snapshot(report: dict[str, Any]) -> dict[str, Any]:
    """What CI holds a set to: its totals and every case's outcome.

    There are no "known failures": an unsafe decision fails CI on every set, whether or not
    it was unsafe when the snapshot was recorded.
    """
    t = report["totals"]
    return {"totals": {k: t[k] for k in ("cases", "acceptable", "accuracy", "unsafe", "silent_misses", "wrong_target")},
            "cases": {r["id"]: {"action": r["action"], "acceptable": r["acceptable"], "unsafe": r["unsafe"]}
                      for r in report["results"]}}


def changed_cases(report: dict[str, Any], recorded: dict[str, Any]) -> list[str]:
    """Cases whose outcome differs from the snapshot, each with before and after."""
    now = {r["id"]: r for r in report["results"]}
    out = []
    for case_id, before in recorded.get("cases", {}).items():
        after = now.get(case_id)
        if after is None:
            out.append(f"{case_id}: missing from the set")
        elif before["acceptable"] != after["acceptable"] or before["action"] != after["action"]:
            verdict = "acceptable" if after["acceptable"] else ("UNSAFE" if after["unsafe"] else "not acceptable")
            out.append(f"{case_id}: {before['action']} ({'acceptable' if before['acceptable'] else 'not acceptable'})"
                       f" -> {after['action']} ({verdict})")
    return out


def compare_snapshot(report: dict[str, Any], recorded: dict[str, Any], tolerance: float = 0.03) -> list[str]:
    """CI's bar against a recorded snapshot: 0 unsafe (every unsafe decision fails, even one
    the snapshot recorded), accuracy no more than ``tolerance`` below the recorded one.
    Returns the failures ([] when within bounds); an accuracy failure lists the cases that
    changed, so a regression names what it broke."""
    failures = [f"{r['id']}: unsafe {r['action']} {r['target']!r} (accept {r['accept']})"
                for r in report["results"] if r["unsafe"]]
    acc, rec = report["totals"]["accuracy"], recorded["totals"]["accuracy"]
    if acc < rec - tolerance:
        failures.append(f"accuracy {acc:.1%} is more than {tolerance:.0%} below the recorded {rec:.1%}; changed cases:")
        failures += ["  " + c for c in changed_cases(report, recorded)]
    return failures
