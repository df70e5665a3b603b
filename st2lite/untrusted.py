"""Which rule parameters carry trigger text into an Orquesta workflow's inputs.

Orquesta evaluates every workflow input value as a Jinja or YAQL expression
(``WorkflowSpec.render_input``), on st2 as in st2lite. A rule that passes trigger text
(an alert's labels, a webhook body) to a workflow therefore lets whoever sent the trigger
write expressions; on st2 those can read the datastore (``st2kv``). A workflow should
take identifiers and load the data in an action. This module finds the rule parameters
that break that rule, for ``aegis validate`` to warn about:

    >>> schema = {"properties": {"id": {"type": "string", "pattern": "^inc-[0-9a-f]{16}$"},
    ...                          "labels": {"type": "object"}}}
    >>> untrusted_inputs({"incident_id": "{{ trigger.id }}", "labels": "{{ trigger.labels }}"}, schema, {})
    [('labels', 'trigger.labels')]

A trigger field is safe when its payload schema makes it a number or a boolean, an
``enum`` of values without delimiters, or a string whose ``pattern`` is anchored at both
ends and can match neither ``{`` nor ``<`` (so no ``{{``, ``{%`` or ``<%``). The workflow
parameter's own schema counts the same way: st2 validates parameters before the workflow
starts, so a restrictive ``pattern`` there refuses the value instead of evaluating it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes

try:  # Python 3.11+
    import re._constants as sre_constants
    import re._parser as sre_parse
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

__all__ = ["inert_pattern", "inert_schema", "trigger_references", "untrusted_inputs"]

_DELIMITER_CHARS = (ord("{"), ord("<"))
_SAFE_CATEGORIES = {sre_constants.CATEGORY_DIGIT, sre_constants.CATEGORY_SPACE, sre_constants.CATEGORY_WORD}
_ENV = jinja2.Environment()  # parsing only  # noqa: S701


def _can_match_delimiter(items: Any) -> bool:
    """Whether a parsed regex (sub)pattern can consume ``{`` or ``<``; True when unsure."""
    c = sre_constants
    for op, arg in items:
        if op is c.LITERAL:
            if arg in _DELIMITER_CHARS:
                return True
        elif op is c.IN:
            for item_op, item_arg in arg:
                if item_op is c.NEGATE:
                    return True
                if item_op is c.LITERAL and item_arg in _DELIMITER_CHARS:
                    return True
                if item_op is c.RANGE and any(item_arg[0] <= ch <= item_arg[1] for ch in _DELIMITER_CHARS):
                    return True
                if item_op is c.CATEGORY and item_arg not in _SAFE_CATEGORIES:
                    return True
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT)):
            if _can_match_delimiter(arg[2]):
                return True
        elif op is c.SUBPATTERN:
            if _can_match_delimiter(arg[-1]):
                return True
        elif op is c.BRANCH:
            if any(_can_match_delimiter(branch) for branch in arg[1]):
                return True
        elif op in (c.AT, c.GROUPREF, c.ASSERT, c.ASSERT_NOT):
            continue  # zero width, or a repeat of what was already matched
        else:
            return True  # ANY, NOT_LITERAL, CATEGORY, conditionals...: assume the worst
    return False


def inert_pattern(pattern: Any) -> bool:
    """True when every string ``pattern`` accepts (jsonschema: ``re.search``) is free of ``{`` and ``<``.

    >>> inert_pattern("^inc-[0-9a-f]{16}$"), inert_pattern("^inc-.*$"), inert_pattern("[a-z]+")
    (True, False, False)
    """
    if not isinstance(pattern, str):
        return False
    try:
        parsed = list(sre_parse.parse(pattern))
    except Exception:  # an invalid regex constrains nothing we can rely on
        return False
    c = sre_constants
    anchored = (
        len(parsed) >= 2
        and parsed[0] in ((c.AT, c.AT_BEGINNING), (c.AT, c.AT_BEGINNING_STRING))
        and parsed[-1] in ((c.AT, c.AT_END), (c.AT, c.AT_END_STRING))
    )
    return anchored and not _can_match_delimiter(parsed)


def inert_schema(schema: Any) -> bool:
    """True when a value valid against ``schema`` cannot hold an expression delimiter."""
    if not isinstance(schema, Mapping):
        return False
    if "enum" in schema:
        return all(not isinstance(v, str) or ("{" not in v and "<" not in v) for v in schema["enum"] or [])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return all(inert_schema(sub) for sub in schema[key] or [{}])
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if kinds and all(k in ("boolean", "integer", "number", "null") for k in kinds):
        return True
    return kinds == ["string"] and inert_pattern(schema.get("pattern"))


def _chain(node: nodes.Node) -> tuple[list[str], nodes.Node] | None:
    """``trigger.a['b']`` -> (['a', 'b'], Name) when the chain is rooted at ``trigger``."""
    path: list[str] = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            path.insert(0, node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, (str, int)):
            path.insert(0, str(node.arg.value))
        else:
            path = []  # a computed key: the whole object below is reachable
        node = node.node
    if isinstance(node, nodes.Name) and node.name == "trigger":
        return path, node
    return None


def trigger_references(template: str) -> list[tuple[str, ...]]:
    """The trigger payload fields a Jinja template reads (``()`` for the whole payload).

    >>> trigger_references("{{ trigger.labels.pod }}-{{ trigger['body'] | tojson }}")
    [('labels', 'pod'), ('body',)]
    """
    try:
        tree = _ENV.parse(template)
    except jinja2.TemplateSyntaxError:
        return [()]  # unreadable: assume it reads everything
    found: list[tuple[str, ...]] = []

    def walk(node: nodes.Node) -> None:
        chain = _chain(node) if isinstance(node, (nodes.Getattr, nodes.Getitem, nodes.Name)) else None
        if chain is None:
            for child in node.iter_child_nodes():
                walk(child)
            return
        found.append(tuple(chain[0]))
        while isinstance(node, (nodes.Getattr, nodes.Getitem)):  # computed keys read more
            if isinstance(node, nodes.Getitem):
                walk(node.arg)
            node = node.node

    walk(tree)
    return found


def _field_schema(schema: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(schema, Mapping):
            return None
        props = schema.get("properties") or {}
        if name in props:
            schema = props[name]
        elif isinstance(schema.get("additionalProperties"), Mapping):
            schema = schema["additionalProperties"]
        else:
            return None
    return schema


def _templates(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _templates(item)
    elif isinstance(value, list):
        for item in value:
            yield from _templates(item)


def untrusted_inputs(
    parameters: Mapping[str, Any],
    payload_schema: Mapping[str, Any] | None,
    action_parameters: Mapping[str, Any],
) -> list[tuple[str, str]]:
    """``(parameter, trigger.field)`` pairs through which trigger text reaches a workflow input.

    ``parameters`` are a rule's action parameters, ``payload_schema`` the trigger type's,
    ``action_parameters`` the workflow action's parameter definitions.
    """
    found: list[tuple[str, str]] = []
    for name, value in parameters.items():
        if inert_schema(action_parameters.get(name)):
            continue
        for template in _templates(value):
            for path in trigger_references(template):
                if not inert_schema(_field_schema(payload_schema or {}, path)):
                    pair = (name, ".".join(("trigger", *path)))
                    if pair not in found:
                        found.append(pair)
    return found


def rule_warnings(pack: Any) -> list[Any]:
    """One :class:`~st2lite.loader.Problem` per rule parameter feeding trigger text to a workflow.

    Only actions of ``pack`` itself are judged (their runner and parameters are known here).
    """
    from .loader import Problem

    warnings = []
    for rule in pack.rules:
        action = pack.actions.get(rule.action_ref)
        if action is None or action.runner_type != "orquesta":
            continue
        payload_schema = (pack.trigger_types.get(rule.trigger_type) or {}).get("payload_schema")
        for name, source in untrusted_inputs(rule.action_parameters, payload_schema, action.parameters):
            warnings.append(Problem(
                pack.relative(rule.file), f"action.parameters.{name}",
                f"feeds workflow {rule.action_ref} from {source}, which the trigger's payload_schema does not hold to "
                "an identifier (orquesta evaluates workflow inputs as expressions: whoever sends the trigger could "
                "run code); pass an id (a field with an anchored pattern free of '{' and '<') and load the data in an action",
            ))  # fmt: skip
    return warnings
