"""aegis.escalate: hand the incident to a human with everything Aegis knows and tried.

    st2 run aegis.escalate incident_id=inc-... diagnosis='{...}' attempts='[...]' note="verification failed"

Slack and a PagerDuty ``trigger`` (``dedup_key`` = the alert fingerprint). When neither is
configured or reachable the incident becomes ``escalated (unrouted)`` and the runtime log
says so loudly; the execution still succeeds (the report is in its result).
"""

from notifying import NotifyingAction


class Escalate(NotifyingAction):
    kind = "escalation"
