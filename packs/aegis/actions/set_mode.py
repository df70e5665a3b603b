"""aegis.set_mode: write (or clear) the aegis.mode override; report the mode now in force.

    st2 run aegis.set_mode mode=monitor reason="db migration"
    !st2 aegis pause db migration             # chat: only approvers (config chatops.approvers)

From chat, the alias passes the chat user (``chat_user``, st2's ``api_user``): users not on
the approvers list are refused and the refusal is recorded. Every change records who, why
and when in ``aegis.mode.last_change`` (``aegis status`` shows it).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from base import AegisAction
from chatops import Permissions, audit, slack_escape
from mode import MODE_KEY, effective_mode

LAST_CHANGE_KEY = "aegis.mode.last_change"


class SetMode(AegisAction):
    def run(self, mode: str, reason: str = "", chat_user: str = "", channel: str = "") -> tuple[bool, dict[str, Any]]:
        read = lambda key: self.action_service.get_value(key, local=False)  # noqa: E731
        before, _ = effective_mode(self.config, read)
        who = chat_user or "st2"
        if chat_user:
            refusal = Permissions(self.config, read).refusal(chat_user, "mode")
            if refusal:
                audit(self.action_service, f"mode {mode} refused: {chat_user} is not an approver", user=chat_user, channel=channel)
                self.logger.warning("aegis mode change to %s refused: %s is not an approver", mode, chat_user)
                return False, {"refused": True, "mode": before, "reply": refusal}
        if mode == "clear":
            self.action_service.delete_value(MODE_KEY, local=False)
        else:
            self.action_service.set_value(MODE_KEY, mode, local=False)
        after, source = effective_mode(self.config, read)
        at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        change = {"from": before, "to": after, "requested": mode, "by": who, "channel": channel, "reason": reason, "at": at}
        self.action_service.set_value(LAST_CHANGE_KEY, json.dumps(change), local=False)
        audit(self.action_service, f"mode {before} -> {after} by {who}", **change)
        self.logger.warning("aegis mode %s -> %s (%s) by %s: %s", before, after, source, who, reason or "no reason given")
        why = f" — {slack_escape(reason, 200)}" if reason else ""
        reply = f"Aegis mode is now *{after}* (was {before}, from {source}), set by {slack_escape(who, 80)}{why}"
        return True, {"previous": before, "mode": after, "source": source, "reason": reason, "by": who, "reply": reply}
