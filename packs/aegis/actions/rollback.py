"""aegis.rollback: Roll a deployment back to its previous revision (kubectl rollout undo), or call the configured deploy API.

    st2 run aegis.rollback incident_id=inc-0123456789abcdef target=checkout             # dry run
    st2 run aegis.rollback incident_id=inc-0123456789abcdef target=checkout dry_run=false

See ``lib/remedies.py`` (what is done, per backend) and ``lib/acting.py`` (dry run, guards).
"""

from acting import ActingAction


class Rollback(ActingAction):
    name = "rollback"
