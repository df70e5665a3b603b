"""Incident diagnosis: the entry point other modules and actions import.

    from diagnosis import diagnose, diagnose_offline, DiagnosisInputError
    decision = diagnose(context, config)          # LLM when a key is configured, else offline; guardrails applied
    decision = diagnose_offline(context, config)  # retrieval + the rules of knowledge/rules, no network

``context`` is the shared contract ``aegis.gather_context`` produces::

    {"alert": {<Alertmanager v4 alert>}, "logs": [...], "deploys": [{"service", "version", "at", ...}],
     "metrics": {"<name>": {"query", "value"}}, "sources": {"logs": {"status": "ok|missing|error"}, ...}}

(a context without ``sources``, with flat numeric metrics, is read too). The decision is
exactly ``catalogue.KEYS``::

    {"action": "restart|scale_up|rollback|cleanup_disk|cancel_query|clear_cache|noop|escalate",
     "target": "<the workload or instance the alert is about, from its labels, or ''>",
     "root_cause": "...", "confidence": 0.0-1.0,
     "evidence": [{"id": "memory-leak-restart", "kind": "runbook", "similarity": 0.71}],
     "reasoning": "...", "safety": "safe|caution|forbidden"}

The work is split one module per concern (``docs/architecture.md`` has the map):
``catalogue`` (actions and decision fields), ``alert_context`` (the context), ``matchers`` and
``rules`` (knowledge as data), ``facts`` (safety predicates, target choice), ``scoring``
(retrieval and ranking), ``decision`` (the procedure), ``guardrails`` and ``llm``.
"""

from __future__ import annotations

from alert_context import Context, DiagnosisInputError, normalize_context, parse_time
from catalogue import ACTING, ACTIONS, KEYS
from decision import diagnose, diagnose_offline, llm_configured
from facts import TARGET_LABELS, Facts, pick_target, recent_deploy
from scoring import retrieval_query, runbooks_for

__all__ = [
    "ACTING", "ACTIONS", "KEYS", "TARGET_LABELS", "Context", "DiagnosisInputError", "Facts", "diagnose",
    "diagnose_offline", "llm_configured", "normalize_context", "parse_time", "pick_target", "recent_deploy",
    "retrieval_query", "runbooks_for",
]
