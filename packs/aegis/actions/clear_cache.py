"""aegis.clear_cache: Redis.

    st2 run aegis.clear_cache incident_id=inc-0123456789abcdef target=checkout             # dry run
    st2 run aegis.clear_cache incident_id=inc-0123456789abcdef target=checkout dry_run=false

See ``lib/remedies.py`` (what is done, per backend) and ``lib/acting.py`` (dry run, guards).
"""

from acting import ActingAction


class ClearCache(ActingAction):
    name = "clear_cache"
