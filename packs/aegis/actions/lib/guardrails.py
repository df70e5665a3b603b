"""Guardrails applied to every diagnosis, whichever path (LLM or offline) produced it.

    from guardrails import apply_guardrails
    safe_decision = apply_guardrails(decision, context, config)

Each rule can only move a decision towards safety (to ``escalate``), never away from it,
and says why in ``reasoning`` ("guardrail: ..."). The rules:

- the action must be in the catalogue;
- an acting decision needs a target that is the value of one of the alert's labels, and
  the one naming the workload or instance the alert is about (``facts.pick_target``):
  text from logs or annotations can never choose what is acted on, and neither can a
  label value that merely appears in the alert (an ``instance`` label naming another service);
- data volumes and databases are never ``cleanup_disk`` targets; stateful workloads are
  never restarted and session stores never cleared automatically;
- security signals always escalate (a ``noop`` too);
- a ``rollback`` needs a recorded deploy of the alerting workload before the alert;
- a runbook of safety ``forbidden`` cited for the chosen action escalates;
- confidence below ``diagnosis.min_confidence`` escalates (default chosen from the dev set's
  reliability table: see ``aegis eval --calibrate``).

The result always has exactly the decision keys, with valid types.
"""

from __future__ import annotations

from typing import Any

from alert_context import Context, normalize_context
from catalogue import ACTING, ACTIONS, KEYS, SAFETY
from facts import TARGET_LABELS, Facts, pick_target
from rules import RuleBook, rules_for

from knowledge import KnowledgeError, KnowledgeSettings

#: Used when the pack config has no ``diagnosis.min_confidence`` (config.schema.yaml has the
#: same default; ``aegis eval --calibrate`` shows where it comes from).
DEFAULT_MIN_CONFIDENCE = 0.5


def injection_suspected(ctx: Context, book: RuleBook | None = None) -> bool:
    """Logs or annotations hold instruction-like or authority-claiming text."""
    return bool(Facts(ctx, book or rules_for(None)).injection)


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
    from scoring import runbooks_for

    try:
        books = runbooks_for(settings)
    except KnowledgeError:
        return []
    cited = [e["id"] for e in decision["evidence"] if e["kind"] == "runbook"]
    return [rid for rid in cited if rid in books and books[rid].safety == "forbidden"
            and books[rid].action == decision["action"]]


def target_problem(action: str, target: str, labels: dict[str, str]) -> str:
    """Why ``target`` may not be acted on for this alert ('' when it is the alert's own workload)."""
    label_values = {v for v in labels.values() if v}
    if not target or target not in label_values:
        return f"target {target!r} is not one of the alert's label values"
    if target not in {labels.get(k) for k in TARGET_LABELS[action]}:
        return f"target {target!r} is not a label that {action} can act on"
    subject = pick_target(action, labels)
    allowed = {subject} | ({labels.get("pod")} if action == "restart" and labels.get("pod") else set())
    if target not in allowed:
        return f"target {target!r} is not the workload the alert is about ({subject!r})"
    return ""


def apply_guardrails(
    decision: Any,
    context: dict[str, Any] | Context,
    config: dict[str, Any] | None = None,
    *,
    settings: KnowledgeSettings | None = None,
    book: RuleBook | None = None,
) -> dict[str, Any]:
    """Return a decision that satisfies every guardrail (see module docstring)."""
    ctx = normalize_context(context)
    diag_cfg = dict((config or {}).get("diagnosis") or {})
    min_conf = float(diag_cfg.get("min_confidence", DEFAULT_MIN_CONFIDENCE))
    facts = Facts(ctx, book or rules_for(config), deploy_window=float(diag_cfg.get("deploy_window_minutes", 120)))
    d = _clean(decision)
    labels = ctx.labels
    label_values = {v for v in labels.values() if v}
    reasons: list[str] = []

    action = d["action"]
    if action not in ACTIONS:
        reasons.append(f"action {action!r} is not in the catalogue")
    elif action == "noop" and facts.security:
        # Doing nothing about a possible intrusion is a decision for a human too.
        reasons.append(f"security signal ({facts.security}) always escalates")
    elif action in ACTING:
        problem = target_problem(action, d["target"], labels)
        if problem:
            reasons.append(problem)
        if facts.security:
            reasons.append(f"security signal ({facts.security}) always escalates")
        if action == "cleanup_disk" and (facts.data_volume or facts.stateful):
            reasons.append("data volumes and databases are never cleanup targets")
        if action == "cleanup_disk" and not facts.disk_alert and not facts.disk_full_in_logs:
            reasons.append("cleanup_disk for an alert that is not about a disk")
        if action == "restart" and facts.stateful:
            reasons.append("stateful workloads (databases, brokers) are never restarted automatically")
        if action == "clear_cache" and facts.session_store:
            reasons.append("a session store is never cleared automatically")
        if action == "rollback" and facts.deploy is None:
            reasons.append(f"rollback without a deploy of the workload before the alert ({facts.deploy_note()})")
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
