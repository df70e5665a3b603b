"""What each remediation does on each backend: a plan (read-only) and its execution.

    plan = RESTART["supervisor"].plan(config, "victim", entry)   # what exactly would be done
    result = RESTART["supervisor"].execute(config, plan)

Tables, not if-chains: adding a backend is one entry. Every plan names its backend, the
object it touches and the commands/API calls it would make, which is what a dry run
reports. Executions re-read the object and act on it, never on text from the alert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from backends import BackendError, route
from backends.disk import PROTECTED, apply_cleanup, cleanup_plan

Plan = dict[str, Any]


@dataclass(frozen=True)
class Remedy:
    plan: Callable[[dict[str, Any], str, dict[str, Any], dict[str, Any]], Plan]
    execute: Callable[[dict[str, Any], Plan], dict[str, Any]]


def _kube(config: dict[str, Any]):
    from backends.kubernetes_backend import Kube  # imported on use: the client is slow to import
    return Kube.from_config(config.get("kubernetes") or {})


def _workload(config: dict[str, Any], plan: Plan):
    from backends.kubernetes_backend import Workload
    return _kube(config), Workload(plan["kind"], plan["name"], plan["namespace"])


def _supervisor(config: dict[str, Any]):
    from backends.supervisor import Supervisor
    return Supervisor.from_config(config.get("supervisor") or {})


def _docker(config: dict[str, Any]):
    from backends.docker_backend import Docker
    return Docker.from_config(config.get("docker") or {})


# -- restart ---------------------------------------------------------------------------

def _restart_kube_plan(config, target, entry, params):
    w = _kube(config).resolve(entry["name"], entry.get("namespace"))
    return {"backend": "kubernetes", "kind": w.kind, "name": w.name, "namespace": w.namespace,
            "commands": [f"kubectl rollout restart {w.kind.lower()}/{w.name} -n {w.namespace}"]}


def _restart_kube(config, plan):
    kube, w = _workload(config, plan)
    return kube.restart(w)


def _restart_docker_plan(config, target, entry, params):
    c = _docker(config).describe(entry["name"])
    return {"backend": "docker", "container": c, "commands": [f"POST /containers/{c['id']}/restart"]}


def _restart_docker(config, plan):
    return _docker(config).restart(plan["container"]["id"])


def _restart_supervisor_plan(config, target, entry, params):
    proc = _supervisor(config).describe(entry["name"])
    return {"backend": "supervisor", "process": proc,
            "commands": [f"supervisor.stopProcess({proc['name']!r})", f"supervisor.startProcess({proc['name']!r})"]}


def _restart_supervisor(config, plan):
    return _supervisor(config).restart(plan["process"]["name"])


RESTART = {
    "kubernetes": Remedy(_restart_kube_plan, _restart_kube),
    "docker": Remedy(_restart_docker_plan, _restart_docker),
    "supervisor": Remedy(_restart_supervisor_plan, _restart_supervisor),
}


# -- scale_up --------------------------------------------------------------------------

def _scale_kube_plan(config, target, entry, params):
    section = config.get("kubernetes") or {}
    kube = _kube(config)
    w = kube.resolve(entry["name"], entry.get("namespace"))
    current = kube.replicas(w)
    step = int(params.get("step") or section.get("scale_step") or 1)
    maximum = int(entry.get("max_replicas") or section.get("max_replicas") or 10)
    wanted = min(current + step, maximum)
    if current and wanted > 2 * current and not params.get("approved"):
        wanted = 2 * current  # never more than double without a human's approval
    if wanted <= current:
        raise BackendError(f"kubernetes: {w} already has {current} replicas (max {maximum}); scaling up is not possible")
    return {"backend": "kubernetes", "kind": w.kind, "name": w.name, "namespace": w.namespace,
            "replicas_from": current, "replicas_to": wanted, "max_replicas": maximum,
            "commands": [f"kubectl scale {w.kind.lower()}/{w.name} -n {w.namespace} --replicas={wanted}"]}


def _scale_kube(config, plan):
    kube, w = _workload(config, plan)
    return {"replicas_from": plan["replicas_from"], "replicas": kube.set_replicas(w, plan["replicas_to"])}


def _scale_compose_plan(config, target, entry, params):
    section = config.get("docker") or {}
    step = int(params.get("step") or section.get("scale_step") or 1)
    maximum = int(entry.get("max_replicas") or section.get("max_replicas") or 10)
    plan = _docker(config).compose_scale_plan(entry.get("project") or "", entry.get("service") or entry["name"], step, maximum,
                                              approved=bool(params.get("approved")))
    return {"backend": "compose", **plan}


def _scale_compose(config, plan):
    return _docker(config).compose_scale(plan)


SCALE_UP = {"kubernetes": Remedy(_scale_kube_plan, _scale_kube), "compose": Remedy(_scale_compose_plan, _scale_compose)}


# -- rollback --------------------------------------------------------------------------

def _rollback_kube_plan(config, target, entry, params):
    kube = _kube(config)
    w = kube.resolve(entry["name"], entry.get("namespace"))
    plan = kube.rollback_plan(w)
    return {"backend": "kubernetes", "kind": w.kind, "name": w.name, "namespace": w.namespace, **plan,
            "commands": [f"kubectl rollout undo {w.kind.lower()}/{w.name} -n {w.namespace} --to-revision={plan['to_revision']}"]}


def _rollback_kube(config, plan):
    kube, w = _workload(config, plan)
    return kube.rollback(w, plan)


def _rollback_webhook_plan(config, target, entry, params):
    section = config.get("deploy_api") or {}
    if not section.get("url"):
        raise BackendError("rollback: deploy_api.url is not configured")
    return {"backend": "webhook", "service": entry["name"], "url": section["url"],
            "commands": [f"POST {section['url']} {{\"action\": \"rollback\", \"service\": {entry['name']!r}}}"]}


def _rollback_webhook(config, plan):
    section = config.get("deploy_api") or {}
    headers = {"Authorization": f"Bearer {section['token']}"} if section.get("token") else {}
    try:
        resp = requests.post(plan["url"], json={"action": "rollback", "service": plan["service"]}, headers=headers,
                             timeout=float(section.get("timeout") or 30))
    except requests.RequestException as exc:
        raise BackendError(f"deploy API: {type(exc).__name__}") from exc
    if resp.status_code >= 300:
        raise BackendError(f"deploy API: HTTP {resp.status_code}")
    body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
    return {"from_version": body.get("from_version"), "to_version": body.get("to_version"), "status": resp.status_code}


ROLLBACK = {"kubernetes": Remedy(_rollback_kube_plan, _rollback_kube), "webhook": Remedy(_rollback_webhook_plan, _rollback_webhook)}


# -- cleanup_disk, cancel_query, clear_cache (their own backends, not routed) ------------

def cleanup_rules(config: dict[str, Any], target: str) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    section = config.get("cleanup") or {}
    per_target = (section.get("targets") or {}).get(target)
    rules = per_target if isinstance(per_target, list) else section.get("paths") or []
    return rules, tuple(section.get("protected") or PROTECTED)


def _cleanup_plan(config, target, entry, params):
    rules, protected = cleanup_rules(config, target)
    return {"backend": "filesystem", **cleanup_plan(rules, protected)}


def _cleanup(config, plan):
    return apply_cleanup(plan)


def _cancel_plan(config, target, entry, params):
    from backends.postgres import Postgres
    sessions = Postgres.from_config(config, target).candidates()
    return {"backend": "postgres", "instance": target, "sessions": sessions,
            "commands": [f"SELECT {s['command']}({s['pid']})" for s in sessions]}


def _cancel(config, plan):
    from backends.postgres import Postgres
    return {"signalled": Postgres.from_config(config, plan["instance"]).cancel(plan["sessions"])}


def _clear_plan(config, target, entry, params):
    from backends.redis_cache import RedisCache
    cache = RedisCache.from_config(config, target)
    counts = cache.count()
    return {"backend": "redis", "instance": target, "keys": counts,
            "commands": [f"SCAN MATCH {p}* + UNLINK ({n} keys)" for p, n in counts.items()]}


def _clear(config, plan):
    from backends.redis_cache import RedisCache
    return {"removed": RedisCache.from_config(config, plan["instance"]).clear()}


LOCAL = {
    "cleanup_disk": Remedy(_cleanup_plan, _cleanup),
    "cancel_query": Remedy(_cancel_plan, _cancel),
    "clear_cache": Remedy(_clear_plan, _clear),
}
ROUTED = {"restart": RESTART, "scale_up": SCALE_UP, "rollback": ROLLBACK}


def remedy_for(action: str, config: dict[str, Any], target: str) -> tuple[Remedy, dict[str, Any]]:
    """The remedy of ``action`` for ``target`` on its configured backend, and the target's entry."""
    if action in LOCAL:
        return LOCAL[action], {"name": target}
    backend, entry = route(config, target)
    if action == "rollback" and (config.get("deploy_api") or {}).get("url") and backend != "kubernetes":
        backend = "webhook"
    table = ROUTED[action]
    if backend not in table:
        raise BackendError(f"{action} is not supported on backend {backend} (supported: {', '.join(table)})")
    return table[backend], entry
