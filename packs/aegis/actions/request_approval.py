"""aegis.request_approval: the one Slack message of an approval: the plan, with Approve/Deny buttons.

    st2 run aegis.request_approval inquiry_id=5f1e...      # the rule on core.st2.generic.inquiry does this

st2's inquirer runner fires ``core.st2.generic.inquiry`` ({id, route}) when a workflow
reaches ``core.ask``; the rule ``aegis.request_approval`` runs this action for it. An
inquiry that belongs to no incident (another pack's ``core.ask``) is left alone. The
message carries the dry run's plan that ``aegis.notify`` (kind approval) stored just before
the workflow asked, and the buttons bound to this inquiry (when the interactivity sensor is
enabled); it is remembered (``aegis.approval.<inquiry>``) so a decision edits it in place.
"""

from __future__ import annotations

import time
from typing import Any

from approvals import incident_of, post_request
from base import AegisAction
from incidents import UnknownIncident
from st2_api import St2API, St2Error


class RequestApproval(AegisAction):
    #: The trigger can come a moment before the inquirer runner's execution is recorded as
    #: pending (st2 answers 400 until then): ask again for up to this long.
    settle_seconds = 10.0

    def _pending(self, api: St2API, inquiry_id: str) -> dict[str, Any]:
        deadline, delay = time.monotonic() + self.settle_seconds, 0.05
        while True:
            try:
                return api.inquiry(inquiry_id)
            except St2Error as exc:
                if exc.status != 400 or "already been responded" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def run(self, inquiry_id: str) -> tuple[bool, dict[str, Any]]:
        try:
            api = St2API.from_config(self.config)
        except St2Error as exc:  # no API to read the inquiry from: the workflow still waits for `st2 inquiry respond`
            self.logger.warning("approval request for inquiry %s not posted: %s", inquiry_id, exc)
            return True, {"skipped": str(exc)}
        try:
            inquiry = self._pending(api, inquiry_id)
            incident_id = incident_of(api, inquiry_id)
        except St2Error as exc:
            return False, {"error": str(exc)}
        if not incident_id:
            return True, {"skipped": "the inquiry belongs to no Aegis incident"}
        try:
            incident = self.incidents.load(incident_id)
        except UnknownIncident as exc:
            return False, {"error": str(exc)}
        record = post_request(self.config, self.action_service, incident, inquiry)
        self.lifecycle.event(incident_id, None, f"approval requested (inquiry {inquiry_id}): slack {record['delivery']}",
                             inquiry=inquiry_id)  # fmt: skip
        return True, record
