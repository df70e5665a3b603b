"""aegis.scale_up: Add replicas to a Kubernetes deployment or statefulset, within kubernetes.max_replicas and never more than double without approval..

    st2 run aegis.scale_up incident_id=inc-0123456789abcdef target=checkout             # dry run
    st2 run aegis.scale_up incident_id=inc-0123456789abcdef target=checkout dry_run=false

See ``lib/remedies.py`` (what is done, per backend) and ``lib/acting.py`` (dry run, guards).
"""

from acting import ActingAction


class ScaleUp(ActingAction):
    name = "scale_up"
