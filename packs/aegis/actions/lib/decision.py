"""The decision: the offline diagnoser's procedure, and ``diagnose()`` which picks LLM or offline.

    from decision import diagnose, diagnose_offline
    decision = diagnose(context, config)          # LLM when a key is configured, else offline; then guardrails
    decision = diagnose_offline(context, config)  # retrieval + the rules of knowledge/rules, no network

How the offline path decides, in order (the first that applies wins):

1. Facts no runbook may override: security signals → ``escalate``; resolved, heartbeat and
   informational alerts → ``noop``; a full *data* volume, a database that is down, a third
   party's outage → ``escalate``; node memory that is page cache → ``noop``.
2. Scoring (``scoring.rank``): runbook similarity + signal bonus, log signatures, load
   hints, memory of past incidents.
3. Deploys: a deploy of *the alerting workload* shortly before the alert (recorded, or stated
   in the alert itself) makes a workload regression a ``rollback`` — unless the context shows
   the fault elsewhere. Without one there is nothing to roll back to; the reasoning says
   whether deploys were checked ("no deploy data" when they were not gathered).
4. Vetoes (autoscaler at max, one consumer per partition, crash loops, a symptom that came
   back after earlier restarts, protected sessions):
   a vetoed best action escalates with the reason.
5. Before acting: the evidence must point at the workload itself. A resource limit
   (descriptors, heap, memory) reached under a load surge or beside a capacity, provider,
   abuse or cold-cache fault is capacity, not a leak; ``cancel_query`` needs a log line of a
   session still running or blocking; a dependency, DNS, network, node, provider, capacity,
   abuse or cold-cache fault in the context, or a log line an escalating signature reads as
   pointing outside the workload (an exhausted connection pool), escalates with what was seen
   unless the workload's own failure is in the logs; a reading resting
   on the alert's name alone escalates when the context holds instruction-like text;
   confidence drops when no log lines of the workload were available.
6. Safety: stateful restarts and session-store clears escalate; an action needs a target
   among the alert's labels. Guardrails (``guardrails.py``) re-check both paths, including
   ``diagnosis.min_confidence``.

Log lines and annotations are *data*: they are matched against rules, never followed.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from alert_context import Context, normalize_context
from catalogue import ACTING, make_decision
from facts import Facts
from rules import RuleBook, rules_for
from scoring import LLM_HITS, Weights, fit_confidence, rank, retrieve, runbooks_for

from knowledge import Hit, KnowledgeError, KnowledgeIndex, KnowledgeSettings, signature_of

LOG = logging.getLogger("aegis.diagnosis")

#: Actions a dependency/node/network fault makes pointless (they would only hide it).
HIDES_FAULT = ("restart", "rollback", "scale_up", "clear_cache")

#: Actions that destroy work in flight (a cancelled query rolls its transaction back): they
#: need a log line of the workload naming the failure (a session still running, idle in
#: transaction or blocking others), never only a runbook's match on the alert's name or a
#: slow-query log, whose statements have already finished.
NEEDS_OWN_EVIDENCE = ("cancel_query",)


def _evidence(hits: list[Hit], limit: int = 5) -> list[dict[str, Any]]:
    return [{"id": h.id, "kind": h.kind, "similarity": round(float(h.score), 3)} for h in hits[:limit]]


def _seen_note(ctx: Context) -> str:
    """What was not available to check, so a reader knows what the decision rests on."""
    missing = [s for s in ("logs", "deploys", "metrics") if ctx.gathered(s) in ("missing", "error")]
    return f"not gathered: {', '.join(missing)}" if missing else ""


class OfflineDiagnoser:
    """One offline diagnosis: the procedure of the module docstring, step by step."""

    def __init__(self, ctx: Context, config: dict[str, Any] | None, settings: KnowledgeSettings,
                 book: RuleBook, hits: list[Hit] | None) -> None:
        diag_cfg = dict((config or {}).get("diagnosis") or {})
        self.ctx = ctx
        self.config = config
        self.settings = settings
        self.weights = Weights.from_config(config)
        self.facts = Facts(ctx, book, deploy_window=float(diag_cfg.get("deploy_window_minutes", 120)))
        self.hits = hits
        self.esc_target = self.facts.subject

    def escalate(self, root_cause: str, confidence: float, evidence: list[dict[str, Any]], reasoning: str,
                 safety: str = "caution") -> dict[str, Any]:
        seen = _seen_note(self.ctx)
        return make_decision("escalate", self.esc_target, root_cause, confidence, evidence,
                             reasoning + (f" ({seen})" if seen else ""), safety)

    # ------------------------------------------------------------------ 1. facts
    def hard_facts(self, evidence: list[dict[str, Any]]) -> dict[str, Any] | None:
        f = self.facts
        if (f.disk_alert or f.disk_full_in_logs) and f.data_volume:
            where = f" {f.mountpoint}" if f.mountpoint else ""
            return self.escalate(f"data volume{where} on {self.esc_target or 'the host'} is filling up", 0.9, evidence,
                                 "A data volume (database, broker or persistent volume) is never cleaned automatically: "
                                 "deleting its files loses data. Grow the volume or free space by hand.", "forbidden")
        if f.database_down:
            return self.escalate("a database is down or unreachable", 0.9, evidence,
                                 "Database outages need a human (failover, recovery); no automated action is safe.",
                                 "forbidden")
        if f.third_party:
            return self.escalate("an external provider is failing", 0.8, evidence,
                                 "Restarting or rolling back our services does not fix a third-party outage.")
        if f.page_cache:
            return make_decision("noop", self.facts.target("noop"), "memory is reclaimable page cache", 0.8, evidence,
                                 "Page cache is freed on demand; the node is not under memory pressure.", "safe")
        return None

    def run(self) -> dict[str, Any]:
        f, ctx, w = self.facts, self.ctx, self.weights
        if f.security:
            return self.escalate(f"possible security incident ({f.security})", 0.95, [],
                                 "Security signals are never remediated automatically; a human must investigate.",
                                 "forbidden")
        if f.noise:
            return make_decision("noop", f.target("noop"), f.noise, 0.9, [],
                                 "Nothing is broken that an action could fix.", "safe")
        hits = self.hits if self.hits is not None else retrieve(self.settings, ctx)
        try:
            books = runbooks_for(self.settings)
        except KnowledgeError as exc:
            LOG.warning("runbooks unavailable: %s", exc)
            books = {}
        evidence = _evidence([h for h in hits if h.kind == "runbook"])
        decided = self.hard_facts(evidence)
        if decided:
            return decided

        # 2. scoring
        signature = signature_of(ctx.alert)
        index = KnowledgeIndex(self.settings)
        failed = index.failed_actions(signature)
        worked = index.resolved_actions(signature)
        ranking = rank(ctx, f, hits, books, w, failed=failed, worked=worked)
        ranked = ranking.ranked
        causes = ranking.causes
        notes: list[str] = []

        # 3. deploys of the workload itself
        deploy = f.deploy
        if deploy is not None and f.regression and ranked and ranked[0][0] in {"restart", "rollback", "scale_up", "escalate"}:
            top = ranked[0][2]
            wants_human = top is not None and top.runbook is not None and top.action == "escalate" and not any(
                k in (top.runbook.title + " " + " ".join(top.runbook.signals)).lower()
                for k in ("deploy", "release", "rollout", "crash"))
            if not wants_human and "rollback" not in failed:
                if f.faults:
                    kind, reason, line = f.faults[0]
                    return self.escalate(
                        f"{reason} ({kind})", 0.7, evidence,
                        f"{f.deploy_note()}, but the context points at a fault outside the workload: {line!r}. "
                        f"A rollback would not fix it; a human should confirm where the fault is.")
                rb = next((c for c in sorted(ranking.candidates, key=lambda c: c.score, reverse=True)
                           if c.action == "rollback"), None)
                conf = w.deploy_confidence_recent if deploy.minutes_before <= 60 else w.deploy_confidence_older
                if deploy.source == "annotations":
                    conf -= 0.1  # stated by the alert, not a recorded deploy
                rid = rb.runbook.id if rb and rb.runbook else ""
                ev = ([{"id": rid, "kind": "runbook", "similarity": round(rb.similarity, 3)}] if rid else []) + \
                    [e for e in evidence if e["id"] != rid][:4]
                return self.finish(
                    "rollback", f.target("rollback"),
                    f"regression introduced by the deploy of {deploy.service} {deploy.version} "
                    f"{deploy.minutes_before:.0f} min before the alert".replace("  ", " "), conf, ev,
                    f"{f.deploy_note()}; {ctx.alertname} is a workload regression, so the release is the prime "
                    f"suspect.", "safe")
        rollback_was_best = False
        if deploy is None:
            if ranked and ranked[0][0] == "rollback":
                rollback_was_best = True
                notes.append(f"{f.deploy_note()}, so not a rollback")
            ranked = [r for r in ranked if r[0] != "rollback"]
        else:
            notes.append(f.deploy_note())

        # 4. vetoes
        vetoed = f.vetoes
        if ranked and ranked[0][0] in vetoed:
            act, _, cand = ranked[0]
            book = cand.runbook if cand else None
            return self.escalate(causes.get(act) or (book.title if book else ctx.alertname), 0.75, evidence,
                                 f"the best match suggests {act}, but {vetoed[act]}.")

        # memory: an action that failed verification for this signature is not repeated
        for act, count in failed.items():
            if any(a == act for a, _, _ in ranked):
                notes.append(f"{act} already failed verification {count}x for {signature}")
            ranked = [r for r in ranked if r[0] != act]

        if not ranked:
            return self.escalate("no runbook or signal explains the alert", 0.4, evidence,
                                 "; ".join(notes) or "Nothing known matches this alert; a human should look.")
        action, score, cand = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        book = cand.runbook if cand else None
        confidence = fit_confidence(score, second)
        if failed:
            confidence -= w.failed_before_penalty
        root_cause = causes.get(action) or (book.title if book else f"matches past incidents resolved by {action}")

        # a release problem without a release: another action needs its own evidence
        if rollback_was_best and action in ACTING and action not in ranking.own_failure:
            return self.escalate(root_cause, min(confidence, 0.6), evidence,
                                 f"the symptoms match a bad release, but {f.deploy_note()}; {action} has no evidence "
                                 f"of its own here, so a human should look (registry, config, dependency)."
                                 + "".join(f" {n}." for n in notes[1:]))
        # a noop closes the incident: only when something in the alert says nothing is wrong (a
        # scheduled-load signature, or a runbook signal found in its text: an alert name is not
        # enough) and nothing names a failure of the workload
        in_text = [m for m in (cand.matched if cand else []) if m.lower() != ctx.alertname.lower()]
        if action == "noop" and ("noop" not in causes and not in_text or ranking.own_failure or f.memory_pressure):
            return self.escalate(root_cause, min(confidence, 0.6), evidence,
                                 f"the nearest runbook ({book.id if book else 'none'}) needs no action, but nothing in "
                                 f"the alert confirms it; a noop would silently close what may be a real incident."
                                 + "".join(f" {n}." for n in notes))
        # 5. the evidence must point at the workload itself
        if action in HIDES_FAULT and action in ranking.limit_only and f.load_pressure:
            # descriptors/heap/memory exhausted is a leak at ordinary load, a capacity limit
            # under a surge or beside a quota, throttling or abuse: a restart only hides it
            return self.escalate(
                f"{causes.get(action, 'a resource limit is reached')} while {f.load_pressure}", 0.7, evidence,
                f"logs show {causes.get(action, 'a resource limit reached')}, but the context shows {f.load_pressure}: "
                f"the limit is reached by the load, not by a leak, so a {action} drops the work in flight and meets "
                f"the same limit; a human raises the limit or sheds the load." + "".join(f" {n}." for n in notes))
        if action in NEEDS_OWN_EVIDENCE and action not in ranking.own_failure:
            return self.escalate(
                root_cause, min(confidence, 0.6), evidence,
                f"the best match suggests {action}, but no log line shows a session still running, idle in "
                f"transaction or blocking others (a slow-query log lists statements that already finished); "
                f"{action} ends a session's work, so it needs that evidence." + "".join(f" {n}." for n in notes))
        if action in HIDES_FAULT and f.faults and action not in ranking.own_failure:
            kind, reason, line = f.faults[0]
            return self.escalate(
                f"{reason} ({kind})", 0.7, evidence,
                f"the best match suggests {action} of {f.target(action) or 'the workload'}, but the context shows "
                f"the fault outside it: {line!r}; {action} would only hide it."
                + "".join(f" {n}." for n in notes))
        if action in HIDES_FAULT and f.outside_lines and action not in ranking.own_failure:
            # a rule reads a line as pointing outside the workload (an exhausted connection pool:
            # the database is slow or saturated, or the pool too small); no runbook's liking for
            # the same line outweighs it, only the workload's own failure evidence does
            line = sorted(f.outside_lines)[0]
            return self.escalate(
                causes.get("escalate") or root_cause, 0.7, evidence,
                f"the best match suggests {action} of {f.target(action) or 'the workload'}, but the logs show "
                f"{causes.get('escalate', 'a fault outside it')}: {line[:160]!r}, with no failure of the workload's "
                f"own; {action} would only hide it." + "".join(f" {n}." for n in notes))
        if action == "scale_up" and ctx.gathered("metrics") in ("missing", "error") and ctx.metric("hpa") is None:
            confidence -= w.missing_metrics_penalty
            notes.append("no metrics were gathered, so the autoscaler's headroom is unknown")
        if action in ACTING and action not in ranking.votes and not in_text and f.injection:
            # someone is trying to steer the diagnosis: a name-only reading is too little to act on
            return self.escalate(
                root_cause, min(confidence, 0.5), evidence,
                f"only the alert's name points at {action}, and the context holds instruction-like or "
                f"authority-claiming text ({f.injection[:80]!r}), which is never evidence; a human decides."
                + "".join(f" {n}." for n in notes))
        if action in ACTING and action not in ranking.votes and not in_text:
            # logs known not to have been gathered leave nothing that could contradict the name
            not_gathered = ctx.gathered("logs") in ("missing", "error")
            confidence = min(confidence, w.name_only_no_logs_cap if not_gathered else w.name_only_cap)
            notes.append("only the alert's name points at this runbook; nothing in "
                         + ("the logs or annotations confirms it" if ctx.logs else "its text confirms it, and no log "
                            "lines of the workload were available"))
        elif action in ACTING and not ctx.logs and action not in ranking.own_failure:
            confidence -= w.missing_logs_penalty
            notes.append("no log lines of the workload were available")

        reasons = []
        if book:
            matched = f" (signals: {', '.join(cand.matched[:4])})" if cand and cand.matched else ""
            reasons.append(f"runbook {book.id} recommends {book.action}{matched}")
        if action in causes:
            reasons.append(f"logs show {causes[action]}")
        if action in worked:
            reasons.append(f"{action} resolved {signature} before")
        reasons.extend(notes)
        safety = book.safety if book else ("caution" if action in ACTING else "safe")
        ev = evidence
        if book and book.id not in {e["id"] for e in ev}:
            ev = [{"id": book.id, "kind": "runbook", "similarity": round(cand.similarity, 3)}, *ev][:5]
        ev = ev + [{"id": h.id, "kind": "incident", "similarity": round(float(h.score), 3)}
                   for h in hits if h.kind == "incident"][:3]
        return self.finish(action, f.target(action), root_cause, confidence, ev, "; ".join(reasons) + ".", safety)

    # ------------------------------------------------------------------ 6. last safety checks
    def finish(self, action: str, target: str, root_cause: str, confidence: float, evidence: list[dict[str, Any]],
               reasoning: str, safety: str) -> dict[str, Any]:
        f = self.facts
        if action == "restart" and f.stateful:
            return self.escalate(root_cause, max(confidence, 0.6), evidence,
                                 reasoning + " But the workload is stateful (database/broker): restarts need a human.")
        if action == "clear_cache" and f.session_store:
            return self.escalate(root_cause, max(confidence, 0.6), evidence,
                                 reasoning + " But the cache is a session store: clearing it logs every user out.")
        if action in ACTING and not target:
            return self.escalate(root_cause, confidence, evidence, reasoning + f" But no alert label names what to {action}.")
        if action == "escalate":
            return self.escalate(root_cause, confidence, evidence, reasoning, safety)
        if action not in ACTING:
            target = f.target("noop")
        return make_decision(action, target, root_cause, confidence, evidence, reasoning, safety)


def diagnose_offline(
    context: dict[str, Any] | Context,
    config: dict[str, Any] | None = None,
    *,
    settings: KnowledgeSettings | None = None,
    hits: list[Hit] | None = None,
    book: RuleBook | None = None,
) -> dict[str, Any]:
    """Decide from retrieval and the rule book; never calls the network except the local
    knowledge service. Pass ``hits`` to skip the search (tests, LLM path)."""
    ctx = normalize_context(context)
    settings = settings or KnowledgeSettings.from_config(config)
    return OfflineDiagnoser(ctx, config, settings, book or rules_for(config), hits).run()


def _cross_check_injection(decision: dict[str, Any], ctx: Context, config: dict[str, Any] | None,
                           settings: KnowledgeSettings, hits: list[Hit], book: RuleBook) -> dict[str, Any]:
    """When logs/annotations contain instruction-like or authority-claiming text, an LLM's
    acting decision must agree with the offline reading of the same context; otherwise a
    human decides."""
    if decision.get("action") not in ACTING or not Facts(ctx, book).injection:
        return decision
    offline = diagnose_offline(ctx, config, settings=settings, hits=hits, book=book)
    if offline["action"] == decision["action"] and offline["target"] == decision["target"]:
        return decision
    return {**decision, "action": "escalate", "safety": "caution",
            "reasoning": f"guardrail: the context contains instruction-like text and the model's "
                         f"{decision['action']} {decision.get('target')!r} disagrees with the offline reading "
                         f"({offline['action']} {offline['target']!r}). " + str(decision.get("reasoning", ""))}


def llm_configured(config: dict[str, Any] | None) -> bool:
    section = dict((config or {}).get("anthropic") or {})
    key = section.get("api_key") or os.environ.get("ANTHROPIC_API_KEY")
    return bool(key and "{{" not in str(key))


def diagnose(
    context: dict[str, Any],
    config: dict[str, Any] | None = None,
    *,
    offline: bool = False,
    settings: KnowledgeSettings | None = None,
) -> dict[str, Any]:
    """The full diagnosis: LLM when configured (falling back to offline), then guardrails."""
    from guardrails import apply_guardrails

    started = time.perf_counter()
    ctx = normalize_context(context)
    settings = settings or KnowledgeSettings.from_config(config)
    book = rules_for(config)
    path = "offline"
    if offline or not llm_configured(config):
        decision = diagnose_offline(ctx, config, settings=settings, book=book)
    else:
        from llm import LLMError, diagnose_llm

        # One search serves both: the prompt's top hits, and the offline fallback's.
        hits = retrieve(settings, ctx)
        try:
            decision = diagnose_llm(ctx, config, hits=hits[:LLM_HITS], settings=settings)
            path = "llm"
            decision = _cross_check_injection(decision, ctx, config, settings, hits, book)
        except LLMError as exc:
            LOG.warning("LLM diagnosis unusable, falling back to offline: %s", exc)
            decision = diagnose_offline(ctx, config, settings=settings, hits=hits, book=book)
            decision["reasoning"] = f"[LLM unusable: {exc}] " + decision["reasoning"]
    decision = apply_guardrails(decision, ctx, config, settings=settings, book=book)
    LOG.info("diagnosis %s via %s in %.1f ms", decision["action"], path, (time.perf_counter() - started) * 1000)
    return decision
