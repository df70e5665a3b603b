"""Backends the acting actions drive, one module per system, and the routing of a target.

    backend, settings = route(config, "checkout")     # ("kubernetes", {"namespace": "shop", ...})

Config ``targets`` maps a target name (what the diagnosis names) to its backend and the
backend-specific fields; ``default_backend`` (``kubernetes``) takes the rest. A target's
``name`` (default: the target itself) is what the backend acts on.
"""

from __future__ import annotations

from typing import Any

BACKENDS = ("kubernetes", "docker", "supervisor", "compose", "webhook")


class BackendError(RuntimeError):
    """A backend refused or could not do what was asked (the action fails with this message)."""


def route(config: dict[str, Any] | None, target: str) -> tuple[str, dict[str, Any]]:
    config = config or {}
    targets = config.get("targets") if isinstance(config.get("targets"), dict) else {}
    entry = targets.get(target) if isinstance(targets.get(target), dict) else {}
    backend = entry.get("backend") or config.get("default_backend") or "kubernetes"
    if backend not in BACKENDS:
        raise BackendError(f"target {target!r}: unknown backend {backend!r} (one of {', '.join(BACKENDS)})")
    return backend, {**entry, "name": entry.get("name") or target}
