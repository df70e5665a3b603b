"""aegis.cancel_query: PostgreSQL.

    st2 run aegis.cancel_query incident_id=inc-0123456789abcdef target=checkout             # dry run
    st2 run aegis.cancel_query incident_id=inc-0123456789abcdef target=checkout dry_run=false

See ``lib/remedies.py`` (what is done, per backend) and ``lib/acting.py`` (dry run, guards).
"""

from acting import ActingAction


class CancelQuery(ActingAction):
    name = "cancel_query"
