"""Kubernetes through the official client: rollout restart, scale, rollout undo, history, pod logs.

    kube = Kube.from_config(config["kubernetes"])
    workload = kube.resolve("checkout-7d9f-abcde", "shop")   # pod, deployment or statefulset name
    kube.restart(workload)           # kubectl rollout restart: stamps restartedAt on the pod template
    kube.scale(workload, +1, maximum=10)
    kube.rollback(workload)          # kubectl rollout undo: the previous ReplicaSet's template
    kube.history(workload)           # deploys, newest first, from ReplicaSet revisions

Config ``kubernetes``: ``host`` (API server URL; empty: kubeconfig, then in-cluster),
``token`` (bearer, secret), ``verify_ssl`` (true), ``ca_cert``, ``namespace`` (``default``),
``timeout`` (seconds per request). A target's ``namespace`` in ``targets`` wins.

A target may name a pod: its owner (ReplicaSet → Deployment, or StatefulSet) is what gets
restarted, as an SRE would (deleting one pod of a leaking deployment just moves the leak).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.rest import ApiException

from backends import BackendError

REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@dataclass(frozen=True)
class Workload:
    kind: str        # Deployment | StatefulSet
    name: str
    namespace: str

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name} -n {self.namespace}"


def _images(template: Any) -> str:
    return ",".join(c.image for c in (template.spec.containers or []) if c.image)


class Kube:
    def __init__(self, api_client: client.ApiClient, namespace: str = "default", timeout: float = 10) -> None:
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace, self.timeout = namespace, timeout

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> Kube:
        if section.get("host"):
            conf = client.Configuration()
            conf.host = section["host"].rstrip("/")
            if section.get("token"):
                conf.api_key = {"authorization": "Bearer " + section["token"]}
            conf.verify_ssl = bool(section.get("verify_ssl", True))
            if section.get("ca_cert"):
                conf.ssl_ca_cert = section["ca_cert"]
            api = client.ApiClient(conf)
        else:
            try:
                api = kube_config.new_client_from_config(config_file=section.get("kubeconfig") or None)
            except Exception:  # noqa: BLE001 (no kubeconfig: running inside the cluster)
                kube_config.load_incluster_config()
                api = client.ApiClient()
        return cls(api, section.get("namespace") or "default", float(section.get("timeout") or 10))

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            raise BackendError(f"kubernetes: {fn.__name__}: {exc.status} {exc.reason}") from exc

    def _get(self, fn: Any, *args: Any) -> Any | None:
        try:
            return fn(*args, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise BackendError(f"kubernetes: {fn.__name__}: {exc.status} {exc.reason}") from exc

    def resolve(self, name: str, namespace: str | None = None) -> Workload:
        """The Deployment or StatefulSet called ``name``, or the one owning pod ``name``."""
        ns = namespace or self.namespace
        if self._get(self.apps.read_namespaced_deployment, name, ns) is not None:
            return Workload("Deployment", name, ns)
        if self._get(self.apps.read_namespaced_stateful_set, name, ns) is not None:
            return Workload("StatefulSet", name, ns)
        pod = self._get(self.core.read_namespaced_pod, name, ns)
        if pod is None:
            raise BackendError(f"kubernetes: no deployment, statefulset or pod {name!r} in namespace {ns!r}")
        for ref in pod.metadata.owner_references or []:
            if ref.kind == "StatefulSet":
                return Workload("StatefulSet", ref.name, ns)
            if ref.kind == "ReplicaSet":
                rs = self._call(self.apps.read_namespaced_replica_set, ref.name, ns)
                for owner in rs.metadata.owner_references or []:
                    if owner.kind == "Deployment":
                        return Workload("Deployment", owner.name, ns)
        raise BackendError(f"kubernetes: pod {name!r} is not owned by a deployment or statefulset; not acting on a bare pod")

    def _read(self, w: Workload) -> Any:
        fn = self.apps.read_namespaced_deployment if w.kind == "Deployment" else self.apps.read_namespaced_stateful_set
        return self._call(fn, w.name, w.namespace)

    def restart(self, w: Workload, now: datetime | None = None) -> dict[str, Any]:
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        fn = self.apps.patch_namespaced_deployment if w.kind == "Deployment" else self.apps.patch_namespaced_stateful_set
        obj = self._call(fn, w.name, w.namespace, body)
        return {"workload": str(w), "restartedAt": stamp, "generation": obj.metadata.generation}

    def replicas(self, w: Workload) -> int:
        fn = self.apps.read_namespaced_deployment_scale if w.kind == "Deployment" else self.apps.read_namespaced_stateful_set_scale
        return int(self._call(fn, w.name, w.namespace).spec.replicas or 0)

    def set_replicas(self, w: Workload, replicas: int) -> int:
        fn = self.apps.patch_namespaced_deployment_scale if w.kind == "Deployment" else self.apps.patch_namespaced_stateful_set_scale
        return int(self._call(fn, w.name, w.namespace, {"spec": {"replicas": replicas}}).spec.replicas or 0)

    def _replica_sets(self, w: Workload) -> tuple[Any, list[Any]]:
        """The deployment and its ReplicaSets (owned by it), oldest revision first."""
        dep = self._read(w)
        selector = ",".join(f"{k}={v}" for k, v in sorted((dep.spec.selector.match_labels or {}).items()))
        sets = self._call(self.apps.list_namespaced_replica_set, w.namespace, label_selector=selector).items
        owned = [rs for rs in sets if any(o.uid == dep.metadata.uid for o in rs.metadata.owner_references or [])]
        return dep, sorted(owned, key=lambda rs: int((rs.metadata.annotations or {}).get(REVISION, 0)))

    def rollback_plan(self, w: Workload) -> dict[str, Any]:
        if w.kind != "Deployment":
            raise BackendError(f"kubernetes: rollout undo of a {w.kind} is not supported by Aegis; escalate")
        dep, sets = self._replica_sets(w)
        current = int((dep.metadata.annotations or {}).get(REVISION, 0))
        older = [rs for rs in sets if int((rs.metadata.annotations or {}).get(REVISION, 0)) < current]
        if not older:
            raise BackendError(f"kubernetes: {w} has no revision before {current} to roll back to")
        previous = older[-1]
        return {"workload": str(w), "from_revision": current, "to_revision": int(previous.metadata.annotations[REVISION]),
                "from_version": _images(dep.spec.template), "to_version": _images(previous.spec.template),
                "replica_set": previous.metadata.name}

    def rollback(self, w: Workload, plan: dict[str, Any]) -> dict[str, Any]:
        """What ``kubectl rollout undo`` does: the previous ReplicaSet's pod template, hash label removed."""
        rs = self._call(self.apps.read_namespaced_replica_set, plan["replica_set"], w.namespace)
        template = self.apps.api_client.sanitize_for_serialization(rs.spec.template)
        template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
        patch = [{"op": "replace", "path": "/spec/template", "value": template}]
        obj = self._call(self.apps.patch_namespaced_deployment, w.name, w.namespace, patch)
        return {**plan, "generation": obj.metadata.generation}

    def history(self, w: Workload) -> list[dict[str, Any]]:
        """Deploys of a Deployment from its ReplicaSet revisions, newest first."""
        if w.kind != "Deployment":
            return []
        _dep, sets = self._replica_sets(w)
        deploys, previous = [], None
        for rs in sets:
            version = _images(rs.spec.template)
            at = rs.metadata.creation_timestamp
            entry = {"service": w.name, "version": version, "at": at.strftime("%Y-%m-%dT%H:%M:%SZ") if at else "",
                     "source": f"kubernetes revision {(rs.metadata.annotations or {}).get(REVISION, '?')}"}
            if previous:
                entry["previous_version"] = previous
            deploys.append(entry)
            previous = version
        return deploys[::-1]

    def pod_logs(self, w: Workload, tail_lines: int, limit_bytes: int) -> list[str]:
        dep = self._read(w)
        selector = ",".join(f"{k}={v}" for k, v in sorted((dep.spec.selector.match_labels or {}).items()))
        lines: list[str] = []
        for pod in self._call(self.core.list_namespaced_pod, w.namespace, label_selector=selector).items:
            text = self._call(self.core.read_namespaced_pod_log, pod.metadata.name, w.namespace,
                              tail_lines=tail_lines, limit_bytes=limit_bytes)
            lines.extend(f"{pod.metadata.name}: {line}" for line in (text or "").splitlines())
        return lines[-tail_lines:]
