"""The one catalogue of actions and decision fields every other module derives from.

    from catalogue import ACTIONS, ACTING, DECISION_FIELDS, decision_schema, make_decision
    decision = make_decision("restart", "cart", "the container was OOM-killed", 0.8, [], "why", "safe")
    schema = decision_schema()            # the LLM tool's input_schema
    output = decision_schema(strict=False)  # diagnose.yaml's output_schema (tests compare them)

A decision is exactly ``DECISION_FIELDS`` (in that order). ``ACTING`` actions change
production; ``PASSIVE`` ones (``noop``, ``escalate``) do not. Nothing here imports another
Aegis module, so every layer can import it.
"""

from __future__ import annotations

from typing import Any

ACTIONS: tuple[str, ...] = ("restart", "scale_up", "rollback", "cleanup_disk", "cancel_query", "clear_cache",
                            "noop", "escalate")
ACTING: tuple[str, ...] = ("restart", "scale_up", "rollback", "cleanup_disk", "cancel_query", "clear_cache")
PASSIVE: tuple[str, ...] = ("noop", "escalate")
SAFETY: tuple[str, ...] = ("safe", "caution", "forbidden")
EVIDENCE_KINDS: tuple[str, ...] = ("runbook", "incident")

#: field -> (JSON schema of the field, description). The order is the decision's key order.
DECISION_FIELDS: dict[str, dict[str, Any]] = {
    "action": {"type": "string", "enum": list(ACTIONS),
               "description": "One action from the catalogue."},
    "target": {"type": "string",
               "description": "The workload or instance the alert is about, copied from its labels; '' if none."},
    "root_cause": {"type": "string", "maxLength": 500, "description": "What is wrong, in one sentence."},
    "confidence": {"type": "number", "minimum": 0, "maximum": 1,
                   "description": "How much of the evidence an action needs was actually seen."},
    "evidence": {"type": "array", "maxItems": 8,
                 "items": {"type": "object", "required": ["id", "kind", "similarity"],
                           "properties": {"id": {"type": "string"},
                                          "kind": {"type": "string", "enum": list(EVIDENCE_KINDS)},
                                          "similarity": {"type": "number"}}},
                 "description": "Runbooks and past incidents relied on."},
    "reasoning": {"type": "string", "maxLength": 2000,
                  "description": "What was checked and seen (and what could not be checked)."},
    "safety": {"type": "string", "enum": list(SAFETY), "description": "safe | caution | forbidden."},
}
KEYS: tuple[str, ...] = tuple(DECISION_FIELDS)


def decision_schema(*, strict: bool = True) -> dict[str, Any]:
    """JSON schema of a decision: ``strict`` for the LLM tool (every field required, bounded);
    ``strict=False`` is the shape ``actions/diagnose.yaml`` declares as its ``output_schema``."""
    props: dict[str, Any] = {}
    for name, spec in DECISION_FIELDS.items():
        field = {k: v for k, v in spec.items() if k != "description"}
        if not strict:
            field.pop("maxLength", None)
            field.pop("maxItems", None)
            if name == "evidence":
                field["items"] = {"type": "object"}
        elif name == "target":
            field["description"] = spec["description"]
        props[name] = field
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if strict:
        schema["required"] = list(KEYS)
    return schema


def make_decision(action: str, target: str, root_cause: str, confidence: float, evidence: list[dict[str, Any]],
                  reasoning: str, safety: str) -> dict[str, Any]:
    """A decision dict with the catalogue's keys, confidence clamped to [0, 1]."""
    return {
        "action": action,
        "target": target,
        "root_cause": root_cause,
        "confidence": round(max(0.0, min(1.0, confidence)), 3),
        "evidence": evidence,
        "reasoning": reasoning,
        "safety": safety,
    }
