"""Disk cleanup of configured safe paths only: rotated logs, old tmp files, container json logs.

    plan = cleanup_plan(rules, now=time.time())   # files, their sizes and what would be done
    freed = apply_cleanup(plan)                   # bytes freed

Config ``cleanup.paths`` (per target in ``cleanup.targets.<target>``, else ``cleanup.paths``):
a list of ``{path, kind, older_than_hours}`` where ``kind`` is one of :data:`KINDS`.
Only regular files directly in or below ``path`` are considered, never symlinks (a link
could point into data); a ``path`` under a protected directory (``cleanup.protected``,
default :data:`PROTECTED`) or ``/`` itself is refused at planning time.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends import BackendError

PROTECTED = ("/var/lib/postgresql", "/var/lib/mysql", "/var/lib/redis", "/var/lib/rabbitmq", "/var/lib/etcd",
             "/var/lib/kafka", "/var/lib/elasticsearch", "/data", "/srv", "/home", "/etc", "/boot", "/usr")


def _rotated(name: str) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in ("*.gz", "*.[0-9]", "*.[0-9].log", "*.log.[0-9]*", "*.old", "*.bz2", "*.xz", "*.zst"))


# kind → (which files, what is done: delete frees the file, truncate empties a file a
# process still writes, e.g. Docker's json log, whose space unlink would not free)
KINDS: dict[str, tuple[Callable[[str], bool], str]] = {
    "rotated_logs": (_rotated, "delete"),
    "tmp": (lambda name: True, "delete"),
    "container_logs": (lambda name: name.endswith("-json.log"), "truncate"),
}


def _protected(path: Path, protected: tuple[str, ...]) -> str | None:
    if path == Path("/"):
        return "/"
    for p in protected:
        if path == Path(p) or Path(p) in path.parents:
            return p
    return None


def cleanup_plan(rules: list[dict[str, Any]], protected: tuple[str, ...] = PROTECTED,
                 now: float | None = None, max_files: int = 10000) -> dict[str, Any]:
    if not rules:
        raise BackendError("cleanup: no safe paths configured (cleanup.paths); Aegis deletes nothing by guesswork")
    now = time.time() if now is None else now
    files: list[dict[str, Any]] = []
    for rule in rules:
        kind = rule.get("kind", "")
        if kind not in KINDS:
            raise BackendError(f"cleanup: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        root = Path(os.path.realpath(rule["path"]))
        hit = _protected(root, protected)
        if hit:
            raise BackendError(f"cleanup: {rule['path']} is under protected {hit}; never cleaned")
        matches, op = KINDS[kind]
        cutoff = now - float(rule.get("older_than_hours", 24)) * 3600
        for dirpath, _dirs, names in os.walk(root, followlinks=False):
            for name in sorted(names):
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if not os.path.isfile(full) or os.path.islink(full) or st.st_mtime > cutoff or not matches(name):
                    continue
                if op == "truncate" and st.st_size == 0:
                    continue
                files.append({"path": full, "bytes": st.st_size, "op": op, "kind": kind})
                if len(files) >= max_files:
                    break
    return {"files": files, "bytes": sum(f["bytes"] for f in files), "count": len(files)}


def apply_cleanup(plan: dict[str, Any]) -> dict[str, Any]:
    freed, done, errors = 0, 0, []
    for f in plan["files"]:
        try:
            if os.path.islink(f["path"]):
                continue
            size = os.lstat(f["path"]).st_size
            if f["op"] == "truncate":
                os.truncate(f["path"], 0)
            else:
                os.unlink(f["path"])
        except OSError as exc:
            errors.append(f"{f['path']}: {exc.strerror}")
            continue
        freed += size
        done += 1
    return {"bytes_freed": freed, "files": done, "errors": errors}
