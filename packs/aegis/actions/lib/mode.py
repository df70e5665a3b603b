"""Aegis's global mode, the emergency off switch.

| mode       | what Aegis does                                                        |
|------------|------------------------------------------------------------------------|
| `monitor`  | records incidents and notifies; never diagnoses into action, never acts |
| `advisory` | diagnoses and proposes; a human runs the remediation                    |
| `auto`     | remediates cases the guardrails allow, verifies, escalates the rest     |

The datastore key ``aegis.mode`` (``st2 key set aegis.mode monitor``) overrides the pack
config's ``mode``, so an operator can stop all automation at once without a deploy. A
value that is not a mode is treated as ``monitor``: when in doubt, act less.

    >>> effective_mode({"mode": "auto"}, lambda key: None)
    ('auto', 'config')
    >>> effective_mode({"mode": "auto"}, lambda key: "monitor")
    ('monitor', 'datastore')
"""

from __future__ import annotations

from collections.abc import Callable

MODES = ("monitor", "advisory", "auto")
MODE_KEY = "aegis.mode"
DEFAULT_MODE = "advisory"


def effective_mode(config: dict, read_key: Callable[[str], str | None]) -> tuple[str, str]:
    """The mode in force and where it came from (``datastore``, ``config``, ``default`` or ``invalid``)."""
    override = read_key(MODE_KEY)
    if override is not None:
        override = override.strip().lower()
        return (override, "datastore") if override in MODES else ("monitor", "invalid")
    configured = (config or {}).get("mode")
    if configured in MODES:
        return configured, "config"
    return DEFAULT_MODE, "default"


def allows_automatic_remediation(mode: str) -> bool:
    return mode == "auto"
