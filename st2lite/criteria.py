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

Criteria keys are jsonpath expressions (st2's ``PayloadLookup``, with st2's own dependency
``jsonpath-rw``) over ``{"trigger": payload, "system": <datastore>}``: dotted names, list
indexes (``trigger.alerts[0].labels``), quoted names (``trigger."X-Token"``), ``*``,
``$.`` roots, ``..`` descendants, slices, ``where`` and backticks (```this```); the first
value found is used and a missing path is None. What jsonpath-rw rejects (``trigger.0``,
``trigger.$x``) fails the criterion, recorded, as in st2. A ``#tag`` suffix is stripped from a
key so one rule can test the same key twice (``trigger.summary#1``, ``trigger.summary#2``).

Exactly as StackStorm, oddities included (a rule that matches here matches on st2):

- An error while rendering a pattern, looking up a key or applying an operator makes the
  criterion false and is recorded (``MatchResult.errors``, a failed rule enforcement each,
  st2's ``_create_rule_enforcement``); matching goes on with the other rules.
- An unknown operator name raises :class:`UnknownOperatorError` out of :func:`select_rules`
  (st2's ``get_operator`` is called outside the ``try``): no rule of that trigger instance
  is enforced and the instance is ``processing_failed``. Inside a ``search`` it is an
  ordinary recorded error (the search operator's call is inside the ``try``).
- Operator names are looked up case-insensitively (``EQ``), but ``search`` is recognised
  only in lower case: ``SEARCH`` gets the search function called as a plain operator, which
  fails (recorded).
- ``search`` evaluates every child criterion for every item (st2 builds full lists, no
  short-circuit), so every failing child is recorded. Child patterns see ``item`` (and the
  datastore), not ``trigger``: ``{{ trigger.x }}`` there is undefined and fails.
- Patterns are rendered with ``trigger`` (or ``item``), ``st2kv.system`` and the legacy
  ``system`` scope only (no ``st2kv.user``, no ``config_context``). A ``{{ }}`` expression
  gets ``| to_complex`` appended, which ``json.dumps`` the value: a bare datastore lookup
  (``{{ st2kv.system.x }}``, ``{{ system.x }}``) cannot be serialised, so the criterion fails
  on st2 (StackStorm/st2#4043, #5260) and here; ``{{ st2kv.system.x | string }}`` works.
  ``aegis validate`` flags the bare form.
- ``timediff_lt``/``timediff_gt`` compare with ``float(pattern)``: ``"600"`` is 600 s.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dateutil.parser
from jsonpath_rw import parse as jsonpath_parse

from st2lite.templating import get_jinja_environment

__all__ = [
    "OPERATORS",
    "SEARCH",
    "MatchResult",
    "RuleMatchingError",
    "UnknownOperatorError",
    "UnrecognizedConditionError",
    "get_operator",
    "lookup_payload",
    "match_criteria",
    "match_rules",
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


class RuleMatchingError(RuntimeError):
    """Matching raised (st2: an unknown operator); no rule of the trigger instance applies."""

    def __init__(self, rule: str, error: Exception) -> None:
        super().__init__(f"rule {rule}: {error}")
        self.rule = rule
        self.error = error


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
    # st2 float()s the period: "600" is 600 seconds, "ten" raises (a recorded failure).
    return op(elapsed, float(period_seconds))


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
    one-element list. As st2's ``operators.search``: the condition is checked first, then
    every child criterion is evaluated for every item (full lists, no short-circuit, so
    each failing child is recorded); a missing pattern fails on the first item (st2 calls
    ``pattern.items()``), so an empty list still gives ``all([]) == True``.
    """
    if isinstance(value, dict):
        value = [value]
    item_match: Callable[[Any], bool] = all
    pattern_match: Callable[[Any], bool] = all
    if condition == "any":
        item_match = any
    elif condition == "all2any":
        pattern_match = any
    elif condition == "any2any":
        item_match = pattern_match = any
    elif condition != "all":
        raise UnrecognizedConditionError(
            f"The {condition!r} condition is not recognized for type search, 'any', 'all', 'any2any'"
            " and 'all2any' are allowed"
        )
    return item_match(
        [
            pattern_match([check(key, spec, {TRIGGER_ITEM_PAYLOAD_PREFIX: item}) for key, spec in pattern.items()])
            for item in value
        ]
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
    """The operator function for ``name`` (case-insensitive, aliases included), as st2's.

    >>> get_operator("EQ")("a", "a")
    True
    """
    if not isinstance(name, str) or name.lower() not in OPERATORS:
        raise UnknownOperatorError(str(name))
    return OPERATORS[name.lower()]


def is_search(name: Any) -> bool:
    """filter.py compares ``type == "search"`` case-sensitively: ``SEARCH`` is not a search."""
    return name == SEARCH


# --------------------------------------------------------------------------------------
# Payload lookup (st2common/util/payload.py: jsonpath-rw over {"trigger": payload, ...})
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _jsonpath(key: str) -> Any:
    # jsonpath-rw builds a parser per call (~3 ms): parse each distinct key once.
    return jsonpath_parse(key)


def strip_key_tag(key: str) -> str:
    """``trigger.summary#2`` -> ``trigger.summary`` (the tag only makes the key unique)."""
    return key.split("#", 1)[0]


def lookup_payload(key: str, context: Mapping[str, Any]) -> Any:
    """The first value at ``key`` (a criteria key) in ``context``; None when absent.

    Raises what jsonpath-rw raises for a key it cannot parse (st2 records that as a failure).

    >>> lookup_payload("trigger.alerts[1].name", {"trigger": {"alerts": [{"name": "a"}, {"name": "b"}]}})
    'b'
    >>> lookup_payload("$..name", {"trigger": {"alerts": [{"name": "a"}]}})
    'a'
    """
    matches = [match.value for match in _jsonpath(strip_key_tag(key)).find(context)]
    return matches[0] if matches else None


# --------------------------------------------------------------------------------------
# The datastore, as criteria see it (st2common/services/keyvalues.py: KeyValueLookup)
# --------------------------------------------------------------------------------------


class St2KeyValueLookup:
    """st2's ``KeyValueLookup`` as rule criteria get it: attribute steps build a key name.

    Mirrored closely because criteria depend on its oddities: ``str()`` reads the value
    (``''`` when missing), ``int()``/``float()`` convert it, and nothing else: it is not
    JSON-serialisable (so ``| to_complex`` fails), it equals nothing but itself, and the
    root (``str(st2kv.system)``) raises ``KeyError``. One divergence: st2's object is
    "iterable" through ``__getitem__`` forever (``"x" in lookup`` hangs st2's rules engine);
    this one raises ``TypeError`` instead (a recorded failure).
    """

    __slots__ = ("_read", "_key")

    def __init__(self, read: Callable[[str], str], key: str = "") -> None:
        self._read = read
        self._key = key

    def _get(self, name: Any) -> St2KeyValueLookup:
        return St2KeyValueLookup(self._read, f"{self._key}.{name}" if self._key else str(name))

    def __getattr__(self, name: str) -> St2KeyValueLookup:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._get(name)

    __getitem__ = _get

    def __str__(self) -> str:
        if not self._key:
            raise KeyError("")
        return self._read(self._key)

    def __int__(self) -> int:
        return int(float(self))

    def __float__(self) -> float:
        return float(str(self))

    def __iter__(self) -> Any:
        raise TypeError("a datastore lookup is not iterable")

    def __repr__(self) -> str:
        return f"<KeyValueLookup {self._key!r}>"


def _kv_reader(render_context: Mapping[str, Any]) -> Callable[[str], str]:
    """Read system-scope keys through the ``st2kv.system`` of a ``build_context`` result."""
    system = (render_context.get("st2kv") or {}).get("system") if isinstance(render_context, Mapping) else None
    if system is None:
        return lambda _key: ""
    return lambda key: str(system[key])


# --------------------------------------------------------------------------------------
# Pattern rendering (filter.py _render_criteria_pattern)
# --------------------------------------------------------------------------------------

# st2's to_complex is a bare json.dumps (st2common/expressions/functions/data.py): a datastore
# lookup or an undefined value raises TypeError, which the pattern rendering does not catch.
_ENV = get_jinja_environment()
_ENV.filters = {**_ENV.filters, "to_complex": lambda value: json.dumps(value)}
_MATCH_CRITERIA = re.compile(r"({{)\s*(.*)\s*(}})")  # st2's MATCH_CRITERIA


def render_pattern(pattern: Any, context: Mapping[str, Any]) -> Any:
    """Render a criteria pattern as st2 does: strings through Jinja, typed via JSON.

    When the pattern holds ``{{ }}``, ``| to_complex`` is appended and the output is
    JSON-decoded; only a ``ValueError`` (not JSON) falls back to rendering it as text.

    >>> render_pattern("{{ trigger.limit }}", {"trigger": {"limit": 5}})
    5
    """
    if pattern is None or not isinstance(pattern, str):
        return pattern
    if _MATCH_CRITERIA.search(pattern):
        complex_pattern = _MATCH_CRITERIA.sub(r"\1\2 | to_complex\3", pattern)
        try:
            return json.loads(_ENV.from_string(complex_pattern).render(dict(context)))
        except ValueError:
            pass
    return _ENV.from_string(pattern).render(dict(context))


# --------------------------------------------------------------------------------------
# Matching (filter.py RuleFilter, matcher.py RulesMatcher)
# --------------------------------------------------------------------------------------


@dataclass
class MatchResult:
    """Outcome of matching criteria.

    ``failed_criterion``/``reason``: the first criterion that did not match and why.
    ``errors``: what st2 records as a failed rule enforcement, one per error (a render,
    lookup or operator failure, in every ``search`` child); the rule does not match then.
    """

    matched: bool
    failed_criterion: str | None = None
    reason: str = ""
    errors: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.matched


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


class _RuleFilter:
    """One rule against one payload, step for step as st2's ``RuleFilter``."""

    def __init__(self, kv_read: Callable[[str], str]) -> None:
        self._kv_read = kv_read
        self.errors: list[str] = []

    def _lookup_context(self, prefix: str, payload: Any) -> dict[str, Any]:
        # PayloadLookup: the payload under its prefix, plus the legacy ``system`` scope.
        return {prefix: payload, "system": St2KeyValueLookup(self._kv_read)}

    def _fail(self, reason: str, exc: Exception) -> tuple[bool, Any, Any]:
        self.errors.append(f"{reason}: {type(exc).__name__}: {exc}")
        return False, None, None

    def check(self, key: str, spec: Any, context: dict[str, Any]) -> tuple[bool, Any, Any]:
        if not isinstance(spec, Mapping) or "type" not in spec:
            return False, None, None  # no operator: no comparison (st2 records nothing)
        op_name = spec["type"]
        condition = spec.get("condition")
        pattern = spec.get("pattern")
        if isinstance(pattern, str):
            # render_template_with_system_context adds st2kv.system to the (shared) context:
            # from here on a criteria key can address ``st2kv`` too, as in st2.
            context["st2kv"] = {"system": St2KeyValueLookup(self._kv_read)}
        try:
            pattern = render_pattern(pattern, context)
        except Exception as exc:
            return self._fail(f'Failed to render pattern value "{spec.get("pattern")}" for key "{key}"', exc)
        try:
            value = lookup_payload(key, context)
        except Exception as exc:
            return self._fail(f"Failed transforming criteria key {key}", exc)
        operator = get_operator(op_name)  # outside the try, as in st2: an unknown one raises
        try:
            if is_search(op_name):
                matched = operator(value, pattern, condition, lambda k, v, item_ctx: self.check(
                    k, v, self._lookup_context(TRIGGER_ITEM_PAYLOAD_PREFIX, item_ctx[TRIGGER_ITEM_PAYLOAD_PREFIX]))[0])
            else:
                matched = operator(value, pattern)
        except Exception as exc:
            return self._fail(f"There might be a problem with the criteria: error evaluating {key!r} {op_name} "
                              f"{_describe(pattern)} on {_describe(value)}", exc)
        return bool(matched), value, pattern

    def filter(self, criteria: Mapping[str, Any] | None, payload: Any) -> MatchResult:
        criteria = criteria or {}
        if criteria and not payload:
            return MatchResult(False, next(iter(criteria)), "the trigger payload is empty")
        context = self._lookup_context(TRIGGER_PAYLOAD_PREFIX, payload)
        for key, spec in criteria.items():
            matched, value, pattern = self.check(key, spec, context)
            if not matched:
                op_name = spec.get("type") if isinstance(spec, Mapping) else None
                if self.errors:
                    reason = self.errors[-1]
                elif op_name is None:
                    reason = f"criterion {key!r} has no operator 'type'"
                else:
                    shown = f" (condition {spec.get('condition')})" if is_search(op_name) else ""
                    reason = f"key: {key}, type: {op_name}{shown}, pattern: {_describe(pattern)}, payload value: {_describe(value)}"
                return MatchResult(False, key, reason, list(self.errors))
        return MatchResult(True, errors=list(self.errors))


def match_criteria(criteria: Mapping[str, Any] | None, payload: Any, render_context: Mapping[str, Any]) -> MatchResult:
    """AND of every criterion of a rule against a trigger payload (st2's ``RuleFilter``).

    ``render_context`` supplies the datastore (its ``st2kv.system``, as ``build_context``
    makes it); patterns see only ``trigger``, ``st2kv.system`` and ``system``, as in st2.
    Raises :class:`UnknownOperatorError` for an unknown operator; any other error is a
    non-match with the reason in ``errors``.
    """
    return _RuleFilter(_kv_reader(render_context)).filter(criteria, payload)


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


def match_rules(
    rules: list[Mapping[str, Any]],
    trigger_ref: str,
    payload: Any,
    render_context: Mapping[str, Any],
) -> list[tuple[Mapping[str, Any], MatchResult]]:
    """Every rule st2 evaluates for a trigger instance, with its result (st2's ``RulesMatcher``).

    Standard rules of the trigger type first; ``backstop`` rules are evaluated only when no
    standard rule matched. Record each result's ``errors``; enforce the matched ones.
    Raises :class:`RuleMatchingError` when matching itself raised (an unknown operator):
    st2 then enforces no rule of the trigger instance.
    """
    candidates = [r for r in rules if rule_trigger_type(r) == trigger_ref]
    results: list[tuple[Mapping[str, Any], MatchResult]] = []

    def evaluate(rule: Mapping[str, Any]) -> MatchResult:
        try:
            result = rule_matches(rule, payload, render_context)
        except Exception as exc:
            raise RuleMatchingError(rule_ref(rule), exc) from exc
        results.append((rule, result))
        return result

    first = [evaluate(r) for r in candidates if rule_type(r) != RULE_TYPE_BACKSTOP]
    if not any(r.matched for r in first):
        for rule in candidates:
            if rule_type(rule) == RULE_TYPE_BACKSTOP:
                evaluate(rule)
    return results


def select_rules(
    rules: list[Mapping[str, Any]],
    trigger_ref: str,
    payload: Any,
    render_context: Mapping[str, Any],
) -> list[tuple[Mapping[str, Any], MatchResult]]:
    """The rules to enforce for a trigger instance, in order (the matched ones of :func:`match_rules`)."""
    return [(r, res) for r, res in match_rules(rules, trigger_ref, payload, render_context) if res.matched]
