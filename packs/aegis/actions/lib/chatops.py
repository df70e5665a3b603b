"""ChatOps: who may do what from the chat, and the replies the channel shows.

    allowed = Permissions(self.config, read_key)           # read_key: name -> datastore value
    allowed.refusal("U024BE7LH", "approve")                 # None, or the sentence to reply
    reply = status_reply(status)                            # mrkdwn for the channel

Approvers: config ``chatops.approvers`` (chat user names as the bridge passes them, e.g.
``alice`` or ``@alice``, or Slack user ids ``U024BE7LH``) plus the datastore key
``aegis.chatops.approvers`` (a JSON list or comma-separated names; ``st2 key set`` changes
it without a deploy). Only they may approve, deny, change the mode, silence or unsilence.
An empty list allows nobody: fail closed.

Replies are Slack mrkdwn written for a phone at 3 a.m.: the answer first, one fact per
line, ids in backticks. Everything that came from alerts, logs or people (labels,
annotations, timeline text, reasons) goes through :func:`slack_escape`, so ``<!channel>``
or a link in an alert is shown, not acted on.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from reports import slack_escape
from timestamps import epoch_seconds, utc_iso

APPROVERS_KEY = "aegis.chatops.approvers"
AUDIT_PREFIX = "aegis.chatops.audit."
#: What needs a name on the approvers list, and how a refusal says it.
GUARDED = {"approve": "approve remediations", "deny": "deny remediations", "mode": "change Aegis's mode",
           "silence": "silence alerts", "unsilence": "unsilence alerts"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


def normalise_user(user: str | None) -> str:
    """``@Alice`` and ``alice`` are one user; Slack ids are kept as they are (upper case)."""
    value = (user or "").strip().lstrip("@")
    return value if re.fullmatch(r"[UW][A-Z0-9]{6,}", value) else value.lower()


class Permissions:
    """The approvers list from the pack config and the datastore."""

    def __init__(self, config: dict[str, Any] | None, read_key: Callable[[str], Any]) -> None:
        self.config = config or {}
        self.read_key = read_key

    def approvers(self) -> set[str]:
        names = list(((self.config.get("chatops") or {}).get("approvers")) or [])
        raw = self.read_key(APPROVERS_KEY)
        if raw:
            try:
                stored = json.loads(raw)
            except ValueError:
                stored = raw.split(",")
            names += stored if isinstance(stored, list) else [str(stored)]
        return {normalise_user(str(n)) for n in names if str(n).strip()}

    def allowed(self, *identities: str | None) -> bool:
        """True when any of the user's identities (name, Slack id) is an approver."""
        approvers = self.approvers()
        return any(normalise_user(i) in approvers for i in identities if i)

    def refusal(self, user: str | None, what: str, *other_ids: str | None) -> str | None:
        """None when ``user`` may do ``what``; else the reply (which names no approver)."""
        if what not in GUARDED or self.allowed(user, *other_ids):
            return None
        who = slack_escape(user or "unknown user", 80)
        return f":no_entry: {who}, you may not {GUARDED[what]}. Ask an on-call approver (config chatops.approvers)."


def audit(datastore: Any, event: str, **data: Any) -> dict[str, Any]:
    """Record a ChatOps decision or refusal that belongs to no incident (write-once key)."""
    now = time.time()
    entry = {"at": utc_iso(now), "event": event[:500], **data}
    key = f"{AUDIT_PREFIX}{int(now * 1e9):020d}"
    datastore.set_value(key, json.dumps(entry, default=str), local=False)
    return entry


def parse_duration(text: str) -> float:
    """Seconds in ``30m``, ``2h``, ``90`` (minutes), ``1d``; ValueError otherwise.

    >>> parse_duration("2h"), parse_duration("45"), parse_duration("30s")
    (7200.0, 2700.0, 30.0)
    """
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a duration (say 30m, 2h or 1d)")
    value, unit = float(match.group(1)), (match.group(2) or "m").lower()
    seconds = value * _UNIT_SECONDS[unit]
    if seconds <= 0 or seconds > 7 * 86400:
        raise ValueError("a silence lasts between a second and 7 days")
    return seconds


def ago(iso: str | None, now: float | None = None) -> str:
    """``5m ago`` for a timestamp; ``?`` when there is none."""
    then = epoch_seconds(iso or "")
    if then is None:
        return "?"
    seconds = max(0, int((now or time.time()) - then))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def incident_line(incident: dict[str, Any], state: str = "") -> str:
    """One incident on one line: id, state, alert name, service, summary (escaped)."""
    labels = incident.get("labels") or {}
    service = labels.get("service") or labels.get("job") or labels.get("instance") or ""
    summary = (incident.get("annotations") or {}).get("summary") or ""
    parts = [f"`{incident['id']}`", f"*{slack_escape(state or incident.get('status'), 40)}*",
             slack_escape(incident.get("alertname") or "alert", 80)]  # fmt: skip
    if service:
        parts.append(f"({slack_escape(service, 60)})")
    text = " ".join(parts)
    if summary:
        text += f" — {slack_escape(summary, 160)}"
    return text + f" · opened {ago(incident.get('opened_at'))}"


def status_reply(status: dict[str, Any]) -> str:
    lines = [f"*Aegis is in {status['mode']} mode* (from {status['mode_source']})"]
    lines.append(f"Open incidents: *{status['open_incidents']}*")
    lines.append(f"Automated actions, incidents of the last 24 h: *{status['actions_24h']}*")
    last = status.get("last_escalation")
    if last:
        lines.append(f"Last escalation: `{last['incident_id']}` {ago(last['at'])} — {slack_escape(last['event'], 200)}")
    else:
        lines.append("Last escalation: none")
    return "\n".join(lines)


def incidents_reply(rows: list[tuple[dict[str, Any], str]], which: str, limit: int = 15) -> str:
    if not rows:
        return f"No {'open ' if which == 'open' else ''}incidents."
    head = f"*{len(rows)} {'open ' if which == 'open' else ''}incident{'s' if len(rows) != 1 else ''}*"
    shown = [incident_line(inc, state) for inc, state in rows[:limit]]
    more = [f"…and {len(rows) - limit} more (aegis incident list)"] if len(rows) > limit else []
    return "\n".join([head, *shown, *more])


def incident_reply(incident: dict[str, Any], state: dict[str, Any], timeline: list[dict[str, Any]], limit: int = 20) -> str:
    lines = [incident_line(incident, state.get("state", "")), ]
    annotations = incident.get("annotations") or {}
    if annotations.get("description"):
        lines.append(f"> {slack_escape(annotations['description'], 400)}")
    if state.get("mttr_seconds") is not None:
        lines.append(f"Resolved in {round(state['mttr_seconds'] / 60, 1)} min")
    lines.append("*Timeline*")
    entries = timeline[-limit:]
    if len(timeline) > limit:
        lines.append(f"…{len(timeline) - limit} earlier entries (aegis incident show {incident['id']})")
    for entry in entries:
        at = (entry.get("at") or "")[11:19]
        arrow = f" → *{slack_escape(entry['state'], 40)}*" if entry.get("state") else ""
        lines.append(f"• `{at}`{arrow} {slack_escape(entry.get('event', ''), 300)}")
    if not timeline:
        lines.append("• (nothing recorded yet)")
    return "\n".join(lines)


def knowledge_reply(query: str, hits: list[dict[str, Any]]) -> str:
    if not hits:
        return f"Nothing in the knowledge index for “{slack_escape(query, 100)}”."
    lines = [f"*Closest to* “{slack_escape(query, 100)}”"]
    for hit in hits:
        kind = "runbook" if hit.get("kind") == "runbook" else "past incident"
        extra = f", outcome {slack_escape(hit['outcome'], 40)}" if hit.get("outcome") else ""
        lines.append(f"• {kind} *{slack_escape(hit.get('title'), 120)}* (`{slack_escape(hit.get('id'), 80)}`, "
                     f"score {float(hit.get('score') or 0):.2f}) → {slack_escape(hit.get('action'), 40)}"
                     f" [{slack_escape(hit.get('safety'), 20)}]{extra}")  # fmt: skip
    return "\n".join(lines)


def diagnosis_reply(incident: dict[str, Any], decision: dict[str, Any]) -> str:
    lines = [
        f"*Dry run — nothing was done.* Diagnosis of `{incident['id']}` ({slack_escape(incident.get('alertname'), 80)})",
        f"Would do: *{slack_escape(decision.get('action'), 40)}* {slack_escape(decision.get('target') or '', 80)} "
        f"(confidence {decision.get('confidence')}, {slack_escape(decision.get('safety'), 40)})",
        f"Root cause: {slack_escape(decision.get('root_cause'), 600)}",
    ]
    evidence = decision.get("evidence") or []
    if evidence:
        lines.append("Evidence: " + "; ".join(slack_escape(e, 200) for e in evidence[:4]))
    return "\n".join(lines)


def suggestion_reply(text: str, suggestions: list[str]) -> str:
    head = f"I don't know “aegis {slack_escape(text, 80)}”."
    if not suggestions:
        return head + " Try `!st2help aegis` for every command."
    return head + " Did you mean:\n" + "\n".join(f"• `{slack_escape(s, 100)}`" for s in suggestions)
