"""The endpoints: st2's ``/v1`` API subset (port 9101) and its auth service (port 9100).

Each handler is ``handler(request, **path_params) -> Response`` and talks to the runtime
only through its public parts: ``records`` (history), ``store`` (datastore), the loaded
``actions``/``rules``/``packs``, ``execute()``, ``control`` and ``inquiries``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from typing import Any

from .. import __version__
from ..aliases import AliasExecutionError
from ..chatops import ChatOps
from ..control import ControlError
from ..pack_env.pack_runtime.aliases import ActionAliasAmbiguityException
from ..params import ParameterValidationError
from ..templating import RenderError
from . import views
from .auth import AuthStore
from .http import ApiError, Request, Response, Router

ID = r"(?P<id>[^/]+)"


def _bool(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def _paging(request: Request, default: int = 50) -> tuple[int | None, int]:
    try:
        limit = int(request.query.get("limit", default))
        offset = int(request.query.get("offset", 0))
    except ValueError as exc:
        raise ApiError(400, f"Invalid limit or offset: {exc}") from exc
    if offset < 0:
        raise ApiError(400, "Offset must not be negative.")
    return (None if limit < 0 else limit), offset


def _page(items: list[Any], request: Request, default: int = 50) -> Response:
    """A list page with st2's paging headers (X-Total-Count, X-Limit)."""
    limit, offset = _paging(request, default)
    page = items[offset:] if limit is None else items[offset : offset + limit]
    headers = {"X-Total-Count": str(len(items))}
    if limit is not None:
        headers["X-Limit"] = str(limit)
    return Response(200, page, headers)


def _control(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except ControlError as exc:
        raise ApiError(exc.status, str(exc)) from exc


def _st2_alias_error(exc: AliasExecutionError) -> str:
    """st2's own words for a command no alias (or several) matched, without the list of
    commands the CLI adds."""
    cause = exc.__cause__
    return str(cause) if isinstance(cause, ActionAliasAmbiguityException) else str(exc)


class Api:
    """The API over one runtime and one auth store."""

    def __init__(self, runtime: Any, auth: AuthStore, chatops: ChatOps | None = None) -> None:
        self.runtime = runtime
        self.auth = auth
        self.chatops = chatops

    # -- authentication ------------------------------------------------------------------

    def authenticate(self, request: Request) -> str:
        """The user of the request's token or API key; 401 as st2 words it otherwise."""
        token = request.headers.get("X-Auth-Token") or request.query.get("x-auth-token")
        api_key = request.headers.get("St2-Api-Key") or request.query.get("st2-api-key")
        if token:
            user = self.auth.user_for_token(token)
            if user is None:
                raise ApiError(401, "Unauthorized - Token is invalid or has expired.")
            return user
        if api_key:
            user = self.auth.user_for_api_key(api_key)
            if user is None:
                raise ApiError(401, "Unauthorized - ApiKey is invalid or disabled.")
            return user
        raise ApiError(401, "Unauthorized - One of Token or API key required.")

    def create_token(self, request: Request) -> Response:
        header = request.headers.get("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        try:
            user, sep, password = base64.b64decode(encoded).decode().partition(":") if scheme.lower() == "basic" else ("", "", "")
        except (binascii.Error, UnicodeDecodeError):
            user, sep, password = "", "", ""
        if not sep or not self.auth.authenticate(user, password):
            raise ApiError(401, "Invalid or missing credentials")
        body = request.json() or {}
        try:
            token = self.auth.issue_token(user, ttl=body.get("ttl"))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc
        return Response(201, token)

    def validate_token(self, request: Request) -> Response:
        token = (request.json() or {}).get("token") or ""
        return Response(200, {"valid": self.auth.user_for_token(token) is not None})

    # -- executions ----------------------------------------------------------------------

    def _runner_parameters(self, runner: str) -> dict[str, Any]:
        from ..engine import RUNNER_PARAMETERS

        return RUNNER_PARAMETERS.get(runner, {})

    def _execution(self, record: dict[str, Any], children: list[str] | None = None) -> dict[str, Any]:
        if children is None:
            children = [c["id"] for c in self.runtime.records.query_executions(parent=record["id"], limit=None, newest_first=False)[0]]
        return views.execution_view(record, self.runtime.actions.get(record["action"]),
                                    self._runner_parameters(record["runner"]), children)  # fmt: skip

    def _record(self, ex_id: str) -> dict[str, Any]:
        record = self.runtime.records.get_execution(ex_id)
        if record is None:
            raise ApiError(404, f'Resource with a primary key "{ex_id}" not found')
        return record

    def list_executions(self, request: Request) -> Response:
        q = request.query
        limit, offset = _paging(request)
        parent = q.get("parent")
        rows, total = self.runtime.records.query_executions(
            action=q.get("action"), status=q.get("status"), runner=q.get("runner"),
            parent=None if parent in (None, "null") else parent, top_level_only=parent == "null", user=q.get("user"),
            trigger_instance_id=q.get("trigger_instance"), timestamp_gt=q.get("timestamp_gt"),
            timestamp_lt=q.get("timestamp_lt"), limit=limit, offset=offset, newest_first=not _bool(q.get("sort_asc")),
        )  # fmt: skip
        docs = [views.select_attributes(self._execution(r), q.get("include_attributes"), q.get("exclude_attributes")) for r in rows]
        headers = {"X-Total-Count": str(total)}
        if limit is not None:
            headers["X-Limit"] = str(limit)
        return Response(200, docs, headers)

    def get_execution(self, request: Request, id: str) -> Response:  # noqa: A002 - st2's parameter name
        doc = self._execution(self._record(id))
        return Response(200, views.select_attributes(doc, request.query.get("include_attributes"), request.query.get("exclude_attributes")))

    def execution_children(self, request: Request, id: str) -> Response:  # noqa: A002
        self._record(id)
        depth = int(request.query.get("depth", -1))
        out: list[dict[str, Any]] = []

        def walk(parent: str, level: int) -> None:  # depth first, as the CLI indents them
            for child in self.runtime.records.query_executions(parent=parent, limit=None, newest_first=False)[0]:
                out.append(self._execution(child))
                if depth < 0 or level < depth:
                    walk(child["id"], level + 1)

        walk(id, 1)
        return Response(200, out)

    def execution_result(self, request: Request, id: str) -> Response:  # noqa: A002
        return Response(200, self._record(id)["result"] or {})

    def create_execution(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not body.get("action"):
            raise ApiError(400, "'action' is a required property")
        params = body.get("parameters") or {}
        if not isinstance(params, dict):
            raise ApiError(400, "'parameters' must be an object")
        if body.get("delay"):
            raise ApiError(501, "st2lite does not implement delayed executions (POST /v1/executions with delay)")
        context = {**(body.get("context") or {}), "user": request.user}
        return Response(201, self._execution(self._record(self._start(body["action"], params, context)), []))

    def _start(self, action: str, params: dict[str, Any], context: dict[str, Any]) -> str:
        try:
            return self.runtime.execute(action, params, context=context)
        except (ParameterValidationError, RenderError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc

    def rerun_execution(self, request: Request, id: str) -> Response:  # noqa: A002
        record = self._record(id)
        body = request.json() or {}
        if body.get("tasks"):
            raise ApiError(501, "st2lite does not implement re-running workflow tasks (re_run with tasks)")
        if body.get("delay"):
            raise ApiError(501, "st2lite does not implement delayed executions (re_run with delay)")
        params = {**(record["parameters"] or {}), **(body.get("parameters") or {})}
        context = {"user": request.user, "re-run": {"ref": id}}
        return Response(201, self._execution(self._record(self._start(record["action"], params, context)), []))

    def update_execution(self, request: Request, id: str) -> Response:  # noqa: A002
        status = (request.json() or {}).get("status")
        operations = {"pausing": self.runtime.control.pause, "resuming": self.runtime.control.resume}
        if status not in operations:
            raise ApiError(400, f'Unsupported status "{status}": st2lite changes an execution to "pausing" or "resuming" only.')
        _control(operations[status], id)
        return Response(200, self._execution(self._record(id)))

    def cancel_execution(self, request: Request, id: str) -> Response:  # noqa: A002
        try:
            self.runtime.control.cancel(id)
        except ControlError as exc:
            return Response(exc.status, {"faultstring": str(exc)})
        return Response(200, self._execution(self._record(id)))

    # -- actions, runners, rules, packs, trigger instances -------------------------------

    def _action(self, ref_or_id: str) -> Any:
        for action in self.runtime.actions.values():
            if ref_or_id in (action.ref, views.stable_id("action", action.ref)):
                return action
        raise ApiError(404, f'Resource with a reference or id "{ref_or_id}" not found')

    def list_actions(self, request: Request) -> Response:
        q = request.query
        actions = sorted(self.runtime.actions.values(), key=lambda a: a.ref)
        actions = [a for a in actions if (not q.get("pack") or a.pack == q["pack"]) and (not q.get("name") or a.name == q["name"])]
        return _page([views.select_attributes(views.action_view(a), q.get("include_attributes"), q.get("exclude_attributes"))
                      for a in actions], request)  # fmt: skip

    def get_action(self, request: Request, id: str) -> Response:  # noqa: A002
        return Response(200, views.action_view(self._action(id)))

    def action_parameters(self, request: Request, id: str) -> Response:  # noqa: A002
        return Response(200, {"parameters": self.runtime.parameter_schema(self._action(id))})

    def list_runners(self, request: Request) -> Response:
        from ..engine import RUNNER_PARAMETERS

        name = request.query.get("name")
        runners = [views.runner_view(n, p) for n, p in RUNNER_PARAMETERS.items() if not name or n == name]
        return _page(runners, request)

    def get_runner(self, request: Request, id: str) -> Response:  # noqa: A002
        from ..engine import RUNNER_PARAMETERS

        for name, params in RUNNER_PARAMETERS.items():
            if id in (name, views.stable_id("runner", name)):
                return Response(200, views.runner_view(name, params))
        raise ApiError(404, f'Resource with a name or id "{id}" not found')

    def _rule(self, ref_or_id: str) -> Any:
        for rule in self.runtime.rules:
            if ref_or_id in (rule.ref, views.stable_id("rule", rule.ref)):
                return rule
        raise ApiError(404, f'Resource with a reference or id "{ref_or_id}" not found')

    def list_rules(self, request: Request) -> Response:
        q = request.query
        rules = sorted(self.runtime.rules, key=lambda r: r.ref)
        if q.get("pack"):
            rules = [r for r in rules if r.pack == q["pack"]]
        if q.get("name"):
            rules = [r for r in rules if r.name == q["name"]]
        if q.get("enabled") is not None:
            rules = [r for r in rules if r.enabled == _bool(q["enabled"])]
        if q.get("action"):
            rules = [r for r in rules if r.action_ref == q["action"]]
        if q.get("trigger"):
            rules = [r for r in rules if r.trigger_type == q["trigger"]]
        return _page([views.select_attributes(views.rule_view(r), q.get("include_attributes"), q.get("exclude_attributes"))
                      for r in rules], request)  # fmt: skip

    def get_rule(self, request: Request, id: str) -> Response:  # noqa: A002
        return Response(200, views.rule_view(self._rule(id)))

    def update_rule(self, request: Request, id: str) -> Response:  # noqa: A002
        rule = self._rule(id)
        body = request.json() or {}
        current = views.rule_view(rule)
        changed = {k for k in ("criteria", "action", "trigger") if k in body and body[k] != current[k]}
        if changed:
            raise ApiError(501, f"st2lite changes a rule's 'enabled' only (edit the pack's rule file for {', '.join(sorted(changed))})")
        if "enabled" in body:
            # In memory, until the next start reads the rule file again (st2 keeps it in its DB).
            # The rules engine matches the rule's metadata: change both.
            rule.enabled = rule.meta["enabled"] = bool(body["enabled"])
        return Response(200, views.rule_view(rule))

    def _pack(self, ref_or_id: str) -> Any:
        for pack_rt in self.runtime.packs.values():
            if ref_or_id in (pack_rt.pack.ref, views.stable_id("pack", pack_rt.pack.ref)):
                return pack_rt.pack
        raise ApiError(404, f'Resource with a reference or id "{ref_or_id}" not found')

    def list_packs(self, request: Request) -> Response:
        packs = [views.pack_view(p.pack) for p in sorted(self.runtime.packs.values(), key=lambda p: p.pack.ref)]
        ref = request.query.get("ref") or request.query.get("name")
        return _page([p for p in packs if not ref or ref in (p["ref"], p["name"])], request)

    def get_pack(self, request: Request, id: str) -> Response:  # noqa: A002
        return Response(200, views.pack_view(self._pack(id)))

    def list_trigger_instances(self, request: Request) -> Response:
        rows = self.runtime.records.list_trigger_instances(trigger=request.query.get("trigger"), limit=100_000)
        return _page([views.trigger_instance_view(t) for t in rows], request)

    def get_trigger_instance(self, request: Request, id: str) -> Response:  # noqa: A002
        ti = self.runtime.records.get_trigger_instance(id)
        if ti is None:
            raise ApiError(404, f'Resource with a primary key "{id}" not found')
        return Response(200, views.trigger_instance_view(ti))

    # -- datastore -----------------------------------------------------------------------

    @staticmethod
    def _scope(value: str | None, default: str = "system") -> str:
        value = value or default
        scopes = {"system": "system", "st2kv.system": "system", "user": "user", "st2kv.user": "user", "all": "all", "st2kv.all": "all"}
        if value not in scopes:
            raise ApiError(400, f'Invalid scope "{value}". Valid scopes are: system, user, all.')
        return scopes[value]

    def _key_name(self, name: str, scope: str, user: str) -> str:
        return f"{user}:{name}" if scope == "user" else name  # st2 keeps user keys as "<user>:<name>"

    def list_keys(self, request: Request) -> Response:
        q = request.query
        scope = self._scope(q.get("scope"), "all")
        user = q.get("user") or request.user
        decrypt = _bool(q.get("decrypt"))
        docs = []
        for s in ("system", "user") if scope == "all" else (scope,):
            prefix = self._key_name(q.get("prefix") or "", s, user) if (s == "user" or q.get("prefix")) else None
            for pair in self.runtime.store.list(prefix=prefix, scope=s):
                if decrypt and pair.secret:
                    pair = dataclasses.replace(pair, value=self.runtime.store.decrypt(pair.value))
                docs.append(views.key_view(pair, decrypt, user if s == "user" else None))
        return _page(docs, request, default=-1)

    def get_key(self, request: Request, id: str) -> Response:  # noqa: A002
        q = request.query
        scope = self._scope(q.get("scope"))
        if scope == "all":
            scope = "system"
        user = q.get("user") or request.user
        decrypt = _bool(q.get("decrypt"))
        pair = self.runtime.store.get_pair(self._key_name(id, scope, user), scope=scope, decrypt=decrypt)
        if pair is None:
            raise ApiError(404, f'Resource with a name "{id}" not found')
        return Response(200, views.key_view(pair, decrypt, user if scope == "user" else None))

    def set_key(self, request: Request, id: str) -> Response:  # noqa: A002
        body = request.json()
        if not isinstance(body, dict) or "value" not in body:
            raise ApiError(400, "'value' is a required property")
        scope = self._scope(body.get("scope"))
        if scope == "all":
            raise ApiError(400, 'Scope "all" is only valid for reading keys.')
        user = body.get("user") or request.user
        try:
            pair = self.runtime.store.set(self._key_name(id, scope, user), body["value"], ttl=body.get("ttl"), scope=scope,
                                          secret=bool(body.get("secret")))  # fmt: skip
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc
        return Response(200, views.key_view(pair, decrypted=False, user=user if scope == "user" else None))

    def delete_key(self, request: Request, id: str) -> Response:  # noqa: A002
        scope = self._scope(request.query.get("scope"))
        user = request.query.get("user") or request.user
        if not self.runtime.store.delete(self._key_name(id, scope, user), scope="system" if scope == "all" else scope):
            raise ApiError(404, f'Resource with a name "{id}" not found')
        return Response(204)

    # -- inquiries -----------------------------------------------------------------------

    def list_inquiries(self, request: Request) -> Response:
        limit, _offset = _paging(request)
        rows = self.runtime.inquiries.list(limit=100_000)
        return _page([views.inquiry_view(r) for r in rows], request) if limit != 0 else Response(200, [])

    def get_inquiry(self, request: Request, id: str) -> Response:  # noqa: A002
        return Response(200, views.inquiry_view(_control(self.runtime.inquiries.get, id)))

    def respond_inquiry(self, request: Request, id: str) -> Response:  # noqa: A002
        body = request.json()
        if not isinstance(body, dict) or "response" not in body:
            raise ApiError(400, "'response' is a required property")
        return Response(200, _control(self.runtime.inquiries.respond, id, body["response"], request.user))

    # -- API keys --------------------------------------------------------------------------

    def list_api_keys(self, request: Request) -> Response:
        show = _bool(request.query.get("show_secrets"))
        keys = [k if show else {**k, "key_hash": "********"} for k in self.auth.list_api_keys()]
        return _page(keys, request, default=-1)

    def get_api_key(self, request: Request, id: str) -> Response:  # noqa: A002
        key = self.auth.get_api_key(id)
        if key is None:
            raise ApiError(404, f'ApiKey with key_hash or id "{id}" not found.')
        return Response(200, key)

    def create_api_key(self, request: Request) -> Response:
        body = request.json() or {}
        return Response(201, self.auth.create_api_key(body.get("user") or request.user, body.get("metadata")))

    def update_api_key(self, request: Request, id: str) -> Response:  # noqa: A002
        key = self.auth.get_api_key(id)
        if key is None:
            raise ApiError(404, f'ApiKey with key_hash or id "{id}" not found.')
        body = request.json() or {}
        if "enabled" in body:
            self.auth.set_api_key_enabled(key["id"], bool(body["enabled"]))
        return Response(200, self.auth.get_api_key(key["id"]))

    def delete_api_key(self, request: Request, id: str) -> Response:  # noqa: A002
        key = self.auth.get_api_key(id)
        if key is None or not self.auth.delete_api_key(key["id"]):
            raise ApiError(404, f'ApiKey with key_hash or id "{id}" not found.')
        return Response(204)

    # -- action aliases and ChatOps (what err-stackstorm and hubot-stackstorm call) ----------

    def _chatops(self) -> ChatOps:
        if self.chatops is None:
            raise ApiError(501, "st2lite serves ChatOps only with its stream (start_api)")
        return self.chatops

    def list_aliases(self, request: Request) -> Response:
        q = request.query
        aliases = sorted(self._chatops().executor.aliases, key=lambda a: (a.pack, a.name))
        aliases = [a for a in aliases if (not q.get("pack") or a.pack == q["pack"]) and (not q.get("name") or a.name == q["name"])]
        return _page([views.alias_view(a) for a in aliases], request)

    def get_alias(self, request: Request, id: str) -> Response:  # noqa: A002
        for alias in self._chatops().executor.aliases:
            if id in (alias.ref, views.stable_id("actionalias", alias.ref)):
                return Response(200, views.alias_view(alias))
        raise ApiError(404, f'Resource with a reference or id "{id}" not found')

    def alias_help(self, request: Request) -> Response:
        """st2's ``generate_helpstring_result``: ``{"available", "helpstrings"}`` paged by
        ``limit`` (default 100) and ``offset``; ``available`` counts every match."""
        q = request.query
        try:
            limit, offset = int(q.get("limit") or 100), int(q.get("offset") or 0)
        except ValueError as exc:
            raise ApiError(400, f"limit or offset argument is not an integer: {exc}") from exc
        try:
            helps = self._chatops().executor.helpstrings(q.get("filter"), q.get("pack"))
        except re.error as exc:
            raise ApiError(400, f"Invalid filter: {exc}") from exc
        page = helps[offset:] if limit <= 0 else helps[offset : offset + limit]
        return Response(200, {"available": len(helps), "helpstrings": page})

    def alias_match(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            raise ApiError(400, "'command' is a required property")
        executor = self._chatops().executor
        try:
            found = executor.match(body["command"])
        except AliasExecutionError as exc:
            raise ApiError(400, _st2_alias_error(exc)) from exc
        alias = executor.alias(found["alias"])
        return Response(200, {"actionalias": views.alias_view(alias), "display": found["display"],
                              "representation": found["representation"]})  # fmt: skip

    def alias_match_and_execute(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("command"), str):
            raise ApiError(400, "'command' is a required property")
        chatops = self._chatops()
        try:
            started = chatops.match_and_execute(
                body["command"], user=body.get("user"), source_channel=body.get("source_channel"),
                notification_route=body.get("notification_route"), notification_channel=body.get("notification_channel"),
                source_context=body.get("source_context"), requester=request.user or "stanley",
            )  # fmt: skip
        except AliasExecutionError as exc:
            raise ApiError(400, _st2_alias_error(exc)) from exc
        results = []
        for one in started:
            alias = chatops.executor.alias(one["alias"])
            result: dict[str, Any] = {"execution": self._execution(self._record(one["execution_id"]), []),
                                      "actionalias": views.alias_view(alias)}  # fmt: skip
            # As st2: an ack message only when the alias has an ack with a format.
            if "format" in (alias.meta.get("ack") or {}) and one["ack"] is not None:
                result["message"] = one["ack"]
            results.append(result)
        return Response(201, {"results": results})

    def root(self, request: Request) -> Response:
        return Response(200, {"version": __version__, "docs_url": "https://docs.stackstorm.com/"})

    def whoami(self, request: Request) -> Response:
        return Response(200, {"username": request.user, "authentication": {"method": "token_or_api_key"},
                              "rbac": {"enabled": False, "roles": [], "is_admin": True}})  # fmt: skip

    # -- routing -----------------------------------------------------------------------------

    def api_router(self) -> Router:
        r = Router(prefixes=("/api/v1", "/v1"))
        routes = [
            ("GET", "/executions", self.list_executions), ("POST", "/executions", self.create_execution),
            ("GET", f"/executions/{ID}", self.get_execution), ("PUT", f"/executions/{ID}", self.update_execution),
            ("DELETE", f"/executions/{ID}", self.cancel_execution),
            ("GET", f"/executions/{ID}/children", self.execution_children),
            ("GET", f"/executions/{ID}/result", self.execution_result),
            ("POST", f"/executions/{ID}/re_run", self.rerun_execution),
            ("GET", "/actions", self.list_actions), ("GET", f"/actions/views/parameters/{ID}", self.action_parameters),
            ("GET", f"/actions/{ID}", self.get_action),
            ("GET", "/runnertypes", self.list_runners), ("GET", f"/runnertypes/{ID}", self.get_runner),
            ("GET", "/rules", self.list_rules), ("GET", f"/rules/{ID}", self.get_rule), ("PUT", f"/rules/{ID}", self.update_rule),
            ("GET", "/packs", self.list_packs), ("GET", f"/packs/{ID}", self.get_pack),
            ("GET", "/triggerinstances", self.list_trigger_instances), ("GET", f"/triggerinstances/{ID}", self.get_trigger_instance),
            ("GET", "/keys", self.list_keys), ("GET", f"/keys/{ID}", self.get_key), ("PUT", f"/keys/{ID}", self.set_key),
            ("DELETE", f"/keys/{ID}", self.delete_key),
            ("GET", "/inquiries", self.list_inquiries), ("GET", f"/inquiries/{ID}", self.get_inquiry),
            ("PUT", f"/inquiries/{ID}", self.respond_inquiry),
            ("GET", "/apikeys", self.list_api_keys), ("POST", "/apikeys", self.create_api_key),
            ("GET", f"/apikeys/{ID}", self.get_api_key), ("PUT", f"/apikeys/{ID}", self.update_api_key),
            ("DELETE", f"/apikeys/{ID}", self.delete_api_key),
            ("GET", "/user", self.whoami), ("GET", "/", self.root),
            ("GET", "/actionalias", self.list_aliases), ("GET", "/actionalias/help", self.alias_help),
            ("POST", "/actionalias/match", self.alias_match), ("GET", f"/actionalias/{ID}", self.get_alias),
            ("POST", "/aliasexecution/match_and_execute", self.alias_match_and_execute),
        ]  # fmt: skip
        for method, pattern, handler in routes:
            r.add(method, pattern, handler)
        return r

    def auth_router(self) -> Router:
        r = Router(prefixes=("/auth/v1", "/v1", ""))
        r.add("POST", "/tokens", self.create_token)
        r.add("POST", "/tokens/validate", self.validate_token)
        return r
