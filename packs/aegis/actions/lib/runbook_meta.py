"""Extra runbook front matter the acting side reads: ``queries`` and ``verify_checks``.

    meta = runbook_front_matter(runbooks_dir, "memory-leak-restart")
    meta.get("queries")        # {"memory_ratio": 'container_memory_working_set_bytes{pod=~"${pod}.*"} / ...'}
    meta.get("verify_checks")  # [{"query": '...', "below": 0.7}, {"http": "http://.../healthz"}]

Kept apart from ``knowledge.parse_runbook`` (the diagnoser's, which validates the fields
retrieval needs) so optional fields never make a runbook unloadable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def runbook_front_matter(runbooks_dir: str | Path | None, runbook_id: str) -> dict[str, Any]:
    """The front matter of runbook ``runbook_id``, or {} when absent or unreadable."""
    if not runbooks_dir or not runbook_id or not _ID.match(runbook_id):
        return {}
    path = Path(runbooks_dir) / f"{runbook_id}.md"
    try:
        match = _FRONT.match(path.read_text(encoding="utf-8"))
        meta = yaml.safe_load(match.group(1)) if match else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return meta if isinstance(meta, dict) else {}


def runbook_of(diagnosis: dict[str, Any] | None) -> str:
    """The id of the runbook a diagnosis rests on (its first runbook evidence), or ''."""
    for item in (diagnosis or {}).get("evidence") or []:
        if isinstance(item, dict) and item.get("kind") == "runbook" and item.get("id"):
            return str(item["id"])
    return ""
