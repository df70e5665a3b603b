"""Local stand-ins for services out of reach, speaking their wire formats; they record requests.

    with KubernetesStandIn() as kube:         # the REST paths the official client calls
        kube.add_deployment("shop", "checkout", image="checkout:2", revisions={1: "checkout:1"})
        ... Kube.from_config({"host": kube.url, "token": "t"}) ...
        kube.requests                          # [(method, path, content_type, body), ...]

``DockerStandIn`` (Engine API v1.41: container inspect/restart), ``SlackStandIn``
(``chat.postMessage``, ``chat.update``, an incoming webhook, checked as Slack checks them),
``PagerDutyStandIn`` (Events API v2
``/v2/enqueue``) work the same way. Each is a real HTTP server on a free loopback port.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
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


BLOCK_TYPES = {"section", "context", "actions", "header", "divider", "image", "input", "rich_text", "file", "video"}


def block_kit_problems(blocks: Any) -> list[str]:
    """What Slack's Block Kit validation would refuse in ``blocks`` (the limits of
    https://api.slack.com/reference/block-kit/blocks for the block types Aegis sends)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems: list[str] = []
    if len(blocks) > 50:
        problems.append(f"{len(blocks)} blocks, at most 50")
    block_ids: set[str] = set()
    action_ids: set[str] = set()

    def text_obj(obj: Any, where: str, limit: int, plain_only: bool = False) -> None:
        kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if not isinstance(obj, dict) or obj.get("type") not in kinds:
            problems.append(f"{where}: a text object of type {'/'.join(kinds)} expected")
        elif not isinstance(obj.get("text"), str) or not 1 <= len(obj["text"]) <= limit:
            problems.append(f"{where}: text must be 1..{limit} characters")

    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"{where}: unknown block type")
            continue
        if "block_id" in block:
            bid = block["block_id"]
            if not isinstance(bid, str) or not 1 <= len(bid) <= 255 or bid in block_ids:
                problems.append(f"{where}: block_id must be a unique string of 1..255 characters")
            block_ids.add(str(bid))
        kind = block["type"]
        if kind == "header":
            text_obj(block.get("text"), where + ".text", 150, plain_only=True)
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"{where}: a section needs text or fields")
            if "text" in block:
                text_obj(block["text"], where + ".text", 3000)
            for j, field in enumerate(block.get("fields") or []):
                text_obj(field, f"{where}.fields[{j}]", 2000)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                problems.append(f"{where}: a context needs 1..10 elements")
            for j, element in enumerate(elements or []):
                if isinstance(element, dict) and element.get("type") == "image":
                    continue
                text_obj(element, f"{where}.elements[{j}]", 3000)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                problems.append(f"{where}: actions need 1..25 elements")
            for j, element in enumerate(elements or []):
                at = f"{where}.elements[{j}]"
                if not isinstance(element, dict) or element.get("type") != "button":
                    problems.append(f"{at}: only buttons are checked here")
                    continue
                text_obj(element.get("text"), at + ".text", 75, plain_only=True)
                aid = element.get("action_id")
                if not isinstance(aid, str) or not 1 <= len(aid) <= 255 or aid in action_ids:
                    problems.append(f"{at}: action_id must be a unique string of 1..255 characters")
                action_ids.add(str(aid))
                if "value" in element and (not isinstance(element["value"], str) or len(element["value"]) > 2000):
                    problems.append(f"{at}: value must be a string of at most 2000 characters")
                if element.get("style") not in (None, "primary", "danger"):
                    problems.append(f"{at}: style must be primary or danger")
    return problems


class SlackStandIn(_StandIn):
    """Slack's Web API methods ``chat.postMessage`` and ``chat.update``, an incoming webhook at
    ``/webhook`` and an interaction ``response_url`` at ``/response_url``, checked as Slack
    checks them, so that a malformed call fails the test that made it:

    - Web API: the bot token as ``Authorization: Bearer`` (``not_authed`` / ``invalid_auth``),
      a JSON (or form) body, a channel that exists (name or id; ``channel_not_found``), text or
      blocks (``no_text``), blocks valid per :func:`block_kit_problems` (``invalid_blocks``).
      ``chat.postMessage`` answers the channel's *id* and a new ``ts``; ``chat.update`` needs
      the channel id and the ``ts`` of a message posted there (``message_not_found``).
    - webhook and response_url: a JSON object with text or blocks (HTTP 400 otherwise).

    ``messages[(channel_id, ts)]`` holds each message as it reads now; ``requests`` every call.
    """

    def __init__(self, token: str = "xoxb-test", channels: dict[str, str] | None = None) -> None:
        super().__init__()
        self.token = token
        self.channels = dict(channels or {"C0INCIDENTS": "incidents", "C0OPS": "ops"})  # id -> name
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._seq = 0

    def _channel_id(self, channel: Any) -> str | None:
        if not isinstance(channel, str):
            return None
        if channel in self.channels:
            return channel
        name = channel.lstrip("#")
        return next((cid for cid, cname in self.channels.items() if cname == name), None)

    @staticmethod
    def _args(req: dict[str, Any]) -> dict[str, Any] | None:
        """The method's arguments: a JSON object, or a form whose ``blocks`` is JSON text."""
        body = req["body"]
        if req["content_type"].startswith("application/json"):
            return body if isinstance(body, dict) else None
        if req["content_type"].startswith("application/x-www-form-urlencoded") and isinstance(body, str):
            args: dict[str, Any] = {k: v[0] for k, v in parse_qs(body).items()}
            if "blocks" in args:
                try:
                    args["blocks"] = json.loads(args["blocks"])
                except ValueError:
                    args["blocks"] = None
            return args
        return None

    def _content_problem(self, args: dict[str, Any]) -> str | None:
        if not args.get("text") and not args.get("blocks"):
            return "no_text"
        if "blocks" in args and block_kit_problems(args["blocks"]):
            return "invalid_blocks"
        return None

    def _refused(self, args: dict[str, Any]) -> tuple[int, Any] | None:
        """Slack's answer to a message it will not take (no text, invalid blocks), or None."""
        problem = self._content_problem(args)
        if problem is None:
            return None
        return 200, {"ok": False, "error": problem, "response_metadata": {"messages": block_kit_problems(args.get("blocks"))}}

    def _web_api(self, method: str, req: dict[str, Any]) -> tuple[int, Any]:
        auth = req["headers"].get("authorization")
        if not auth:
            return 200, {"ok": False, "error": "not_authed"}
        if auth != f"Bearer {self.token}":
            return 200, {"ok": False, "error": "invalid_auth"}
        args = self._args(req)
        if args is None:
            return 200, {"ok": False, "error": "invalid_arguments"}
        if method == "chat.postMessage":
            channel = self._channel_id(args.get("channel"))
            if channel is None:
                return 200, {"ok": False, "error": "channel_not_found"}
            refused = self._refused(args)
            if refused:
                return refused
            self._seq += 1
            ts = f"{int(time.time())}.{self._seq:06d}"
            message = {"type": "message", "text": args.get("text", ""), "blocks": args.get("blocks") or [], "ts": ts}
            self.messages[(channel, ts)] = message
            return 200, {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            channel = args.get("channel")
            if channel not in self.channels:  # chat.update takes the channel id postMessage answered
                return 200, {"ok": False, "error": "channel_not_found"}
            key = (channel, args.get("ts"))
            if key not in self.messages:
                return 200, {"ok": False, "error": "message_not_found"}
            refused = self._refused(args)
            if refused:
                return refused
            self.messages[key].update(text=args.get("text", ""), blocks=args.get("blocks") or [])
            return 200, {"ok": True, "channel": channel, "ts": args["ts"], "text": args.get("text", "")}
        return 200, {"ok": False, "error": "unknown_method"}

    def route(self, req: dict[str, Any]) -> tuple[int, Any]:
        if req["path"] in ("/webhook", "/response_url"):
            body = req["body"]
            if req["method"] != "POST" or not isinstance(body, dict):
                return 400, "invalid_payload"
            problem = self._content_problem(body)
            return (400, problem) if problem else (200, "ok")
        m = re.match(r"^/api/([A-Za-z.]+)$", req["path"])
        if m and req["method"] == "POST":
            return self._web_api(m.group(1), req)
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
