"""aegis.cleanup_disk: Free disk space in the configured safe paths only (rotated logs, old tmp files, container json logs).

    st2 run aegis.cleanup_disk incident_id=inc-0123456789abcdef target=checkout             # dry run
    st2 run aegis.cleanup_disk incident_id=inc-0123456789abcdef target=checkout dry_run=false

See ``lib/remedies.py`` (what is done, per backend) and ``lib/acting.py`` (dry run, guards).
"""

from acting import ActingAction


class CleanupDisk(ActingAction):
    name = "cleanup_disk"
