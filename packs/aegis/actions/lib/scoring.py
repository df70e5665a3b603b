"""Scoring: runbook retrieval plus signal votes, ranked per action, and confidence from evidence.

    from scoring import Weights, retrieve, rank, confidence
    weights = Weights.from_config(config)          # diagnosis.weights, defaults below
    hits = retrieve(settings, ctx)                 # runbooks + past incidents (knowledge service or in-process)
    ranking = rank(ctx, facts, hits, books, weights, failed={}, worked={})
    ranking.ranked                                 # [(action, score, Candidate | None)], best first

A runbook's score is its cosine similarity to the alert plus a bonus for its ``signals``
found in the alert (the alert name exactly, or phrases in annotations/logs, except lines an
escalating signature reads as a fault outside the workload); log signatures,
load surges, single-replica hints and past incidents add votes per action. Every number is a
``Weights`` field, configurable under ``diagnosis.weights`` (defaults documented in
``config.schema.yaml``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field, fields
from typing import Any

from alert_context import Context
from facts import Facts, workload_names

from knowledge import Hit, KnowledgeError, KnowledgeIndex, KnowledgeSettings, Runbook, load_runbooks

LOG = logging.getLogger("aegis.diagnosis")

OFFLINE_HITS = 48  # the offline diagnoser weighs many runbooks; the LLM prompt gets the best few
LLM_HITS = 8


@dataclass(frozen=True)
class Weights:
    """The diagnoser's numbers. Defaults are what the dev set was calibrated with."""

    alert_name_signal: float = 0.3      # a runbook signal equal to the alert name (shared among runbooks naming it)
    phrase_signal: float = 0.12         # a multi-word/punctuated signal phrase found in annotations/logs
    word_signal: float = 0.06           # a single long word signal found in annotations/logs
    max_signal_bonus: float = 0.5
    other_service_penalty: float = 0.2  # a service-specific runbook about another service
    surge_vote: float = 0.25            # a load surge votes scale_up ...
    surge_all_replicas_vote: float = 0.4  # ... more when every replica is saturated
    one_replica_vote: float = 0.15      # one sick replica among healthy ones votes restart
    similar_incident_vote: float = 0.1  # a similar past incident (similarity >= 0.6) resolved by an action
    resolved_before_vote: float = 0.15  # the same signature was resolved by the action before (per time) ...
    resolved_before_max: float = 0.3    # ... up to this
    failed_before_penalty: float = 0.1  # confidence lost when some action already failed for the signature
    deploy_confidence_recent: float = 0.85  # rollback with a deploy of the workload <= 60 min before
    deploy_confidence_older: float = 0.7    # rollback with a deploy within the window but older
    missing_logs_penalty: float = 0.15  # acting without any log lines of the workload
    name_only_cap: float = 0.55         # confidence cap when only the alert's name points at the action ...
    name_only_no_logs_cap: float = 0.45  # ... when logs were not gathered (nothing could contradict it)
    missing_metrics_penalty: float = 0.15  # scale_up when metrics were not gathered (autoscaler headroom unknown)

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Weights:
        raw = dict((dict((config or {}).get("diagnosis") or {})).get("weights") or {})
        known = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in raw.items() if k in known and v is not None})


@dataclass
class Candidate:
    action: str
    score: float
    runbook: Runbook | None
    similarity: float
    matched: list[str] = field(default_factory=list)


@dataclass
class Ranking:
    ranked: list[tuple[str, float, Candidate | None]]
    causes: dict[str, str]
    own_failure: set[str]
    candidates: list[Candidate]
    votes: dict[str, float] = field(default_factory=dict)
    #: actions whose only own-failure evidence is a resource limit reached (descriptors, heap, memory)
    limit_only: set[str] = field(default_factory=set)


@functools.lru_cache(maxsize=8)
def _runbooks_cached(directory: str, fingerprint: str) -> tuple[Runbook, ...]:
    return tuple(load_runbooks(directory))


def runbooks_for(settings: KnowledgeSettings) -> dict[str, Runbook]:
    """The runbooks by id (cached until a file changes); {} when no runbooks directory is set."""
    if settings.runbooks_dir is None:
        return {}
    index = KnowledgeIndex(settings)
    books = _runbooks_cached(str(settings.runbooks_dir), index._runbook_fingerprint())
    return {b.id: b for b in books}


def retrieval_query(ctx: Context, max_chars: int = 480) -> str:
    """Alert name + summary/description first, then a few distinct log lines.

    Kept short on purpose: the encoder's cost grows with the token count (a 256-token
    query costs ~10x a 40-token one) and the first sentences carry the signal. Signal
    phrases deeper in the logs are matched exactly by ``signal_bonus`` instead.
    """
    import re

    parts = [ctx.alertname]
    for key in ("summary", "description", "message"):
        if ctx.annotations.get(key):
            parts.append(ctx.annotations[key][:240])
    seen: set[str] = set()
    for line in ctx.logs[-10:]:
        short = re.sub(r"\d+", "#", line)[:120]
        if short not in seen and len(seen) < 3:
            seen.add(short)
            parts.append(re.sub(r"\s+", " ", line)[:120])
    return "\n".join(parts)[:max_chars]


def retrieve(settings: KnowledgeSettings, ctx: Context, k: int = OFFLINE_HITS) -> list[Hit]:
    """Runbooks and incidents for this context; none (and a warning) when retrieval is down."""
    from knowledge_service import search as service_search

    try:
        hits, _ = service_search(settings, retrieval_query(ctx), k)
        return hits
    except KnowledgeError as exc:
        LOG.warning("retrieval unavailable, deciding on signals alone: %s", exc)
        return []


def signal_bonus(book: Runbook, ctx: Context, w: Weights, name_share: int = 1,
                 outside: frozenset[str] = frozenset()) -> tuple[float, list[str]]:
    """Bonus for runbook signals present in the alert: its name exactly, or phrases in text.

    An alert name listed by several runbooks discriminates less, so its bonus is shared.
    ``outside`` are the lines a rule reads as a fault outside the workload
    (``Facts.outside_lines``): a phrase found only there is not counted, so a runbook that
    lists a line among its signals cannot outvote the rule that says where that line points
    (a Hikari "Connection is not available" is an exhausted pool, not a deadlock of ours).
    """
    bonus = 0.0
    matched: list[str] = []
    name = ctx.alertname.lower()
    if outside:
        pieces = [*(str(v) for v in ctx.annotations.values()), *ctx.logs]
        text = "\n".join(p for p in pieces if p not in outside).lower()
    else:
        text = (ctx.annotation_text + "\n" + ctx.log_text).lower()
    for signal in book.signals:
        s = signal.lower()
        if s == name:
            bonus += w.alert_name_signal / max(1, name_share) ** 0.5
            matched.append(signal)
        elif len(s) >= 6 and (" " in s or not s.isalnum()) and s in text:
            bonus += w.phrase_signal
            matched.append(signal)
        elif len(s) >= 6 and s in text:
            bonus += w.word_signal
            matched.append(signal)
    return min(bonus, w.max_signal_bonus), matched


def rank(ctx: Context, facts: Facts, hits: list[Hit], books: dict[str, Runbook], w: Weights, *,
         failed: dict[str, int], worked: dict[str, int]) -> Ranking:
    """Score every action: best runbook per action plus the votes of signals and memory."""
    runbook_hits = [h for h in hits if h.kind == "runbook"]
    sim_by_id = {h.id: float(h.score) for h in runbook_hits}
    candidates: list[Candidate] = []
    name_share = sum(1 for b in books.values() if ctx.alertname.lower() in {x.lower() for x in b.signals})
    names = workload_names(ctx.labels)
    for book in books.values():
        sim = sim_by_id.get(book.id, 0.0)
        bonus, matched = signal_bonus(book, ctx, w, name_share, facts.outside_lines)
        if book.services and not names & {s.lower() for s in book.services}:
            bonus -= w.other_service_penalty
        candidates.append(Candidate(book.action, sim + bonus, book, sim, matched))
    if not books:  # no runbook metadata: use the hits as they are
        for h in runbook_hits:
            candidates.append(Candidate(h.action, float(h.score), None, float(h.score)))

    votes: dict[str, float] = {}
    causes: dict[str, str] = {}
    own_failure: set[str] = set()
    not_a_limit: set[str] = set()
    for action, cause, weight, own, limit in facts.signatures:
        votes[action] = votes.get(action, 0.0) + weight
        causes.setdefault(action, cause)
        if own:
            own_failure.add(action)
            if not limit:
                not_a_limit.add(action)
    if facts.load_surge:
        votes["scale_up"] = votes.get("scale_up", 0.0) + (w.surge_all_replicas_vote if facts.all_replicas else w.surge_vote)
        causes.setdefault("scale_up", "more traffic than the current replicas can serve")
    if facts.one_replica:
        votes["restart"] = votes.get("restart", 0.0) + w.one_replica_vote
    for h in hits:  # similar past incidents that worked
        if h.kind == "incident" and h.outcome == "resolved" and h.score >= 0.6:
            votes[h.action] = votes.get(h.action, 0.0) + w.similar_incident_vote
    for act, count in worked.items():
        votes[act] = votes.get(act, 0.0) + min(w.resolved_before_vote * count, w.resolved_before_max)

    best: dict[str, tuple[float, Candidate | None]] = {}
    for c in candidates:
        if c.action not in best or c.score > best[c.action][0]:
            best[c.action] = (c.score, c)
    for act, vote in votes.items():
        score, cand = best.get(act, (0.0, None))
        best[act] = (score + vote, cand)
    ranked = sorted(((a, s, c) for a, (s, c) in best.items()), key=lambda r: r[1], reverse=True)
    return Ranking(ranked, causes, own_failure, candidates, votes, own_failure - not_a_limit)


def fit_confidence(score: float, second: float) -> float:
    """Absolute fit of the best runbook (cosine + signal bonus) and its margin over the next action."""
    return min(0.95, 0.3 + 0.6 * min(max(score - 0.3, 0.0), 0.6) / 0.6 + min(score - second, 0.3))
