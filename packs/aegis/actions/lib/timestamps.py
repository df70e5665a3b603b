"""One timestamp format for every record the pack writes, and one parser for every one it reads.

    utc_iso(1767225600.25)                    # '2026-01-01T00:00:00.250000Z'
    utc_iso()                                 # now
    epoch_seconds("2026-01-01T00:00:00Z")     # 1767225600.0
    epoch_seconds("2026-01-01T00:00:00.123456789+01:00")  # Alertmanager's nanoseconds are fine

Every record carries microseconds: two times that are compared (an incident's ``opened_at``
and its timeline's ``resolved``, for MTTR) must not be rounded differently, or a fast
resolution comes out negative.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def utc_iso(epoch: float | None = None) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``; ``epoch`` defaults to now."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch_seconds(iso: str) -> float | None:
    """RFC 3339 (any fraction length, ``Z`` or offset) to epoch seconds, None if not one.

    Python 3.10's ``fromisoformat`` takes neither ``Z`` nor nanoseconds, which Alertmanager sends.
    """
    match = _RFC3339.match(iso or "")
    if not match:
        return None
    base, fraction, zone = match.groups()
    text = base + (("." + (fraction + "000000")[:6]) if fraction else "") + ("+00:00" if zone == "Z" else zone)
    return datetime.fromisoformat(text).timestamp()
