"""Slack's interactivity callbacks for the approval buttons: verify, authorize, decide, record.

    clicks = ApprovalClicks(config, datastore, api_factory=lambda: St2API.from_config(config))
    status, body = clicks.handle(headers, raw_body)       # the HTTP answer for Slack

Slack signs every request (https://api.slack.com/authentication/verifying-requests-from-slack):
``X-Slack-Signature: v0=<hex HMAC-SHA256(signing_secret, "v0:<X-Slack-Request-Timestamp>:<body>")>``.
A request is refused (401) when the signature is missing or wrong (compared in constant
time) or its timestamp is more than five minutes from now (a replay). Then the click:

| case                                              | effect                                         |
|---------------------------------------------------|------------------------------------------------|
| button of no approval request we posted, or moved | nothing; audited                               |
| request already decided (chat, another click)     | nothing; the clicker is told who decided       |
| clicking user not an approver                     | nothing; refusal in the incident's timeline    |
| inquiry answered or timed out meanwhile (st2 400) | nothing; the message says it expired           |
| otherwise                                         | inquiry answered via st2's API; message shows who and when |

Every case is recorded: in the incident's timeline when the request names a known
incident, else in the ChatOps audit log (``aegis.chatops.audit.*``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import requests
from approvals import (
    APPROVE_ACTION,
    DENY_ACTION,
    answer,
    begin_decision,
    load_request,
    mark_decided,
    parse_button_value,
    undo_decision,
)
from chatops import Permissions, audit
from incidents import IncidentStore
from lifecycle import Lifecycle
from st2_api import St2API, St2Error
from timestamps import utc_iso

REPLAY_WINDOW = 300  # seconds, as Slack recommends
MAX_BODY = 64 * 1024


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's ``v0=`` signature of a request."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, headers: Any, body: bytes, now: float) -> str | None:
    """None when the request is Slack's and fresh; else why not."""
    if not secret:
        return "no signing secret configured (chatops.slack_signing_secret)"
    timestamp = headers.get("X-Slack-Request-Timestamp") or ""
    given = headers.get("X-Slack-Signature") or ""
    if not timestamp.isdigit() or not given:
        return "missing signature headers"
    if abs(now - int(timestamp)) > REPLAY_WINDOW:
        return f"timestamp {timestamp} is more than {REPLAY_WINDOW} s from now (replay?)"
    if not hmac.compare_digest(signature(secret, timestamp, body), given):
        return "bad signature"
    return None


class ApprovalClicks:
    def __init__(self, config: dict[str, Any], datastore: Any, api_factory: Callable[[], St2API] | None = None,
                 clock: Callable[[], float] = time.time, logger: Any = None) -> None:
        self.config = config or {}
        self.ds = datastore
        self.api_factory = api_factory or (lambda: St2API.from_config(self.config))
        self.clock = clock
        self.incidents = IncidentStore(datastore)
        self.lifecycle = Lifecycle(datastore, clock=clock)
        self.permissions = Permissions(self.config, lambda key: datastore.get_value(key, local=False))
        self.log = logger

    def _note(self, incident_id: str | None, text: str, **data: Any) -> None:
        if self.log:
            self.log.warning("slack click: %s", text)
        if incident_id and self.incidents.get(incident_id) is not None:
            self.lifecycle.event(incident_id, None, text, **data)
        else:
            audit(self.ds, text, **data)

    @staticmethod
    def _tell(response_url: str, text: str) -> None:
        """An ephemeral reply to the clicker only (best effort)."""
        if not response_url:
            return
        try:
            requests.post(response_url, json={"response_type": "ephemeral", "replace_original": False, "text": text}, timeout=5)
        except requests.RequestException:
            pass

    def handle(self, headers: Any, body: bytes) -> tuple[int, str]:
        now = self.clock()
        if len(body) > MAX_BODY:
            return 413, "too large"
        secret = (self.config.get("chatops") or {}).get("slack_signing_secret") or ""
        problem = verify(secret, headers, body, now)
        if problem:
            self._note(None, f"slack request refused: {problem}", source="slack")
            return 401, problem
        try:
            payload = json.loads(parse_qs(body.decode()).get("payload", [""])[0])
        except (ValueError, UnicodeDecodeError):
            return 400, "expected a form with a JSON payload"
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return 200, ""  # other interactions are not ours
        actions = [a for a in payload.get("actions") or [] if a.get("action_id") in (APPROVE_ACTION, DENY_ACTION)]
        if not actions:
            return 200, ""
        return 200, self._click(payload, actions[0], now)

    def _click(self, payload: dict[str, Any], action: dict[str, Any], now: float) -> str:
        user = payload.get("user") or {}
        user_id, user_name = str(user.get("id") or ""), str(user.get("username") or user.get("name") or "")
        who = f"{user_name or '?'} ({user_id})"
        response_url = str(payload.get("response_url") or "")
        decision = "approved" if action["action_id"] == APPROVE_ACTION else "denied"
        inquiry_id, incident_id = parse_button_value(str(action.get("value") or ""))
        record = load_request(self.ds, inquiry_id) if inquiry_id else None
        container = payload.get("container") or {}
        if record is None or record.get("incident_id") != incident_id:
            self._note(incident_id or None, f"slack {decision} click by {who} ignored: no approval request for inquiry {inquiry_id!r}",
                       user=user_id, inquiry=inquiry_id)  # fmt: skip
            return "unknown"
        if record.get("ts") and (container.get("message_ts"), container.get("channel_id")) != (record["ts"], record["channel"]):
            self._note(incident_id, f"slack {decision} click by {who} ignored: the button is not on the approval message",
                       user=user_id, inquiry=inquiry_id)  # fmt: skip
            return "moved"
        if record.get("state") != "pending":
            state = record.get("state")
            done = (f"being decided by {record.get('deciding')}" if state == "deciding"
                    else f"{state} by {record.get('decided_by')} at {record.get('decided_at')}")  # fmt: skip
            self._note(incident_id, f"slack {decision} click by {who} ignored: already {done}", user=user_id, inquiry=inquiry_id)
            self._tell(response_url, f"Already {done}.")
            return "already decided"
        if not self.permissions.allowed(user_id, user_name):
            self._note(incident_id, f"slack {decision} click refused: {who} is not an approver", user=user_id, inquiry=inquiry_id)
            self._tell(response_url, "You may not approve or deny remediations (config chatops.approvers).")
            return "refused"
        incident = self.incidents.get(incident_id) or {"id": incident_id}
        at = utc_iso(now)
        if begin_decision(self.ds, inquiry_id, user_name or user_id) is None:  # another click or chat got there first
            self._note(incident_id, f"slack {decision} click by {who} ignored: decided meanwhile", user=user_id, inquiry=inquiry_id)
            return "already decided"
        try:
            api = self.api_factory()
            inquiry = api.inquiry(inquiry_id)
            answer(api, inquiry, decision == "approved", user_name or user_id)
        except St2Error as exc:
            if exc.status in (400, 404):  # answered elsewhere, or timed out: the buttons expire with it
                mark_decided(self.config, self.ds, incident, inquiry_id, "expired", "nobody", at, str(exc)[:200], response_url)
            else:
                undo_decision(self.ds, inquiry_id)
            self._note(incident_id, f"slack {decision} click by {who} changed nothing: {exc}", user=user_id, inquiry=inquiry_id)
            return "stale"
        except ValueError as exc:
            undo_decision(self.ds, inquiry_id)
            self._note(incident_id, f"slack {decision} click by {who} changed nothing: {exc}", user=user_id, inquiry=inquiry_id)
            return "error"
        mark_decided(self.config, self.ds, incident, inquiry_id, decision, user_name or user_id, at, "", response_url)
        self._note(incident_id, f"{decision} by {who} via Slack button", user=user_id, inquiry=inquiry_id)
        return decision
