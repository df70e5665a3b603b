"""ChatOps action aliases on the runtime: match a command, run the action, say what happened.

What st2's ``POST /aliasexecution/match_and_execute`` (st2api aliasexecution.py) and the
chatops pack's result formatting do, for the aliases of the loaded packs:

    from st2lite.aliases import AliasExecutor
    executor = AliasExecutor(runtime)                    # an st2lite.engine.Runtime
    executor.match("aegis mode monitor")                 # -> alias ref, format, parameters
    reply = executor.execute("aegis mode monitor maintenance window", user="alice", channel="#ops")
    reply["ack"]      # 'Setting Aegis mode to monitor...'            (ack.format)
    reply["result"]   # 'Aegis mode is now *monitor* (was ..., ...)'  (result.format)

The command line (``aegis alias match|execute "<command>"``) is :func:`main`.

Parameters are extracted by :mod:`st2lite.pack_env.pack_runtime.aliases` (st2's parser),
``immutable_parameters`` are rendered (st2kv and the action context available) and added
(a command may not override them), values are cast by the action's parameter types (an
``array`` from ``a,b,c``, as st2's alias execution does), and the execution's context
carries ``action_alias_ref``, ``user``, ``api_user`` (the chat user) and ``source_channel``.
``ack.format`` is rendered with ``actionalias`` and ``execution`` right after the execution
is scheduled; ``result.format`` with ``execution`` (and ``alias``) once it completed.
``enabled: false`` on either silences that message (None).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

import jinja2

from .loader import AliasMeta
from .pack_env.pack_runtime.aliases import (
    ActionAliasAmbiguityException,
    AliasFormat,
    InvalidAliasFormat,
    ParseException,
    extract_parameters,
    get_matching_alias,
    normalise_alias_format_string,
)
from .params import ParameterValidationError
from .templating import RenderError, build_context, get_jinja_environment, render_template

__all__ = ["AliasExecutionError", "AliasExecutor", "default_ack", "default_result", "main"]

#: st2's system user, who runs what the ChatOps bot asks for (``user`` in the context).
SYSTEM_USER = "stanley"
#: ``source_channel`` of commands from this CLI, as ``st2 action-alias execute`` sends it.
CLI_CHANNEL = "cli"


class AliasExecutionError(ValueError):
    """The command could not be turned into an execution; the message is st2's where it has one."""


def default_ack(execution: Mapping[str, Any]) -> str:
    """The acknowledgement when an alias has no ``ack.format``: one of hubot-stackstorm's
    START_MESSAGES (hubot picks one at random; a fixed one keeps output predictable). There is
    no web UI to append a link to (``append_url``); the ID is what ``aegis execution get`` takes."""
    return f"Got it! Remember {execution['id']} as your execution ID"


def _serialize(value: Any, indent: str = "") -> list[str]:
    lines: list[str] = []
    for key, item in value.items():
        if isinstance(item, Mapping) and item:
            lines.append(f"{indent}{key} :")
            lines.extend(_serialize(item, indent + "  "))
        elif isinstance(item, str) and "\n" in item.strip():
            lines.append(f"{indent}{key} :")
            lines.extend(f"{indent}  {line}" for line in item.strip().splitlines())
        else:
            text = item.strip() if isinstance(item, str) else json.dumps(item, default=str)
            lines.append(f"{indent}{key} : {text}")
    return lines


def default_result(execution: Mapping[str, Any]) -> str:
    """The result message when an alias has no ``result.format``, laid out as the chatops
    pack's default template: action, status, id, then the result's keys (for python-script
    only ``result``, ``stdout``, ``stderr``, ``exit_code``, and only when not empty)."""
    lines = [
        f"Action {execution['action']['ref']} completed.",
        f"status : {execution['status']}",
        f"execution: {execution['id']}",
    ]
    result = execution.get("result")
    if result:
        lines += ["", "result :", "--------"]
        if isinstance(result, Mapping):
            if execution["runner"]["name"] == "python-script":
                keys = ("result", "stdout", "stderr", "exit_code", "error")
                result = {k: result[k] for k in keys if result.get(k) not in (None, "", {}, [])}
            lines.extend(_serialize(result))
        else:
            lines.append(str(result))
    return "\n".join(lines)


class AliasExecutor:
    """Matches commands against the aliases of ``runtime``'s packs and runs them.

    ``runtime`` is an :class:`st2lite.engine.Runtime` (``packs``, ``actions``, ``store``,
    ``records``, ``execute``, ``wait``, ``cast_cli_parameters``).
    """

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self._jinja = get_jinja_environment()

    # -- matching ----------------------------------------------------------------------

    @property
    def aliases(self) -> list[AliasMeta]:
        return [alias for pack_rt in self.runtime.packs.values() for alias in pack_rt.pack.aliases]

    def formats(self) -> list[dict[str, Any]]:
        """Every enabled alias's formats, as ``aegis alias list`` shows them."""
        listed = []
        for alias in self.aliases:
            if alias.meta.get("enabled", True) is False:
                continue
            for fmt in alias.formats:
                display, representations, _multiple = normalise_alias_format_string(fmt)
                listed.append({"alias": alias.ref, "action_ref": alias.action_ref,
                               "format": display or representations[0], "description": alias.meta.get("description", "")})
        return listed

    def _match(self, command: str) -> AliasFormat:
        try:
            return get_matching_alias(command, self.aliases)
        except (ActionAliasAmbiguityException, InvalidAliasFormat) as exc:
            message = str(exc)
            if isinstance(exc, ActionAliasAmbiguityException) and not getattr(exc, "matches", None):
                known = "\n".join(f"  {f['format']}" for f in self.formats()) or "  (no aliases are loaded)"
                message += f"; the commands are:\n{known}"
            raise AliasExecutionError(message) from exc

    def match(self, command: str) -> dict[str, Any]:
        """Which alias and format ``command`` selects, and the parameters it gives
        (``st2 action-alias match``); :class:`AliasExecutionError` when none or several do."""
        found = self._match(command)
        return {
            "alias": found.alias.ref,
            "action_ref": found.alias.action_ref,
            "display": found.display,
            "representation": found.representation,
            "match_multiple": found.match_multiple,
            "parameters": self._extract(found, command),
        }

    @staticmethod
    def _extract(found: AliasFormat, command: str) -> list[dict[str, Any]] | dict[str, Any]:
        try:
            return extract_parameters(found.representation, command, match_multiple=found.match_multiple)
        except ParseException as exc:
            raise AliasExecutionError(str(exc)) from exc

    # -- execution ---------------------------------------------------------------------

    def _immutable_parameters(self, alias: AliasMeta, context: dict[str, Any]) -> dict[str, Any]:
        immutable = alias.meta.get("immutable_parameters") or {}
        if not immutable:
            return {}
        # As st2: st2kv (system, and user-scoped for the context's user) and the context keys.
        render_context = {
            **build_context(self.runtime.store, action_context=context, user=context["user"]),
            **context,
        }
        try:
            return render_template(dict(immutable), render_context)
        except (jinja2.TemplateError, RenderError) as exc:
            raise AliasExecutionError(
                f"alias {alias.ref}: cannot render immutable_parameters: {exc}"
            ) from exc

    def _cast(self, action_ref: str, params: dict[str, Any]) -> dict[str, Any]:
        action = self.runtime.actions.get(action_ref)
        if action is None:
            raise AliasExecutionError(f'Action with ref "{action_ref}" not found')
        params = dict(params)
        for name, value in params.items():
            # st2's alias execution casts an array from "a, b, c" (CAST_OVERRIDES), not from JSON.
            if (action.parameters.get(name) or {}).get("type") == "array" and isinstance(value, str):
                params[name] = [item.strip() for item in value.split(",")]
        try:
            return self.runtime.cast_cli_parameters(action_ref, params)
        except ParameterValidationError as exc:
            raise AliasExecutionError(str(exc)) from exc

    def _render(self, template: str, context: dict[str, Any], field: str) -> str:
        try:
            return self._jinja.from_string(template).render(context)
        except jinja2.UndefinedError as exc:
            # st2's wording, so a broken format shows up in the chat instead of failing the command.
            return f'Cannot render "format" in field "{field}" for alias. {exc}'
        except jinja2.TemplateError as exc:
            return f'Cannot render "format" in field "{field}" for alias. {type(exc).__name__}: {exc}'

    def _execution_view(self, ex_id: str) -> dict[str, Any]:
        """The execution as st2's API shows it (``action.ref``, ``runner.name``, ...), which is
        what alias formats written for st2 refer to."""
        record = self.runtime.records.get_execution(ex_id)
        action = self.runtime.actions.get(record["action"])
        action_view = {"ref": record["action"]}
        if action is not None:
            action_view.update(name=action.name, pack=action.pack, runner_type=action.runner_type,
                               parameters=action.parameters)  # fmt: skip
        return {
            **record,
            "action": action_view,
            "runner": {"name": record.get("runner")},
            "parameters": record.get("parameters") or {},
            "result": record.get("result") if record.get("result") is not None else {},
            "context": record.get("context") or {},
        }

    @staticmethod
    def _alias_view(alias: AliasMeta) -> dict[str, Any]:
        return {
            **alias.meta,
            "ref": alias.ref,
            "name": alias.name,
            "pack": alias.pack,
            "enabled": alias.enabled,
        }

    def execute(
        self,
        command: str,
        user: str = SYSTEM_USER,
        channel: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        requester: str = SYSTEM_USER,
    ) -> dict[str, Any]:
        """Match ``command``, start its execution(s) and render the messages.

        ``user`` is the chat user (``api_user`` in the context); ``channel`` the
        ``source_channel`` (``cli`` when None); ``requester`` the st2 user who asked (the
        bridge's API user; ``user`` in the context, as st2's aliasexecution controller sets it). With ``wait`` (the default) the call blocks
        until the execution completes and renders ``result``; otherwise ``result`` is None.

        Returns ``{"alias", "format", "execution_id", "parameters", "ack", "status",
        "result", "executions"}``; a ``match_multiple`` format starts one execution per match,
        and ``executions`` lists each (the top-level keys are the first one's).
        """
        found = self._match(command)
        alias: AliasMeta = found.alias
        extracted = self._extract(found, command)
        param_sets = extracted if isinstance(extracted, list) else [extracted]
        context = {
            "action_alias_ref": alias.ref,
            "api_user": user,
            "user": requester,
            "source_channel": channel or CLI_CHANNEL,
        }
        immutable = self._immutable_parameters(alias, context)
        prepared = []
        for params in param_sets:
            overridden = sorted(set(immutable) & set(params))
            if overridden:
                raise AliasExecutionError(f"Immutable arguments cannot be overriden: {','.join(overridden)}")
            prepared.append(self._cast(alias.action_ref, {**params, **immutable}))

        ack_spec = alias.meta.get("ack") or {}
        replies = []
        for params in prepared:
            try:
                ex_id = self.runtime.execute(alias.action_ref, params, context=context)
            except (ParameterValidationError, RenderError) as exc:
                raise AliasExecutionError(str(exc)) from exc
            execution = self._execution_view(ex_id)
            ack = None
            if ack_spec.get("enabled", True) is not False:
                ack = (
                    self._render(
                        ack_spec["format"],
                        {"actionalias": self._alias_view(alias), "execution": execution},
                        "ack",
                    )
                    if "format" in ack_spec
                    else default_ack(execution)
                )
            replies.append({"execution_id": ex_id, "parameters": params, "ack": ack, "status": execution["status"],
                            "result": None})  # fmt: skip
        if wait:
            for reply in replies:
                self.runtime.wait(reply["execution_id"], timeout=timeout)
                reply["status"] = self.runtime.records.get_execution(reply["execution_id"])["status"]
                reply["result"] = self.render_result(alias, reply["execution_id"])
        return {"alias": alias.ref, "format": found.representation, **replies[0], "executions": replies}

    def render_result(self, alias: AliasMeta, ex_id: str) -> str | None:
        """The result message of a completed execution of ``alias`` (the chatops pack's
        ``format_execution_result``): ``result.format``, or the default template; None
        when the alias disables its result."""
        result_spec = alias.meta.get("result") or {}
        if result_spec.get("enabled", True) is False:
            return None
        execution = self._execution_view(ex_id)
        if "format" not in result_spec:
            return default_result(execution)
        return self._render(result_spec["format"], {"execution": execution, "alias": self._alias_view(alias)}, "result")

    def alias(self, ref_or_name: str) -> AliasMeta | None:
        """A loaded alias by ref (``pack.name``) or bare name."""
        return next((a for a in self.aliases if ref_or_name in (a.ref, a.name)), None)

    def helpstrings(self, filter: str | None = None, pack: str | None = None) -> list[dict[str, str]]:  # noqa: A002 - st2's name
        """Every display string of the enabled aliases (st2's ``generate_helpstring_result``):
        ``{"pack", "display", "description"}``, ``filter`` a case-insensitive regex on display."""
        out = []
        for alias in self.aliases:
            if not alias.enabled or (pack and pack != alias.pack):
                continue
            for format_ in alias.meta.get("formats") or []:
                display, _, _ = normalise_alias_format_string(format_)
                if display and re.search(filter or "", display, flags=re.IGNORECASE):
                    out.append({"pack": alias.pack, "display": display, "description": alias.meta.get("description", "")})
        return out

    def suggest(self, command: str, limit: int = 3) -> list[str]:
        """The display strings closest to ``command`` (for a reply to a command nothing matched)."""
        words = command.lower().split()
        scored = []
        for help_ in self.helpstrings():
            display = help_["display"]
            literal = [w for w in display.lower().split() if not w.startswith(("<", "[", "{"))]
            score = difflib.SequenceMatcher(None, " ".join(words[: len(literal)]), " ".join(literal)).ratio()
            scored.append((score, display))
        scored.sort(key=lambda pair: -pair[0])
        return [display for score, display in scored[:limit] if score > 0.4]


def main(argv: list[str], runtime_factory: Callable[[], Any]) -> int:
    """``aegis alias match|execute <command...>``: 0 on success, 1 when the execution did not
    succeed, 2 when the command matched no alias (or several) or its parameters are invalid.

    ``runtime_factory`` builds the :class:`~st2lite.engine.Runtime` (it is stopped afterwards).
    """
    parser = argparse.ArgumentParser(
        prog="aegis alias", description="ChatOps action aliases (st2 action-alias)"
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    match_p = sub.add_parser("match", help="which alias a command selects, and its parameters")
    match_p.add_argument("command", nargs="+", help="the command text (words are joined with spaces)")
    match_p.add_argument("--json", action="store_true", help="print the match as JSON")
    exec_p = sub.add_parser("execute", help="run a command as the ChatOps bot would, print ack then result")
    exec_p.add_argument("command", nargs="+", help="the command text (words are joined with spaces)")
    exec_p.add_argument("-u", "--user", default=SYSTEM_USER, help="the chat user (api_user)")
    exec_p.add_argument("--channel", default=CLI_CHANNEL, help="source_channel of the execution")
    exec_p.add_argument("--timeout", type=float, default=None, help="seconds to wait for the result")
    exec_p.add_argument("--json", action="store_true", help="print the reply as JSON")
    list_p = sub.add_parser("list", help="every command the aliases accept")
    list_p.add_argument("--json", action="store_true", help="print the list as JSON")
    args = parser.parse_args(argv)
    if args.verb == "list":
        runtime = runtime_factory()
        try:
            formats = AliasExecutor(runtime).formats()
        finally:
            runtime.stop()
        if args.json:
            print(json.dumps(formats, indent=2))
        else:
            for fmt in formats:
                print(f"{fmt['format']:<40} {fmt['alias']} -> {fmt['action_ref']}")
        return 0
    command = " ".join(args.command)
    runtime = runtime_factory()
    try:
        executor = AliasExecutor(runtime)
        try:
            if args.verb == "match":
                found = executor.match(command)
                if args.json:
                    print(json.dumps(found, indent=2))
                else:
                    print(f"alias:      {found['alias']} (action {found['action_ref']})")
                    print(f"format:     {found['display']}")
                    if found["representation"] != found["display"]:
                        print(f"matched:    {found['representation']}")
                    print(f"parameters: {json.dumps(found['parameters'])}")
                return 0
            reply = executor.execute(command, user=args.user, channel=args.channel, timeout=args.timeout)
        except AliasExecutionError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 2
        except TimeoutError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
    finally:
        runtime.stop()
    if args.json:
        print(json.dumps(reply, indent=2, default=str))
    else:
        for one in reply["executions"]:
            if one["ack"] is not None:
                print(one["ack"])
            if one["result"] is not None:
                print(one["result"])
    return 0 if all(one["status"] == "succeeded" for one in reply["executions"]) else 1
