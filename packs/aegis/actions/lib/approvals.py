"""Approvals: the inquiry (st2 ``core.ask``) a remediation waits on, answered from chat or Slack.

    inquiry = pending_inquiry_for(api, "inc-0123456789abcdef")      # or None
    response = answer(api, inquiry, approved=True, user="alice", reason="go")
    blocks = request_blocks(incident, inquiry["id"], 30, plan)       # the plan, then Approve / Deny
    blocks = decided_blocks(incident, "approved", "alice", "2026-11-30T03:12:00Z", reason, plan_blocks)

One approval, one Slack message: ``aegis.notify`` (kind ``approval``) stores the dry run's
plan when ``aegis.request_approval`` will post (:func:`request_posts_plan`), and that action
posts the plan and the buttons together once the inquiry exists; ``chat.update`` later edits
that same message. Without Slack's Web API or st2's API, notify posts the plan itself with
the chat commands to answer, and its ``text`` is the plain-text fallback everywhere.

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
import os
from typing import Any

import requests
from reports import build_report, report_text, slack_blocks, slack_escape
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from st2_api import St2API, St2Error

DECISION_FIELDS = ("approved", "approve", "continue", "proceed")
REASON_FIELDS = ("reason", "comment", "note")
USER_FIELDS = ("approver", "user", "decided_by")
APPROVE_ACTION = "aegis_approve"
DENY_ACTION = "aegis_deny"
APPROVAL_PREFIX = "aegis.approval."
PLAN_PREFIX = "aegis.approval_plan."  # incident -> the plan aegis.notify stored for the message
OF_PREFIX = "aegis.approval_of."  # incident -> its latest approval request's inquiry
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


def _answer_hint(incident_id: str, buttons: bool) -> str:
    chat = f"`!st2 aegis approve {incident_id}` / `!st2 aegis deny {incident_id} <reason>`"
    return f"Approve or Deny below (approvers only), or in chat: {chat}" if buttons else f"Answer in chat (approvers only): {chat}"


def plan_report(incident: dict[str, Any], plan: dict[str, Any] | None) -> dict[str, Any]:
    """The plan to show: the report ``aegis.notify`` (kind approval) stored, else a short one."""
    if plan:
        return dict(plan)
    return build_report("approval", incident)


def request_blocks(incident: dict[str, Any], inquiry_id: str, ttl_minutes: int | None = None,
                   plan: dict[str, Any] | None = None, buttons: bool = True) -> list[dict[str, Any]]:
    """The one approval message: the plan (what Aegis would run, why) and, below it, the
    Approve / Deny buttons bound to this inquiry (``buttons=False``: the chat commands only)."""
    report = {**plan_report(incident, plan), "next_steps": _answer_hint(incident["id"], buttons)}
    expires = f" · expires in {ttl_minutes} min" if ttl_minutes else ""
    blocks = slack_blocks(report)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Inquiry `{slack_escape(inquiry_id, 80)}`{expires}"}]})
    if buttons:
        value = button_value(inquiry_id, incident["id"])
        blocks.append({"type": "actions", "block_id": f"aegis_approval_{inquiry_id}"[:255], "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": value,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": DENY_ACTION, "style": "danger", "value": value,
             "text": {"type": "plain_text", "text": "Deny"}},
        ]})  # fmt: skip
    return blocks


def request_text(incident: dict[str, Any], inquiry_id: str, plan: dict[str, Any] | None = None, buttons: bool = True) -> str:
    """The message's plain-text fallback (notifications, clients without Block Kit): the whole
    plan and how to answer in chat."""
    report = {**plan_report(incident, plan), "next_steps": _answer_hint(incident["id"], buttons)}
    return slack_escape(report_text(report) + f"\nInquiry {inquiry_id}", 3500)


def decided_blocks(incident: dict[str, Any], decision: str, user: str, at: str, reason: str = "",
                   plan_blocks: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The same message once decided: the plan stays, the buttons are replaced by who and when."""
    icon = {"approved": ":white_check_mark:", "denied": ":x:", "closed": ":lock:"}.get(decision, ":hourglass:")
    why = f" — {slack_escape(reason, 300)}" if reason else ""
    heads = {
        "approved": f"{icon} *Approved* by {slack_escape(user, 80)} at {slack_escape(at, 40)}{why}",
        "denied": f"{icon} *Denied* by {slack_escape(user, 80)} at {slack_escape(at, 40)}{why}",
        "closed": f"{icon} *Closed* at {slack_escape(at, 40)}: no decision from Slack or chat any more{why}",
    }
    head = heads.get(decision, f"{icon} *Expired* at {slack_escape(at, 40)}: nobody can decide any more{why}")
    kept = [b for b in plan_blocks or [] if b.get("type") != "actions"]
    if not kept:
        kept = [{"type": "section", "text": {"type": "mrkdwn", "text": (
            f"Incident `{slack_escape(incident['id'], 80)}`: *{slack_escape(incident.get('alertname'), 100)}*")}}]  # fmt: skip
    return kept + [{"type": "section", "text": {"type": "mrkdwn", "text": head}}]


# -- the Slack message of an approval request ------------------------------------------------

def slack_client(section: dict[str, Any]) -> WebClient | None:
    """A WebClient from config ``slack`` (``token``, ``base_url``, ``timeout``), or None."""
    if not section.get("token"):
        return None
    kwargs: dict[str, Any] = {"token": section["token"], "timeout": int(section.get("timeout") or 10)}
    if section.get("base_url"):
        kwargs["base_url"] = section["base_url"].rstrip("/") + "/"
    return WebClient(**kwargs)


def request_posts_plan(config: dict[str, Any]) -> bool:
    """Whether ``aegis.request_approval`` will post the approval message (plan and buttons in
    one): Slack's Web API and st2's API are configured (``chatops.st2_api_url``, or the
    ``ST2_ACTION_API_URL`` st2 gives every action, as :meth:`St2API.from_config` reads it).
    Else ``aegis.notify`` posts the plan."""
    config = config or {}
    api_url = (config.get("chatops") or {}).get("st2_api_url") or os.environ.get("ST2_ACTION_API_URL")
    return bool(((config.get("slack") or {}).get("token")) and api_url)


def buttons_enabled(config: dict[str, Any]) -> bool:
    """Buttons only when the interactivity sensor receives their clicks."""
    return bool((((config or {}).get("chatops") or {}).get("interactivity") or {}).get("enabled"))


def save_plan(datastore: Any, incident_id: str, report: dict[str, Any]) -> None:
    datastore.set_value(PLAN_PREFIX + incident_id, json.dumps(report, sort_keys=True, default=str), local=False)


def take_plan(datastore: Any, incident_id: str) -> dict[str, Any] | None:
    """The plan ``aegis.notify`` stored for the incident's next approval message (read once)."""
    raw = datastore.get_value(PLAN_PREFIX + incident_id, local=False)
    if not raw:
        return None
    datastore.delete_value(PLAN_PREFIX + incident_id, local=False)
    return json.loads(raw)


def load_request(datastore: Any, inquiry_id: str) -> dict[str, Any] | None:
    raw = datastore.get_value(APPROVAL_PREFIX + inquiry_id, local=False)
    return json.loads(raw) if raw else None


def save_request(datastore: Any, inquiry_id: str, record: dict[str, Any]) -> None:
    datastore.set_value(APPROVAL_PREFIX + inquiry_id, json.dumps(record, sort_keys=True), local=False)


def post_request(config: dict[str, Any], datastore: Any, incident: dict[str, Any], inquiry: dict[str, Any]) -> dict[str, Any]:
    """Post the one approval message (plan + buttons); remember where it is (for chat.update)."""
    section = (config or {}).get("slack") or {}
    client = slack_client(section)
    buttons = buttons_enabled(config)
    plan = take_plan(datastore, incident["id"])
    blocks = request_blocks(incident, inquiry["id"], inquiry.get("ttl"), plan, buttons)
    record = {"inquiry_id": inquiry["id"], "incident_id": incident["id"], "state": "pending", "channel": None, "ts": None,
              "buttons": buttons, "plan_blocks": [b for b in blocks if b.get("type") != "actions"]}  # fmt: skip
    if client is None:
        record["delivery"] = "not_configured"
    else:
        text = request_text(incident, inquiry["id"], plan, buttons)
        try:
            resp = client.chat_postMessage(channel=section.get("channel") or "#incidents", text=text, blocks=blocks)
            record.update(channel=resp.get("channel"), ts=resp.get("ts"), delivery="sent")
        except SlackApiError as exc:
            record["delivery"] = f"error: {exc.response.get('error')}"
        except Exception as exc:  # noqa: BLE001 (the inquiry still waits; chat can answer it)
            record["delivery"] = f"error: {type(exc).__name__}"
    save_request(datastore, inquiry["id"], record)
    datastore.set_value(OF_PREFIX + incident["id"], inquiry["id"], local=False)
    return record


def begin_decision(datastore: Any, inquiry_id: str, user: str) -> dict[str, Any] | None:
    """Mark a pending request as being decided by ``user`` (so a notification that runs as the
    workflow resumes does not close it meanwhile); None when it is not pending."""
    record = load_request(datastore, inquiry_id)
    if record is None or record.get("state") != "pending":
        return None
    record.update(state="deciding", deciding=user)
    save_request(datastore, inquiry_id, record)
    return record


def undo_decision(datastore: Any, inquiry_id: str) -> None:
    """The answer failed: the request is pending again (unless something else decided it)."""
    record = load_request(datastore, inquiry_id)
    if record is not None and record.get("state") == "deciding":
        record["state"] = "pending"
        record.pop("deciding", None)
        save_request(datastore, inquiry_id, record)


def mark_decided(config: dict[str, Any], datastore: Any, incident: dict[str, Any], inquiry_id: str, decision: str,
                 user: str, at: str, reason: str = "", response_url: str = "") -> dict[str, Any]:
    """Rewrite the request message in place (the plan stays; who and when instead of the
    buttons) and remember the decision."""
    record = load_request(datastore, inquiry_id) or {"inquiry_id": inquiry_id, "incident_id": incident["id"]}
    record.update(state=decision, decided_by=user, decided_at=at)
    record.pop("deciding", None)
    blocks = decided_blocks(incident, decision, user, at, reason, record.get("plan_blocks"))
    text = slack_escape(f"{decision.capitalize()} by {user} at {at}" if decision in ("approved", "denied")
                        else f"{decision.capitalize()} at {at}: {reason}", 3000)  # fmt: skip
    client = slack_client((config or {}).get("slack") or {})
    try:
        if client is not None and record.get("channel") and record.get("ts"):
            client.chat_update(channel=record["channel"], ts=record["ts"], text=text, blocks=blocks)
            record["update"] = "chat.update"
        elif response_url:
            requests.post(response_url, json={"replace_original": True, "text": text, "blocks": blocks}, timeout=10)
            record["update"] = "response_url"
    except SlackApiError as exc:  # the decision stands; only the message is stale
        record["update"] = f"error: {exc.response.get('error')}"
    except Exception as exc:  # noqa: BLE001 (the decision stands; only the message is stale)
        record["update"] = f"error: {type(exc).__name__}"
    save_request(datastore, inquiry_id, record)
    return record


def close_pending(config: dict[str, Any], datastore: Any, incident: dict[str, Any], at: str, why: str) -> dict[str, Any] | None:
    """The workflow went on without a click or a chat answer (the inquiry timed out, or was
    answered with ``st2 inquiry respond``): take the buttons off the incident's request."""
    inquiry_id = datastore.get_value(OF_PREFIX + incident["id"], local=False)
    record = load_request(datastore, inquiry_id) if inquiry_id else None
    if record is None or record.get("state") != "pending":
        return None
    return mark_decided(config, datastore, incident, inquiry_id, "closed", "nobody", at, why)
