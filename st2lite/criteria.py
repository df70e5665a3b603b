"""st2 rule criteria: operators, payload lookup, rule matching and backstop rules.

Mirrors st2common/st2common/operators.py, st2reactor/rules/filter.py (``RuleFilter``,
``SecondPassRuleFilter``) and st2reactor/rules/matcher.py (``RulesMatcher``).

    >>> rule = {
    ...     "name": "page", "pack": "aegis", "trigger": {"type": "aegis.alert"},
    ...     "criteria": {"trigger.labels.severity": {"type": "equals", "pattern": "critical"}},
    ...     "action": {"ref": "aegis.triage"},
    ... }
    >>> rule_matches(rule, {"labels": {"severity": "critical"}}, {}).matched
    True
    >>> result = rule_matches(rule, {"labels": {"severity": "info"}}, {})
    >>> result.matched, result.failed_criterion
    (False, 'trigger.labels.severity')

Criteria keys are paths into ``{"trigger": payload}``: dotted names, list indexes
(``trigger.alerts[0].labels``), quoted names (``trigger.headers['X-Token']`` or
``trigger."X-Token"``) and ``*`` wildcards; the first value found is used and a missing
path is None. A ``#tag`` suffix is stripped from a key so one rule can test the same key
twice (``trigger.summary#1``, ``trigger.summary#2``).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dateutil.parser

from st2lite.templating import ENV

__all__ = [
    "OPERATORS",
    "SEARCH",
    "MatchResult",
    "UnknownOperatorError",
    "UnrecognizedConditionError",
    "get_operator",
    "lookup_payload",
    "match_criteria",
    "rule_matches",
    "rule_ref",
    "select_rules",
]

TRIGGER_PAYLOAD_PREFIX = "trigger"
TRIGGER_ITEM_PAYLOAD_PREFIX = "item"
RULE_TYPE_STANDARD = "standard"
RULE_TYPE_BACKSTOP = "backstop"
SEARCH = "search"


class UnknownOperatorError(ValueError):
    """A criterion names an operator st2 does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Invalid operator: {name!r} (known: {', '.join(sorted(OPERATORS))})")
        self.name = name


class UnrecognizedConditionError(ValueError):
    """A ``search`` criterion has a condition other than any, all, all2any, any2any."""


# --------------------------------------------------------------------------------------
# Operators. Each takes (value, pattern); None patterns are false except where st2 says.
# --------------------------------------------------------------------------------------


def _strings(value: Any, pattern: Any) -> tuple[Any, Any]:
    # st2's ensure_operators_are_strings: only bytes are decoded; nothing else is coerced.
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(pattern, bytes):
        pattern = pattern.decode("utf-8")
    return value, pattern


def equals(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return value == pattern


def nequals(value: Any, pattern: Any) -> bool:
    value, pattern = _strings(value, pattern)
    return value != pattern


def iequals(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return value.lower() == pattern.lower()


def contains(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return pattern in value


def icontains(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return pattern.lower() in value.lower()


def ncontains(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return pattern not in value


def incontains(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return pattern.lower() not in value.lower()


def startswith(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return value.startswith(pattern)


def istartswith(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return value.lower().startswith(pattern.lower())


def endswith(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return value.endswith(pattern)


def iendswith(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return value.lower().endswith(pattern.lower())


def less_than(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    # Raw comparison: "5" < 10 raises TypeError and the criterion does not match (st2).
    return value < pattern


def greater_than(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    return value > pattern


def match_wildcard(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return fnmatch.fnmatch(value, pattern)


def match_regex(value: Any, pattern: Any) -> bool:
    # Deprecated in st2 in favour of regex/iregex: anchored at the start, DOTALL.
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return re.compile(pattern, re.DOTALL).match(value) is not None


def regex(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return re.compile(pattern).search(value) is not None


def iregex(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return re.compile(pattern, re.IGNORECASE).search(value) is not None


def _parse_utc(value: Any) -> dt.datetime:
    # st2common/util/date.parse: dateutil parse, naive means UTC, converted to UTC.
    parsed = dateutil.parser.parse(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _timediff(value: Any, period_seconds: Any, op: Callable[[Any, Any], bool]) -> bool:
    elapsed = (dt.datetime.now(dt.UTC) - _parse_utc(value)).total_seconds()
    return op(elapsed, period_seconds)


def timediff_lt(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    return _timediff(value, pattern, less_than)


def timediff_gt(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    return _timediff(value, pattern, greater_than)


def exists(value: Any, pattern: Any) -> bool:
    return value is not None


def nexists(value: Any, pattern: Any) -> bool:
    return value is None


def inside(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return value in pattern


def ninside(value: Any, pattern: Any) -> bool:
    if pattern is None:
        return False
    value, pattern = _strings(value, pattern)
    return value not in pattern


CheckFunction = Callable[[str, Mapping[str, Any], Mapping[str, Any]], bool]


def search(value: Any, pattern: Any, condition: Any, check: CheckFunction) -> bool:
    """Match a list of payload items against child criteria keyed ``item.<field>``.

    ``any``: some item matches every child criterion; ``all``: every item matches every
    child criterion; ``all2any``: every item matches at least one child criterion;
    ``any2any``: some item matches at least one child criterion. A dict value counts as a
    one-element list.
    """
    if isinstance(value, dict):
        value = [value]
    pattern = pattern or {}

    def item_results(item: Any):
        context = {TRIGGER_ITEM_PAYLOAD_PREFIX: item}
        # A generator: all()/any() stop at the first decisive child criterion, as st2's do.
        return (check(key, spec, context) for key, spec in pattern.items())

    if condition == "any":
        return any(all(item_results(item)) for item in value)
    if condition == "all":
        return all(all(item_results(item)) for item in value)
    if condition == "all2any":
        return all(any(item_results(item)) for item in value)
    if condition == "any2any":
        return any(any(item_results(item)) for item in value)
    raise UnrecognizedConditionError(
        f"The {condition!r} search condition is not recognized, only 'any', 'all', 'all2any'"
        " and 'any2any' are allowed"
    )


OPERATORS: dict[str, Callable[..., bool]] = {
    "matchwildcard": match_wildcard,
    "matchregex": match_regex,
    "regex": regex,
    "iregex": iregex,
    "eq": equals,
    "equals": equals,
    "neq": nequals,
    "nequals": nequals,
    "ieq": iequals,
    "iequals": iequals,
    "contains": contains,
    "icontains": icontains,
    "ncontains": ncontains,
    "incontains": incontains,
    "startswith": startswith,
    "istartswith": istartswith,
    "endswith": endswith,
    "iendswith": iendswith,
    "lt": less_than,
    "lessthan": less_than,
    "gt": greater_than,
    "greaterthan": greater_than,
    "td_lt": timediff_lt,
    "timediff_lt": timediff_lt,
    "td_gt": timediff_gt,
    "timediff_gt": timediff_gt,
    "exists": exists,
    "nexists": nexists,
    "in": inside,
    "inside": inside,
    "nin": ninside,
    "ninside": ninside,
    SEARCH: search,
}


def get_operator(name: str) -> Callable[..., bool]:
    """The operator function for ``name`` (case-insensitive, aliases included).

    >>> get_operator("EQ")("a", "a")
    True
    """
    if not isinstance(name, str) or name.lower() not in OPERATORS:
        raise UnknownOperatorError(str(name))
    return OPERATORS[name.lower()]


# --------------------------------------------------------------------------------------
# Payload lookup (st2 uses a jsonpath expression over {"trigger": payload})
# --------------------------------------------------------------------------------------

_MISSING = object()
_TOKEN = re.compile(
    r"""
      \.?\s*(?P<name>[A-Za-z_$@][\w$@-]*)          # .name
    | \.?\s*"(?P<dq>(?:[^"\\]|\\.)*)"             # ."quoted name"
    | \.?\s*'(?P<sq>(?:[^'\\]|\\.)*)'             # .'quoted name'
    | \.?\s*\[\s*(?P<index>-?\d+)\s*\]            # [0]
    | \.?\s*\[\s*"(?P<bdq>(?:[^"\\]|\\.)*)"\s*\]  # ["name"]
    | \.?\s*\[\s*'(?P<bsq>(?:[^'\\]|\\.)*)'\s*\]  # ['name']
    | \.?\s*(?P<star>\*|\[\s*\*\s*\])             # * or [*]
    | \.(?P<num>\d+)                              # .0 (a digit field: key "0" of a dict)
    """,
    re.VERBOSE,
)


def _parse_path(key: str) -> list[tuple[str, Any]]:
    steps: list[tuple[str, Any]] = []
    pos = 0
    key = key.strip()
    while pos < len(key):
        match = _TOKEN.match(key, pos)
        if not match or match.end() == pos:
            raise ValueError(f"invalid criteria key {key!r} at position {pos}")
        groups = match.groupdict()
        if groups["name"] is not None:
            steps.append(("field", groups["name"]))
        elif groups["num"] is not None:
            steps.append(("field", groups["num"]))
        elif groups["index"] is not None:
            steps.append(("index", int(groups["index"])))
        elif groups["star"] is not None:
            steps.append(("star", None))
        else:
            quoted = next(groups[g] for g in ("dq", "sq", "bdq", "bsq") if groups[g] is not None)
            steps.append(("field", re.sub(r"\\(.)", r"\1", quoted)))
        pos = match.end()
    return steps


def _find(data: Any, steps: list[tuple[str, Any]]) -> list[Any]:
    current = [data]
    for kind, arg in steps:
        found: list[Any] = []
        for node in current:
            if kind == "field":
                if isinstance(node, Mapping) and arg in node:
                    found.append(node[arg])
            elif kind == "index":
                if isinstance(node, list) and -len(node) <= arg < len(node):
                    found.append(node[arg])
            elif isinstance(node, Mapping):
                found.extend(node.values())
            elif isinstance(node, list):
                found.extend(node)
        current = found
    return current


def strip_key_tag(key: str) -> str:
    """``trigger.summary#2`` -> ``trigger.summary`` (the tag only makes the key unique)."""
    return key.split("#", 1)[0].strip()


def lookup_payload(key: str, context: Mapping[str, Any]) -> Any:
    """The first value at ``key`` (a criteria key) in ``context``; None when absent.

    >>> lookup_payload("trigger.alerts[1].name", {"trigger": {"alerts": [{"name": "a"}, {"name": "b"}]}})
    'b'
    """
    matches = _find(context, _parse_path(strip_key_tag(key)))
    return matches[0] if matches else None


# --------------------------------------------------------------------------------------
# Matching
# --------------------------------------------------------------------------------------


@dataclass
class MatchResult:
    """Outcome of matching criteria: the first failed criterion key and why, when any."""

    matched: bool
    failed_criterion: str | None = None
    reason: str = ""

    def __bool__(self) -> bool:
        return self.matched


# st2 appends ``| to_complex`` to the expression so the rendered pattern can be
# JSON-decoded back into a number, list or dict.
_MATCH_CRITERIA = re.compile(r"({{)\s*(.*)\s*(}})")


def render_pattern(pattern: Any, context: Mapping[str, Any]) -> Any:
    """Render a criteria pattern: strings through Jinja, typed via JSON when templated.

    >>> render_pattern("{{ trigger.limit }}", {"trigger": {"limit": 5}})
    5
    """
    if pattern is None or not isinstance(pattern, str):
        return pattern
    if _MATCH_CRITERIA.search(pattern):
        complex_pattern = _MATCH_CRITERIA.sub(r"\1\2 | to_complex\3", pattern)
        try:
            rendered = ENV.from_string(complex_pattern).render(**context)
            return json.loads(rendered)
        except (ValueError, TypeError):
            pass  # not JSON (text around the expression...): render it as plain text
    if "{{" not in pattern and "{%" not in pattern:
        return pattern
    return ENV.from_string(pattern).render(**context)


def _describe(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else repr(value)


def _check_criterion(
    key: str,
    spec: Any,
    lookup_context: Mapping[str, Any],
    render_context: Mapping[str, Any],
) -> MatchResult:
    """One criterion; never raises (st2 records a failure instead)."""
    if not isinstance(spec, Mapping) or "type" not in spec:
        return MatchResult(False, key, f"criterion {key!r} has no operator 'type'")
    op_name = spec["type"]
    condition = spec.get("condition")
    raw_pattern = spec.get("pattern")
    try:
        operator = get_operator(op_name)
    except UnknownOperatorError as exc:
        return MatchResult(False, key, str(exc))
    context = {**render_context, **lookup_context}
    try:
        pattern = render_pattern(raw_pattern, context)
    except Exception as exc:
        return MatchResult(False, key, f"failed to render pattern {raw_pattern!r} for key {key!r}: {exc}")
    try:
        value = lookup_payload(key, lookup_context)
    except Exception as exc:
        return MatchResult(False, key, f"failed to look up criteria key {key!r}: {exc}")
    try:
        if op_name.lower() == SEARCH:

            def check(child_key: str, child_spec: Mapping[str, Any], child_ctx: Mapping[str, Any]) -> bool:
                return _check_criterion(child_key, child_spec, child_ctx, render_context).matched

            matched = operator(value, pattern, condition, check)
        else:
            matched = operator(value, pattern)
    except Exception as exc:
        return MatchResult(
            False,
            key,
            f"error evaluating {key!r} {op_name} {_describe(pattern)} on {_describe(value)}:"
            f" {type(exc).__name__}: {exc}",
        )
    if matched:
        return MatchResult(True)
    shown = f" (condition {condition})" if op_name.lower() == SEARCH else ""
    return MatchResult(
        False,
        key,
        f"key: {key}, type: {op_name}{shown}, pattern: {_describe(pattern)}, payload value: {_describe(value)}",
    )


def match_criteria(
    criteria: Mapping[str, Any] | None, payload: Any, render_context: Mapping[str, Any]
) -> MatchResult:
    """AND of every criterion of a rule against a trigger payload.

    ``render_context`` is what patterns are rendered with (``build_context``: ``st2kv``,
    ...); ``trigger`` is always the payload. Never raises: an error is a non-match with
    the reason.
    """
    criteria = criteria or {}
    if criteria and not payload:
        return MatchResult(False, next(iter(criteria)), "the trigger payload is empty")
    lookup_context = {TRIGGER_PAYLOAD_PREFIX: payload}
    for key, spec in criteria.items():
        result = _check_criterion(key, spec, lookup_context, render_context)
        if not result.matched:
            return result
    return MatchResult(True)


def rule_ref(rule: Mapping[str, Any]) -> str:
    """``<pack>.<name>``; a rule without a pack is in ``default`` (st2)."""
    return f"{rule.get('pack') or 'default'}.{rule.get('name', '<unnamed>')}"


def rule_type(rule: Mapping[str, Any]) -> str:
    kind = rule.get("type") or {}
    if isinstance(kind, str):
        return kind
    return kind.get("ref") or RULE_TYPE_STANDARD


def rule_trigger_type(rule: Mapping[str, Any]) -> str | None:
    trigger = rule.get("trigger") or {}
    if isinstance(trigger, str):
        return trigger
    return trigger.get("type") or trigger.get("ref")


def rule_matches(rule: Mapping[str, Any], payload: Any, render_context: Mapping[str, Any]) -> MatchResult:
    """Whether one rule (parsed rule YAML) matches a payload; disabled rules never do."""
    if not rule.get("enabled", True):
        return MatchResult(False, None, f"rule {rule_ref(rule)} is disabled")
    return match_criteria(rule.get("criteria"), payload, render_context)


def select_rules(
    rules: list[Mapping[str, Any]],
    trigger_ref: str,
    payload: Any,
    render_context: Mapping[str, Any],
) -> list[tuple[Mapping[str, Any], MatchResult]]:
    """The rules to enforce for a trigger instance, in order (st2's ``RulesMatcher``).

    Standard rules of the trigger type are tried first; ``backstop`` rules only when no
    standard rule matched.
    """
    candidates = [r for r in rules if rule_trigger_type(r) == trigger_ref]
    first = [r for r in candidates if rule_type(r) != RULE_TYPE_BACKSTOP]
    second = [r for r in candidates if rule_type(r) == RULE_TYPE_BACKSTOP]
    matched = [(r, res) for r in first if (res := rule_matches(r, payload, render_context)).matched]
    if matched:
        return matched
    return [(r, res) for r in second if (res := rule_matches(r, payload, render_context)).matched]
