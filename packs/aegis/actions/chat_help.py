"""aegis.chat_help: the reply to an ``aegis ...`` command no alias knows, with the closest ones.

    st2 run aegis.chat_help text="incidnets"      ->  "Did you mean: aegis incidents [open|all] ..."

The pack's own alias files are the list (they ship with the pack on st2 too).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from base import AegisAction
from chatops import slack_escape, suggestion_reply

ALIASES_DIR = Path(__file__).resolve().parent.parent / "aliases"


def displays() -> list[str]:
    out = []
    for path in sorted(ALIASES_DIR.glob("*.yaml")):
        meta = yaml.safe_load(path.read_text()) or {}
        for format_ in meta.get("formats") or []:
            display = format_ if isinstance(format_, str) else (format_.get("display") if not format_.get("match_multiple") else None)
            if display:
                out.append(display)
    return out


def closest(text: str, candidates: list[str], limit: int = 3) -> list[str]:
    """Displays whose command words are nearest to ``text``'s first words."""
    words = text.lower().split()
    scored = []
    for display in candidates:
        literal = [w for w in display.lower().split()[1:] if not w.startswith(("<", "[", "{"))]
        score = difflib.SequenceMatcher(None, " ".join(words[: len(literal)]), " ".join(literal)).ratio()
        scored.append((score, display))
    scored.sort(key=lambda pair: -pair[0])
    return [d for s, d in scored[:limit] if s >= 0.5]


class ChatHelp(AegisAction):
    def run(self, text: str = "") -> dict[str, Any]:
        if text.strip().lower() in ("", "help", "?"):
            commands = displays()
            return {"suggestions": commands, "reply": "*Aegis commands*\n" + "\n".join(f"• `{slack_escape(c)}`" for c in commands)}
        suggestions = closest(text, displays())
        return {"suggestions": suggestions, "reply": suggestion_reply(text, suggestions)}
