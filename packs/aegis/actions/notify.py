"""aegis.notify: tell humans what Aegis proposes, did, or decided not to do (Slack, PagerDuty).

    st2 run aegis.notify incident_id=inc-... kind=advisory diagnosis='{...}' attempts='[{...}]'

``kind``: ``advisory`` (the dry run's exact plan), ``resolved`` (also PagerDuty resolve),
``noop``. Escalations go through ``aegis.escalate``. The report is built from the stored
incident and its timeline (see ``lib/reports.py``); it also moves the incident's lifecycle.
"""

from notifying import NotifyingAction


class Notify(NotifyingAction):
    pass
