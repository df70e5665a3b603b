"""Approvals: the inquiry (st2 ``core.ask``) a remediation waits on, answered from chat or Slack.

    inquiry = pending_inquiry_for(api, "inc-0123456789abcdef")      # or None
    response = answer(api, inquiry, approved=True, user="alice", reason="go")
    blocks = request_blocks(incident, inquiry["id"], summary)        # Approve / Deny buttons
    blocks = decided_blocks(incident, "approved", "alice", "2026-11-30T03:12:00Z", reason)

An inquiry belongs to the incident of the workflow that asked: its execution's ``parent``
chain is walked up to the first execution with an ``incident_id`` parameter (the
remediation workflow's only input). The answer fits the inquiry's schema: the first
boolean property among :data:`DECISION_FIELDS` (else the first boolean) gets the decision,
a ``reason``/``comment`` string property the reason, and an ``approver``/``user`` string
property the user.

Each Slack button carries the inquiry id and the incident id (``<inquiry>|<incident>``),
so a click answers exactly that inquiry; once it is answered or timed out, st2 refuses
another answer, and the message is rewritten without buttons.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from reports import slack_escape
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from st2_api import St2API, St2Error

DECISION_FIELDS = ("approved", "approve", "continue", "proceed")
REASON_FIELDS = ("reason", "comment", "note")
USER_FIELDS = ("approver", "user", "decided_by")
APPROVE_ACTION = "aegis_approve"
DENY_ACTION = "aegis_deny"
APPROVAL_PREFIX = "aegis.approval."
MAX_DEPTH = 5


def incident_of(api: St2API, execution_id: str) -> str | None:
    """The ``incident_id`` parameter of the nearest execution up the parent chain, or None."""
    current: str | None = execution_id
    for _ in range(MAX_DEPTH):
        if not current:
            return None
        execution = api.execution(current)
        incident_id = (execution.get("parameters") or {}).get("incident_id")
        if incident_id:
            return str(incident_id)
        current = execution.get("parent")
    return None


def pending_inquiry_for(api: St2API, incident_id: str) -> dict[str, Any] | None:
    """The pending inquiry of ``incident_id``'s workflow (the oldest, if several)."""
    for inquiry in api.inquiries():
        try:
            if incident_of(api, inquiry["id"]) == incident_id:
                return inquiry
        except St2Error:
            continue
    return None


def _property(schema: dict[str, Any], names: tuple[str, ...], type_: str) -> str | None:
    props = (schema or {}).get("properties") or {}
    for name in names:
        if (props.get(name) or {}).get("type") == type_:
            return name
    return None


def response_for(schema: dict[str, Any], approved: bool, user: str, reason: str = "") -> dict[str, Any]:
    """The inquiry response carrying the decision.

    >>> response_for({"properties": {"continue": {"type": "boolean"}}}, True, "alice")
    {'continue': True}
    >>> response_for({"properties": {"approved": {"type": "boolean"}, "reason": {"type": "string"}}}, False, "bob", "no")
    {'approved': False, 'reason': 'no'}
    """
    props = (schema or {}).get("properties") or {}
    decision = _property(schema, DECISION_FIELDS, "boolean") or next(
        (name for name, spec in props.items() if (spec or {}).get("type") == "boolean"), None)
    if decision is None:
        raise ValueError("the inquiry's schema has no boolean property to carry approve/deny")
    response: dict[str, Any] = {decision: bool(approved)}
    reason_field = _property(schema, REASON_FIELDS, "string")
    if reason_field and reason:
        response[reason_field] = reason[:500]
    user_field = _property(schema, USER_FIELDS, "string")
    if user_field:
        response[user_field] = user
    return response


def answer(api: St2API, inquiry: dict[str, Any], approved: bool, user: str, reason: str = "") -> dict[str, Any]:
    """Respond to ``inquiry``; St2Error (status 400) when it was answered or timed out meanwhile."""
    response = response_for(inquiry.get("schema") or {}, approved, user, reason)
    api.respond(inquiry["id"], response)
    return response


def button_value(inquiry_id: str, incident_id: str) -> str:
    return f"{inquiry_id}|{incident_id}"


def parse_button_value(value: str) -> tuple[str, str]:
    inquiry_id, _, incident_id = (value or "").partition("|")
    return inquiry_id, incident_id


def request_blocks(incident: dict[str, Any], inquiry_id: str, ttl_minutes: int | None = None) -> list[dict[str, Any]]:
    """The approval request: what, where, and the two buttons bound to this inquiry."""
    labels = incident.get("labels") or {}
    summary = (incident.get("annotations") or {}).get("summary") or incident.get("alertname") or "alert"
    where = labels.get("service") or labels.get("instance") or labels.get("job") or ""
    expires = f" · expires in {ttl_minutes} min" if ttl_minutes else ""
    value = button_value(inquiry_id, incident["id"])
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            f":raised_hand: *Approval needed* for incident `{incident['id']}`\n"
            f"*{slack_escape(incident.get('alertname'), 100)}* {slack_escape(where, 80)} — {slack_escape(summary, 300)}")}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"Or in chat: `!st2 aegis approve {incident['id']}` / `!st2 aegis deny {incident['id']} <reason>`{expires}")}]},
        {"type": "actions", "block_id": f"aegis_approval_{inquiry_id}", "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": value,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": DENY_ACTION, "style": "danger", "value": value,
             "text": {"type": "plain_text", "text": "Deny"}},
        ]},
    ]  # fmt: skip


def decided_blocks(incident: dict[str, Any], decision: str, user: str, at: str, reason: str = "") -> list[dict[str, Any]]:
    """The same message once decided: no buttons, who and when."""
    icon = {"approved": ":white_check_mark:", "denied": ":x:"}.get(decision, ":hourglass:")
    why = f" — {slack_escape(reason, 300)}" if reason else ""
    head = (f"{icon} *{decision.capitalize()}* by {slack_escape(user, 80)} at {slack_escape(at, 40)}{why}"
            if decision in ("approved", "denied") else f"{icon} *Expired* at {slack_escape(at, 40)}: nobody can decide any more{why}")
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            f"{head}\nIncident `{incident['id']}`: *{slack_escape(incident.get('alertname'), 100)}*")}},
    ]  # fmt: skip


# -- the Slack message of an approval request ------------------------------------------------

def slack_client(section: dict[str, Any]) -> WebClient | None:
    """A WebClient from config ``slack`` (``token``, ``base_url``, ``timeout``), or None."""
    if not section.get("token"):
        return None
    kwargs: dict[str, Any] = {"token": section["token"], "timeout": int(section.get("timeout") or 10)}
    if section.get("base_url"):
        kwargs["base_url"] = section["base_url"].rstrip("/") + "/"
    return WebClient(**kwargs)


def load_request(datastore: Any, inquiry_id: str) -> dict[str, Any] | None:
    raw = datastore.get_value(APPROVAL_PREFIX + inquiry_id, local=False)
    return json.loads(raw) if raw else None


def save_request(datastore: Any, inquiry_id: str, record: dict[str, Any]) -> None:
    datastore.set_value(APPROVAL_PREFIX + inquiry_id, json.dumps(record, sort_keys=True), local=False)


def post_request(config: dict[str, Any], datastore: Any, incident: dict[str, Any], inquiry: dict[str, Any]) -> dict[str, Any]:
    """Post the approval request with its buttons; remember where it is (for chat.update)."""
    section = (config or {}).get("slack") or {}
    client = slack_client(section)
    record = {"inquiry_id": inquiry["id"], "incident_id": incident["id"], "state": "pending", "channel": None, "ts": None}
    if client is None:
        record["delivery"] = "not_configured"
    else:
        blocks = request_blocks(incident, inquiry["id"], inquiry.get("ttl"))
        text = f"Approval needed for incident {incident['id']}"
        try:
            resp = client.chat_postMessage(channel=section.get("channel") or "#incidents", text=text, blocks=blocks)
            record.update(channel=resp.get("channel"), ts=resp.get("ts"), delivery="sent")
        except SlackApiError as exc:
            record["delivery"] = f"error: {exc.response.get('error')}"
        except Exception as exc:  # noqa: BLE001 (the inquiry still waits; chat can answer it)
            record["delivery"] = f"error: {type(exc).__name__}"
    save_request(datastore, inquiry["id"], record)
    return record


def mark_decided(config: dict[str, Any], datastore: Any, incident: dict[str, Any], inquiry_id: str, decision: str,
                 user: str, at: str, reason: str = "", response_url: str = "") -> dict[str, Any]:
    """Rewrite the request message (no buttons; who and when) and remember the decision."""
    record = load_request(datastore, inquiry_id) or {"inquiry_id": inquiry_id, "incident_id": incident["id"]}
    record.update(state=decision, decided_by=user, decided_at=at)
    blocks = decided_blocks(incident, decision, user, at, reason)
    text = f"{decision.capitalize()} by {user} at {at}"
    client = slack_client((config or {}).get("slack") or {})
    try:
        if client is not None and record.get("channel") and record.get("ts"):
            client.chat_update(channel=record["channel"], ts=record["ts"], text=text, blocks=blocks)
            record["update"] = "chat.update"
        elif response_url:
            requests.post(response_url, json={"replace_original": True, "text": text, "blocks": blocks}, timeout=10)
            record["update"] = "response_url"
    except Exception as exc:  # noqa: BLE001 (the decision stands; only the message is stale)
        record["update"] = f"error: {type(exc).__name__}"
    save_request(datastore, inquiry_id, record)
    return record
