"""aegis.decide: approve or deny the remediation waiting on a human (``aegis approve|deny``).

    st2 run aegis.decide incident_id=inc-0123456789abcdef decision=approve
    !st2 aegis deny inc-0123456789abcdef not during the sale        # chat: approvers only

Answers the pending inquiry (``core.ask``) of the incident's workflow through st2's API,
records the decision (or the refusal of a user who is not an approver) in the incident's
timeline, and rewrites the Slack approval request so nobody decides twice.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from approvals import answer, begin_decision, mark_decided, pending_inquiry_for, undo_decision
from base import AegisAction
from chatops import Permissions, slack_escape
from incidents import UnknownIncident
from st2_api import St2API, St2Error

PAST = {"approve": "approved", "deny": "denied"}


class Decide(AegisAction):
    def run(self, incident_id: str, decision: str, reason: str = "", chat_user: str = "",
            channel: str = "") -> tuple[bool, dict[str, Any]]:
        try:
            incident = self.incidents.load(incident_id.strip())
        except UnknownIncident as exc:
            return False, {"reply": f"No such incident: {slack_escape(exc, 200)}"}
        who = chat_user or "st2"
        read = lambda key: self.action_service.get_value(key, local=False)  # noqa: E731
        refusal = Permissions(self.config, read).refusal(chat_user, decision) if chat_user else None
        if refusal:
            self.lifecycle.event(incident["id"], None, f"{decision} refused: {chat_user} is not an approver (chat {channel})",
                                 user=chat_user, channel=channel, refused=decision)  # fmt: skip
            self.logger.warning("%s of %s refused: %s is not an approver", decision, incident["id"], chat_user)
            return False, {"refused": True, "reply": refusal}
        inquiry: dict[str, Any] | None = None
        claimed: dict[str, Any] | None = None
        try:
            api = St2API.from_config(self.config)
            inquiry = pending_inquiry_for(api, incident["id"])
            if inquiry is None:
                return False, {"reply": f"Nothing is waiting for approval on `{incident['id']}`."}
            claimed = begin_decision(self.action_service, inquiry["id"], who)  # None: no Slack message, or decided there
            response = answer(api, inquiry, decision == "approve", who, reason)
        except (St2Error, ValueError) as exc:
            if inquiry is not None and claimed is not None:
                undo_decision(self.action_service, inquiry["id"])
            return False, {"reply": f"Could not {decision} `{incident['id']}`: {slack_escape(exc, 300)}"}
        at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        past = PAST[decision]
        self.lifecycle.event(incident["id"], None, f"{past} by {who} via chat{f' ({channel})' if channel else ''}"
                                                   f"{f': {reason}' if reason else ''}", user=who, inquiry=inquiry["id"])  # fmt: skip
        mark_decided(self.config, self.action_service, incident, inquiry["id"], past, who, at, reason)
        self.logger.info("decision incident=%s inquiry=%s %s by %s", incident["id"], inquiry["id"], past, who)
        next_ = "the remediation continues." if decision == "approve" else "Aegis will not act; it escalates."
        reply = f"{':white_check_mark:' if decision == 'approve' else ':x:'} *{past.capitalize()}* `{incident['id']}` " \
                f"by {slack_escape(who, 80)} — {next_}"
        return True, {"decision": past, "inquiry_id": inquiry["id"], "response": response, "by": who, "reply": reply}
