"""st2's API shapes (``st2common/models/api/*.py``) built from the runtime's records.

Ids of resources st2lite loads from files (actions, rules, packs, runners) are stable
24-hex-digit digests of their refs, shaped like st2's ObjectIds, so that a client that
reads an id and sends it back (``st2 rule enable`` PUTs ``/rules/<id>``) finds the resource.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from ..pack_env.pack_runtime.datastore import KeyValuePair
from .auth import isotime

SYSTEM_SCOPE = "st2kv.system"
USER_SCOPE = "st2kv.user"


def stable_id(kind: str, ref: str) -> str:
    return hashlib.sha1(f"{kind}:{ref}".encode()).hexdigest()[:24]


def _seconds_between(start: str, end: str) -> float:
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return round((parse(end) - parse(start)).total_seconds(), 3)


def action_view(action: Any) -> dict[str, Any]:
    return {
        "id": stable_id("action", action.ref), "uid": f"action:{action.pack}:{action.name}", "ref": action.ref,
        "name": action.name, "pack": action.pack, "description": action.description or action.meta.get("description", ""),
        "enabled": action.enabled, "entry_point": action.entry_point or "", "runner_type": action.runner_type,
        "parameters": action.parameters, "output_schema": action.output_schema or {}, "notify": {},
        "tags": action.meta.get("tags", []), "metadata_file": f"actions/{action.file.name}" if action.file.name != "<builtin>" else "",
    }  # fmt: skip


def runner_view(name: str, parameters: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {
        "id": stable_id("runner", name), "uid": f"runner_type:{name}", "name": name, "description": description,
        "enabled": True, "runner_package": name.replace("-", "_"), "runner_module": name.replace("-", "_"),
        "runner_parameters": parameters, "output_key": "result",
    }  # fmt: skip


def rule_view(rule: Any) -> dict[str, Any]:
    meta = rule.meta
    return {
        "id": stable_id("rule", rule.ref), "uid": f"rule:{rule.pack}:{rule.name}", "ref": rule.ref, "name": rule.name,
        "pack": rule.pack, "description": meta.get("description", ""), "enabled": rule.enabled,
        "trigger": {"type": rule.trigger_type, "ref": rule.trigger_type, "parameters": rule.trigger_parameters},
        "criteria": rule.criteria, "action": {"ref": rule.action_ref, "parameters": rule.action_parameters},
        "type": {"ref": rule.rule_type, "parameters": {}}, "tags": meta.get("tags", []), "context": {},
        "metadata_file": f"rules/{rule.file.name}",
    }  # fmt: skip


def pack_view(pack: Any) -> dict[str, Any]:
    meta = pack.meta
    return {
        "id": stable_id("pack", pack.ref), "uid": f"pack:{pack.ref}", "ref": pack.ref, "name": meta.get("name", pack.ref),
        "description": meta.get("description", ""), "version": str(meta.get("version", "")), "author": meta.get("author", ""),
        "email": meta.get("email", ""), "keywords": meta.get("keywords", []), "python_versions": meta.get("python_versions", []),
        "dependencies": meta.get("dependencies", []), "system": meta.get("system", {}), "path": str(pack.path),
        "files": [],
    }  # fmt: skip


def trigger_instance_view(ti: dict[str, Any]) -> dict[str, Any]:
    return {"id": ti["id"], "trigger": ti["trigger"], "occurrence_time": ti["occurrence_time"],
            "payload": ti["payload"], "status": ti["status"]}  # fmt: skip


def key_view(pair: KeyValuePair, decrypted: bool, user: str | None = None) -> dict[str, Any]:
    """A KeyValuePairAPI document; a secret's value is its ciphertext unless ``decrypted``, as st2's."""
    scope = USER_SCOPE if pair.scope == "user" else SYSTEM_SCOPE
    name = pair.name.split(":", 1)[1] if (scope == USER_SCOPE and ":" in pair.name) else pair.name
    view = {
        "id": name, "uid": f"key_value_pair:{scope}:{pair.name}", "name": name, "value": pair.value,
        "secret": pair.secret, "encrypted": pair.secret and not decrypted, "scope": scope,
    }  # fmt: skip
    if scope == USER_SCOPE:
        view["user"] = user or pair.name.split(":", 1)[0]
    if pair.expire_at:
        view["expire_timestamp"] = isotime(pair.expire_at)
    return view


def inquiry_view(record: dict[str, Any]) -> dict[str, Any]:
    result = record.get("result") or {}
    return {"id": record["id"], **{k: result.get(k) for k in ("route", "ttl", "users", "roles", "schema")}}


def execution_view(record: dict[str, Any], action: Any, runner_parameters: dict[str, Any], children: list[str]) -> dict[str, Any]:
    """An ActionExecutionAPI document for one execution record."""
    ex_id, status = record["id"], record["status"]
    action_doc = action_view(action) if action is not None else {"ref": record["action"], "runner_type": record["runner"],
                                                                   "name": record["action"].partition(".")[2],
                                                                   "pack": record["action"].partition(".")[0]}  # fmt: skip
    log = [{"status": "requested", "timestamp": record["start_timestamp"]}]
    if status != "requested":
        log.append({"status": status, "timestamp": record["end_timestamp"] or record["start_timestamp"]})
    doc: dict[str, Any] = {
        "id": ex_id, "action": action_doc, "runner": runner_view(record["runner"], runner_parameters),
        "liveaction": {"id": ex_id, "action": record["action"], "status": status, "parameters": record["parameters"],
                       "context": record["context"], "callback": {}, "runner_info": {}},
        "status": status, "start_timestamp": record["start_timestamp"], "parameters": record["parameters"],
        "result": record["result"] if record["result"] is not None else {}, "context": record["context"] or {},
        "children": children, "log": log, "web_url": "",
    }  # fmt: skip
    if record["end_timestamp"]:
        doc["end_timestamp"] = record["end_timestamp"]
        doc["elapsed_seconds"] = _seconds_between(record["start_timestamp"], record["end_timestamp"])
    if record["parent"]:
        doc["parent"] = record["parent"]
    if record["rule"]:
        pack, _, name = record["rule"].partition(".")
        doc["rule"] = {"ref": record["rule"], "name": name, "pack": pack, "id": stable_id("rule", record["rule"])}
    if record["trigger_instance_id"]:
        doc["trigger_instance"] = {"id": record["trigger_instance_id"]}
    if record.get("task_name"):
        doc["context"] = {**doc["context"], "orquesta": {**(doc["context"].get("orquesta") or {}), "task_name": record["task_name"]}}
    return doc


def select_attributes(doc: dict[str, Any], include: str | None, exclude: str | None) -> dict[str, Any]:
    """st2's ``include_attributes``/``exclude_attributes`` (top-level fields; ``a.b`` keeps ``a``)."""
    if include:
        keep = {part.strip().split(".", 1)[0] for part in include.split(",") if part.strip()} | {"id"}
        doc = {k: v for k, v in doc.items() if k in keep}
    if exclude:
        drop = {part.strip().split(".", 1)[0] for part in exclude.split(",") if part.strip()}
        doc = {k: v for k, v in doc.items() if k not in drop}
    return doc


def alias_view(alias: Any) -> dict[str, Any]:
    """An ActionAliasAPI document (what ``/actionalias`` and ``/actionalias/match`` return)."""
    meta = alias.meta
    return {
        "id": stable_id("actionalias", alias.ref), "uid": f"action_alias:{alias.pack}:{alias.name}", "ref": alias.ref,
        "name": alias.name, "pack": alias.pack, "description": meta.get("description", ""), "enabled": alias.enabled,
        "action_ref": alias.action_ref, "formats": meta.get("formats") or [], "ack": meta.get("ack") or {},
        "result": meta.get("result") or {}, "extra": meta.get("extra") or {},
        "immutable_parameters": meta.get("immutable_parameters") or {},
        "metadata_file": f"aliases/{alias.file.name}" if getattr(alias, "file", None) else "",
    }  # fmt: skip
