"""Local stand-ins for services out of reach, speaking their wire formats; they record requests.

    with KubernetesStandIn() as kube:         # the REST paths the official client calls
        kube.add_deployment("shop", "checkout", image="checkout:2", revisions={1: "checkout:1"})
        ... Kube.from_config({"host": kube.url, "token": "t"}) ...
        kube.requests                          # [(method, path, content_type, body), ...]

``DockerStandIn`` (Engine API v1.41: container inspect/restart), ``SlackStandIn``
(``chat.postMessage`` and an incoming webhook), ``PagerDutyStandIn`` (Events API v2
``/v2/enqueue``) work the same way. Each is a real HTTP server on a free loopback port.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _StandIn:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                ctype = self.headers.get("Content-Type", "")
                try:
                    body = json.loads(raw) if raw and "json" in ctype else raw.decode()
                except ValueError:
                    body = raw.decode(errors="replace")
                record = {"method": self.command, "path": parts.path, "query": parse_qs(parts.query),
                          "content_type": ctype, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                with standin.lock:
                    standin.requests.append(record)
                    status, payload = standin.route(record)
                data = b"" if payload is None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def route(self, req: dict[str, Any]) -> tuple[int, Any]:
        raise NotImplementedError

    def calls(self, method: str | None = None, path_re: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if (method is None or r["method"] == method) and re.search(path_re, r["path"])]

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge(base: dict, patch: dict) -> dict:
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v
    return base


def _status(code: int, reason: str, message: str) -> tuple[int, dict]:
    return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message, "code": code}


class KubernetesStandIn(_StandIn):
    """The API server paths the kubernetes client uses for deployments, statefulsets, pods, replicasets."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[tuple[str, str, str], dict] = {}  # (kind, namespace, name) -> object
        self.logs: dict[tuple[str, str], str] = {}

    @staticmethod
    def _template(app: str, image: str) -> dict:
        return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": app, "image": image}]}}

    def add_deployment(self, ns: str, name: str, image: str, replicas: int = 2, revisions: dict[int, str] | None = None) -> None:
        uid = str(uuid.uuid4())
        revisions = dict(revisions or {})
        current = max(revisions, default=0) + 1
        revisions[current] = image
        self.objects[("deployments", ns, name)] = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "uid": uid, "generation": 1,
                         "annotations": {"deployment.kubernetes.io/revision": str(current)}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": self._template(name, image)},
        }
        for rev, img in revisions.items():
            rs = f"{name}-{rev:05d}"
            tmpl = self._template(name, img)
            tmpl["metadata"]["labels"]["pod-template-hash"] = f"{rev:05d}"
            self.objects[("replicasets", ns, rs)] = {
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": rs, "namespace": ns, "labels": {"app": name},
                             "creationTimestamp": f"2024-05-01T0{rev % 10}:00:00Z",
                             "annotations": {"deployment.kubernetes.io/revision": str(rev)},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid}]},
                "spec": {"replicas": replicas if rev == current else 0, "selector": {"matchLabels": {"app": name}}, "template": tmpl},
            }
        pod = f"{name}-{current:05d}-abcde"
        self.objects[("pods", ns, pod)] = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": pod, "namespace": ns, "labels": {"app": name},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{name}-{current:05d}", "uid": "x"}]},
            "spec": {"containers": [{"name": name, "image": image}]},
        }

    def add_statefulset(self, ns: str, name: str, replicas: int = 3) -> None:
        self.objects[("statefulsets", ns, name)] = {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()), "generation": 1},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}}, "template": self._template(name, "db:1")},
        }

    def _list(self, kind: str, ns: str, query: dict) -> dict:
        selector = dict(pair.split("=", 1) for pair in (query.get("labelSelector", [""])[0].split(",")) if pair)
        items = [copy.deepcopy(o) for (k, n, _), o in sorted(self.objects.items())
                 if k == kind and n == ns and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in selector.items())]
        return {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items}

    def route(self, req: dict[str, Any]) -> tuple[int, Any]:
        m = re.match(r"^/(?:api/v1|apis/apps/v1)/namespaces/([^/]+)/([a-z]+)(?:/([^/]+))?(?:/(scale|log))?$", req["path"])
        if not m:
            return _status(404, "NotFound", f"no route {req['path']}")
        ns, kind, name, sub = m.groups()
        if name is None:
            return 200, self._list(kind, ns, req["query"])
        obj = self.objects.get((kind, ns, name))
        if obj is None:
            return _status(404, "NotFound", f'{kind} "{name}" not found')
        if sub == "log":
            return 200, self.logs.get((ns, name), "")
        if sub == "scale":
            if req["method"] == "PATCH":
                obj["spec"]["replicas"] = req["body"]["spec"]["replicas"]
            return 200, {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": name, "namespace": ns},
                         "spec": {"replicas": obj["spec"]["replicas"]}, "status": {"replicas": obj["spec"]["replicas"]}}
        if req["method"] == "PATCH":
            if isinstance(req["body"], list):  # application/json-patch+json
                for op in req["body"]:
                    assert op["op"] == "replace" and op["path"] == "/spec/template", op
                    obj["spec"]["template"] = op["value"]
                rev = int(obj["metadata"]["annotations"].get("deployment.kubernetes.io/revision", "0")) + 1
                obj["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(rev)
            else:
                _merge(obj, req["body"])
            obj["metadata"]["generation"] += 1
        return 200, obj


class DockerStandIn(_StandIn):
    """Engine API v1.41: container inspect, restart, list (label filters), create, start."""

    def __init__(self) -> None:
        super().__init__()
        self.containers: dict[str, dict] = {}

    def add_container(self, name: str, image: str = "app:1", labels: dict[str, str] | None = None, running: bool = True) -> str:
        cid = uuid.uuid4().hex * 2
        self.containers[cid] = {"Id": cid, "Name": "/" + name, "Config": {"Image": image, "Labels": dict(labels or {}),
                                                                         "Env": ["A=1"], "Cmd": ["serve"]},
                                "State": {"Status": "running" if running else "created", "Running": running,
                                          "StartedAt": "2024-05-01T10:00:00Z"}, "RestartCount": 0,
                                "NetworkSettings": {"Networks": {"shop_default": {}}}}
        return cid

    def _list(self, query: dict) -> list[dict]:
        wanted = json.loads(query.get("filters", ["{}"])[0]).get("label", [])
        out = []
        for c in self.containers.values():
            labels = c["Config"]["Labels"]
            if c["State"]["Running"] and all(labels.get(k) == v for k, _, v in (w.partition("=") for w in wanted)):
                out.append({"Id": c["Id"], "Names": [c["Name"]], "Labels": labels, "State": c["State"]["Status"]})
        return out

    def _find(self, ref: str) -> dict | None:
        return next((c for cid, c in self.containers.items() if cid.startswith(ref) or c["Name"] == "/" + ref), None)

    def route(self, req: dict[str, Any]) -> tuple[int, Any]:
        if req["path"] == "/v1.41/containers/json":
            return 200, self._list(req["query"])
        if req["path"] == "/v1.41/containers/create" and req["method"] == "POST":
            body = req["body"]
            cid = self.add_container(req["query"]["name"][0], body["Image"], body.get("Labels"), running=False)
            self.containers[cid]["Config"].update(Env=body.get("Env"), Cmd=body.get("Cmd"))
            self.containers[cid]["HostConfig"] = body.get("HostConfig")
            return 201, {"Id": cid, "Warnings": []}
        start = re.match(r"^/v1\.41/containers/([^/]+)/start$", req["path"])
        if start and req["method"] == "POST":
            c = self._find(start.group(1))
            if c is None:
                return 404, {"message": "No such container"}
            c["State"].update(Status="running", Running=True, StartedAt=_now())
            return 204, None
        m = re.match(r"^/v1\.41/containers/([^/]+)/(json|restart)$", req["path"])
        if not m:
            return 404, {"message": f"page not found: {req['path']}"}
        c = self._find(m.group(1))
        if c is None:
            return 404, {"message": f"No such container: {m.group(1)}"}
        if m.group(2) == "restart" and req["method"] == "POST":
            c["State"]["StartedAt"] = _now()
            c["RestartCount"] += 1
            return 204, None
        return 200, c


class SlackStandIn(_StandIn):
    """``chat.postMessage`` and ``chat.update`` (Web API, bearer token), an incoming webhook at
    ``/webhook`` and an interaction ``response_url`` at ``/response_url``."""

    def __init__(self, token: str = "xoxb-test") -> None:
        super().__init__()
        self.token = token

    def route(self, req: dict[str, Any]) -> tuple[int, Any]:
        if req["path"] == "/webhook":
            return 200, "ok"
        if req["path"] == "/api/chat.postMessage":
            if req["headers"].get("authorization") != f"Bearer {self.token}":
                return 200, {"ok": False, "error": "invalid_auth"}
            return 200, {"ok": True, "channel": req["body"].get("channel"), "ts": "1714557600.000100", "message": {}}
        if req["path"] == "/api/chat.update":
            if req["headers"].get("authorization") != f"Bearer {self.token}":
                return 200, {"ok": False, "error": "invalid_auth"}
            return 200, {"ok": True, "channel": req["body"].get("channel"), "ts": req["body"].get("ts"), "text": req["body"].get("text")}
        if req["path"] == "/response_url":
            return 200, "ok"
        return 404, {"ok": False, "error": "unknown_method"}


class PagerDutyStandIn(_StandIn):
    """Events API v2: ``POST /v2/enqueue`` answers 202 as PagerDuty does."""

    def route(self, req: dict[str, Any]) -> tuple[int, Any]:
        if req["path"] != "/v2/enqueue" or req["method"] != "POST":
            return 404, {"status": "error"}
        body = req["body"]
        if not isinstance(body, dict) or not body.get("routing_key") or body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
            return 400, {"status": "invalid event", "errors": ["bad event"]}
        return 202, {"status": "success", "message": "Event processed", "dedup_key": body.get("dedup_key")}
