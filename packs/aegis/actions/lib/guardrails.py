"""Guardrails applied to every diagnosis, whichever path (LLM or offline) produced it.

    from guardrails import apply_guardrails
    safe_decision = apply_guardrails(decision, context, config)

Each rule can only move a decision towards safety (to ``escalate``), never away from it,
and says why in ``reasoning`` ("guardrail: ..."). The rules:

- the action must be in the catalogue;
- an acting decision needs a target that is the value of one of the alert's labels
  (text from logs or annotations can never choose what is acted on);
- data volumes and databases are never ``cleanup_disk`` targets; stateful workloads are
  never restarted and session stores never cleared automatically;
- security signals always escalate (a ``noop`` too);
- a ``rollback`` needs a recorded deploy of the alerting workload before the alert;
- a runbook of safety ``forbidden`` cited for the chosen action escalates;
- confidence below ``diagnosis.min_confidence`` (default 0.5) escalates.

The result always has exactly the decision keys, with valid types.
"""

from __future__ import annotations

import re
from typing import Any

from diagnosis import (
    TARGET_LABELS,
    Context,
    is_data_volume,
    is_disk_alert,
    is_stateful,
    normalize_context,
    pick_target,
    recent_deploy,
    security_signal,
)

from knowledge import ACTIONS, KnowledgeError, KnowledgeSettings

ACTING = ("restart", "scale_up", "rollback", "cleanup_disk", "cancel_query", "clear_cache")
KEYS = ("action", "target", "root_cause", "confidence", "evidence", "reasoning", "safety")
SAFETY = ("safe", "caution", "forbidden")
DEFAULT_MIN_CONFIDENCE = 0.5

# Lines that try to instruct the system; their presence makes the LLM path double-check.
INJECTION = re.compile(
    r"ignore (all |any )?(the )?(previous|prior|above|earlier) (instructions|prompts?|rules)|disregard (the |all )?"
    r"(previous|prior|above|system)|you are now|new instructions|system prompt|as an ai|"
    r"(rollback|restart|delete|scale|drop) all (services|deployments|pods|tables|databases)|</?(system|instructions?)>",
    re.IGNORECASE,
)


def injection_suspected(ctx: Context) -> bool:
    return bool(INJECTION.search(ctx.log_text) or INJECTION.search(ctx.annotation_text))


def _clean(decision: Any) -> dict[str, Any]:
    d = decision if isinstance(decision, dict) else {}
    try:
        confidence = float(d.get("confidence", 0.0))
    except (TypeError, ValueError):
        confidence = 0.0
    if confidence != confidence:  # NaN
        confidence = 0.0
    evidence = []
    for item in d.get("evidence") or []:
        if isinstance(item, dict) and item.get("id"):
            try:
                sim = float(item.get("similarity", 0.0))
            except (TypeError, ValueError):
                sim = 0.0
            evidence.append({"id": str(item["id"]), "kind": str(item.get("kind") or "runbook"),
                             "similarity": round(sim, 3)})
    safety = d.get("safety") if d.get("safety") in SAFETY else "caution"
    return {
        "action": str(d.get("action", "")),
        "target": str(d.get("target") or ""),
        "root_cause": str(d.get("root_cause") or "")[:500],
        "confidence": round(max(0.0, min(1.0, confidence)), 3),
        "evidence": evidence[:8],
        "reasoning": str(d.get("reasoning") or "")[:2000],
        "safety": safety,
    }


def _forbidden_runbooks(decision: dict[str, Any], settings: KnowledgeSettings | None) -> list[str]:
    if settings is None:
        return []
    from diagnosis import runbooks_for

    try:
        books = runbooks_for(settings)
    except KnowledgeError:
        return []
    cited = [e["id"] for e in decision["evidence"] if e["kind"] == "runbook"]
    return [rid for rid in cited if rid in books and books[rid].safety == "forbidden"
            and books[rid].action == decision["action"]]


def apply_guardrails(
    decision: Any,
    context: dict[str, Any] | Context,
    config: dict[str, Any] | None = None,
    *,
    settings: KnowledgeSettings | None = None,
) -> dict[str, Any]:
    """Return a decision that satisfies every guardrail (see module docstring)."""
    ctx = context if isinstance(context, Context) else normalize_context(context)
    diag_cfg = dict((config or {}).get("diagnosis") or {})
    min_conf = float(diag_cfg.get("min_confidence", DEFAULT_MIN_CONFIDENCE))
    window = float(diag_cfg.get("deploy_window_minutes", 120))
    d = _clean(decision)
    labels = ctx.labels
    label_values = {v for v in labels.values() if v}
    reasons: list[str] = []

    action = d["action"]
    if action not in ACTIONS:
        reasons.append(f"action {action!r} is not in the catalogue")
    elif action == "noop" and security_signal(ctx):
        # Doing nothing about a possible intrusion is a decision for a human too.
        reasons.append(f"security signal ({security_signal(ctx)}) always escalates")
    elif action in ACTING:
        if not d["target"] or d["target"] not in label_values:
            reasons.append(f"target {d['target']!r} is not one of the alert's label values")
        elif d["target"] not in {labels.get(k) for k in TARGET_LABELS[action]}:
            reasons.append(f"target {d['target']!r} is not a label that {action} can act on")
        sec = security_signal(ctx)
        if sec:
            reasons.append(f"security signal ({sec}) always escalates")
        if action == "cleanup_disk" and (is_data_volume(ctx) or is_stateful(labels)):
            reasons.append("data volumes and databases are never cleanup targets")
        if action == "cleanup_disk" and not is_disk_alert(ctx) and "no space left" not in ctx.log_text.lower():
            reasons.append("cleanup_disk for an alert that is not about a disk")
        if action == "restart" and is_stateful(labels):
            reasons.append("stateful workloads (databases, brokers) are never restarted automatically")
        if action == "clear_cache" and re.search(r"session", " ".join(labels.values()), re.I):
            reasons.append("a session store is never cleared automatically")
        if action == "rollback" and recent_deploy(ctx, window_minutes=window) is None:
            reasons.append("rollback without a recorded deploy of the workload before the alert")
        if d["safety"] == "forbidden":
            reasons.append("the action is classed forbidden")
        forbidden = _forbidden_runbooks(d, settings)
        if forbidden:
            reasons.append(f"runbook {forbidden[0]} forbids {action}")
        if d["confidence"] < min_conf:
            reasons.append(f"confidence {d['confidence']} is below {min_conf}")

    if reasons:
        prior = f"{action} on {d['target']!r}" if action else "an empty decision"
        d["reasoning"] = (f"guardrail: {'; '.join(reasons)} (was {prior}). " + d["reasoning"]).strip()[:2000]
        d["action"] = "escalate"
        d["safety"] = "forbidden" if any("security" in r or "never" in r for r in reasons) else "caution"
    if d["action"] in ("noop", "escalate") and d["target"] not in label_values:
        d["target"] = pick_target(d["action"], labels)
    return {k: d[k] for k in KEYS}
