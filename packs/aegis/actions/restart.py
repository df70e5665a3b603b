"""aegis.restart: Restart a target on its backend (config targets/default_backend).

    st2 run aegis.restart incident_id=inc-0123456789abcdef target=checkout             # dry run
    st2 run aegis.restart incident_id=inc-0123456789abcdef target=checkout dry_run=false

See ``lib/remedies.py`` (what is done, per backend) and ``lib/acting.py`` (dry run, guards).
"""

from acting import ActingAction


class Restart(ActingAction):
    name = "restart"
