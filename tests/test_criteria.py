"""Rule criteria: every st2 operator and alias, payload lookup, rule selection."""

from __future__ import annotations

import datetime as dt

import pytest

from st2lite.criteria import (
    OPERATORS,
    MatchResult,
    UnknownOperatorError,
    get_operator,
    lookup_payload,
    match_criteria,
    render_pattern,
    rule_matches,
    select_rules,
)
from st2lite.pack_env.pack_runtime.datastore import KeyValueStore
from st2lite.templating import build_context


@pytest.fixture()
def store(tmp_path):
    return KeyValueStore(str(tmp_path / "kv.sqlite"))


@pytest.fixture()
def ctx(store):
    return build_context(store)


class _Ago:
    """A timestamp ``seconds`` before the moment the test runs (not when cases are collected:
    a long suite would age it past the period under test)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"{self.seconds:g}s ago"

    def iso(self) -> str:
        return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.seconds)).isoformat()


def _iso(seconds_ago: float) -> _Ago:
    return _Ago(seconds_ago)


# (operator, value, pattern, expected)
OPERATOR_CASES = [
    ("equals", "critical", "critical", True),
    ("equals", "critical", "warning", False),
    ("equals", 5, "5", False),  # no casting
    ("eq", 5, 5, True),
    ("eq", [1, 2], [1, 2], True),
    ("nequals", "a", "b", True),
    ("nequals", "a", "a", False),
    ("neq", 1, 2, True),
    ("neq", None, None, False),
    ("iequals", "CRITICAL", "critical", True),
    ("iequals", "CRITICAL", "warn", False),
    ("ieq", "Web-1", "WEB-1", True),
    ("contains", "disk full on /var", "full", True),
    ("contains", "disk ok", "full", False),
    ("contains", ["a", "b"], "b", True),
    ("icontains", "Disk FULL", "full", True),
    ("icontains", "Disk ok", "full", False),
    ("ncontains", "disk ok", "full", True),
    ("ncontains", "disk full", "full", False),
    ("incontains", "disk ok", "FULL", True),
    ("incontains", "disk FULL", "full", False),
    ("startswith", "web-01", "web", True),
    ("startswith", "db-01", "web", False),
    ("istartswith", "WEB-01", "web", True),
    ("istartswith", "DB-01", "web", False),
    ("endswith", "host.prod", ".prod", True),
    ("endswith", "host.dev", ".prod", False),
    ("iendswith", "HOST.PROD", ".prod", True),
    ("iendswith", "HOST.DEV", ".prod", False),
    ("lessthan", 3, 5, True),
    ("lessthan", 5, 5, False),
    ("lt", 1.5, 2, True),
    ("greaterthan", 10, 5, True),
    ("greaterthan", 5, 5, False),
    ("gt", "b", "a", True),
    ("matchwildcard", "web-01.prod", "web-*.prod", True),
    ("matchwildcard", "db-01.prod", "web-*", False),
    ("matchregex", "line1\nline2", "line1.line2", True),  # DOTALL
    ("matchregex", "xx-web", "web", False),  # anchored at start
    ("regex", "xx-web-01", r"web-\d+", True),
    ("regex", "xx-WEB-01", r"web-\d+", False),
    ("iregex", "xx-WEB-01", r"web-\d+", True),
    ("iregex", "xx-db", r"web", False),
    ("timediff_lt", _Ago(10), 60, True),
    ("timediff_lt", _Ago(600), 60, False),
    ("td_lt", _Ago(10), 60, True),
    ("timediff_gt", _Ago(600), 60, True),
    ("timediff_gt", _Ago(10), 60, False),
    ("td_gt", _Ago(600), 60, True),
    ("exists", "x", None, True),
    ("exists", None, None, False),
    ("exists", 0, None, True),
    ("nexists", None, None, True),
    ("nexists", "", None, False),
    ("inside", "web", ["web", "db"], True),
    ("inside", "cache", ["web", "db"], False),
    ("in", "b", "abc", True),
    ("ninside", "cache", ["web", "db"], True),
    ("ninside", "web", ["web", "db"], False),
    ("nin", "z", "abc", True),
]


@pytest.mark.parametrize(("op", "value", "pattern", "expected"), OPERATOR_CASES)
def test_operator(op, value, pattern, expected):
    if isinstance(value, _Ago):
        value = value.iso()
    assert get_operator(op)(value, pattern) is expected


def test_every_operator_has_a_case():
    covered = {case[0] for case in OPERATOR_CASES} | {"search"}
    assert covered == set(OPERATORS)


@pytest.mark.parametrize("op", sorted(set(OPERATORS) - {"search"}))
def test_none_pattern_is_false_except_nequals_exists_nexists(op):
    expected = {"nequals": True, "neq": True, "exists": True, "nexists": False}
    assert get_operator(op)("value", None) is expected.get(op, False)
    # A missing key (None) against a None pattern: only nexists holds; equals does not.
    assert get_operator(op)(None, None) is (op == "nexists")


def test_timediff_accepts_naive_and_zoned_timestamps():
    naive = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).replace(tzinfo=None).isoformat()
    assert get_operator("td_lt")(naive, 120)
    zoned = (dt.datetime.now(dt.timezone(dt.timedelta(hours=5))) - dt.timedelta(seconds=30)).isoformat()
    assert get_operator("td_lt")(zoned, 120)
    assert not get_operator("td_gt")(zoned, 120)


def test_operator_names_are_case_insensitive():
    assert get_operator("EQUALS") is get_operator("eq")
    assert get_operator("Td_Gt") is get_operator("timediff_gt")


def test_unknown_operator_error_names_it():
    with pytest.raises(UnknownOperatorError) as info:
        get_operator("almost_equals")
    assert "almost_equals" in str(info.value)
    assert info.value.name == "almost_equals"


def test_unknown_operator_in_criteria_raises_as_in_st2(ctx):
    # filter.py calls get_operator() outside its try: the exception leaves the rules engine.
    with pytest.raises(UnknownOperatorError, match="bogus"):
        match_criteria({"trigger.a": {"type": "bogus", "pattern": 1}}, {"a": 1}, ctx)


# --------------------------------------------------------------------------------------
# Criteria evaluation
# --------------------------------------------------------------------------------------

PAYLOAD = {
    "status": "firing",
    "labels": {"severity": "critical", "alertname": "DiskFull", "instance": "web-1"},
    "alerts": [{"name": "a", "value": 3}, {"name": "b", "value": 9}],
    "headers": {"X-Token": "abc"},
    "count": 7,
}


def test_and_of_all_criteria(ctx):
    criteria = {
        "trigger.status": {"type": "equals", "pattern": "firing"},
        "trigger.labels.severity": {"type": "inside", "pattern": ["critical", "page"]},
    }
    assert match_criteria(criteria, PAYLOAD, ctx) == MatchResult(True)
    criteria["trigger.labels.instance"] = {"type": "startswith", "pattern": "db-"}
    result = match_criteria(criteria, PAYLOAD, ctx)
    assert not result.matched
    assert result.failed_criterion == "trigger.labels.instance"
    assert "'web-1'" in result.reason and "startswith" in result.reason and "'db-'" in result.reason


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("trigger.labels.severity", "critical"),
        ("trigger.alerts[1].name", "b"),
        ("trigger.alerts[-1].value", 9),
        ("trigger.headers['X-Token']", "abc"),
        ('trigger.headers."X-Token"', "abc"),
        ("trigger.alerts[*].name", "a"),
        ("trigger.labels.missing", None),
        ("trigger.alerts[5].name", None),
        ("trigger.count.deeper", None),
        ("trigger.labels.severity#second", "critical"),
    ],
)
def test_payload_lookup(key, expected):
    assert lookup_payload(key, {"trigger": PAYLOAD}) == expected


def test_missing_key_is_none(ctx):
    assert match_criteria({"trigger.nope": {"type": "nexists"}}, PAYLOAD, ctx).matched
    assert not match_criteria({"trigger.nope": {"type": "exists"}}, PAYLOAD, ctx).matched
    assert not match_criteria({"trigger.nope": {"type": "equals", "pattern": "x"}}, PAYLOAD, ctx).matched


def test_tagged_keys_test_the_same_field_twice(ctx):
    criteria = {
        "trigger.labels.alertname#1": {"type": "contains", "pattern": "Disk"},
        "trigger.labels.alertname#2": {"type": "ncontains", "pattern": "Memory"},
    }
    assert match_criteria(criteria, PAYLOAD, ctx).matched
    criteria["trigger.labels.alertname#2"]["pattern"] = "Full"
    result = match_criteria(criteria, PAYLOAD, ctx)
    assert not result.matched
    assert result.failed_criterion == "trigger.labels.alertname#2"


@pytest.mark.parametrize(
    ("op", "value", "pattern"),
    [
        ("lt", "7", 10),
        ("gt", "7", 1),
        ("lessthan", 7, "10"),
        ("lt", None, 10),
        ("contains", 7, "x"),
        ("iequals", 7, "x"),
        ("regex", 7, "x"),
        ("td_lt", "not a date", 5),
        ("td_gt", _iso(600), "sixty"),
        ("search", 7, {}),
    ],
)
def test_comparisons_that_raise_do_not_match(ctx, op, value, pattern):
    # Comparing a string with a number, or treating a number as text, raises in st2
    # too; the criterion must fail quietly with the reason, never crash.
    spec = {"type": op, "pattern": pattern, "condition": "any"}
    result = match_criteria({"trigger.count": spec}, {"count": value}, ctx)
    assert result.matched is False
    assert "error evaluating" in result.reason
    assert result.errors == [result.reason], "st2 records the failure as a failed rule enforcement"


def test_criterion_without_type_does_not_match(ctx):
    result = match_criteria({"trigger.status": {"pattern": "firing"}}, PAYLOAD, ctx)
    assert not result.matched and "type" in result.reason


def test_empty_payload_fails_any_criteria(ctx):
    assert not match_criteria({"trigger.x": {"type": "nexists"}}, {}, ctx).matched
    assert not match_criteria({"trigger.x": {"type": "nexists"}}, None, ctx).matched
    assert match_criteria({}, {}, ctx).matched
    assert match_criteria(None, {}, ctx).matched


# --------------------------------------------------------------------------------------
# Jinja patterns
# --------------------------------------------------------------------------------------


def test_pattern_reads_datastore_and_keeps_types(store, ctx):
    store.set("aegis.max_count", "10")
    store.set("aegis.teams", '["sre", "db"]')
    assert render_pattern("{{ st2kv.system.aegis.max_count | int }}", ctx) == 10
    assert render_pattern("{{ st2kv.system.aegis.teams | from_json_string }}", ctx) == ["sre", "db"]
    criteria = {
        "trigger.count": {"type": "lt", "pattern": "{{ st2kv.system.aegis.max_count | int }}"},
        "trigger.team": {"type": "inside", "pattern": "{{ st2kv.system.aegis.teams | from_json_string }}"},
    }
    assert match_criteria(criteria, {"count": 7, "team": "sre"}, ctx).matched
    assert not match_criteria(criteria, {"count": 12, "team": "sre"}, ctx).matched
    # A datastore value is a string: without a cast, lt compares int with str and fails.
    raw = {"trigger.count": {"type": "lt", "pattern": "{{ st2kv.system.aegis.max_count }}"}}
    assert not match_criteria(raw, {"count": 7}, ctx).matched


def test_pattern_with_text_around_expression_renders_as_text(store, ctx):
    store.set("env", "prod")
    assert render_pattern("web-{{ st2kv.system.env | string }}-*", ctx) == "web-prod-*"
    criteria = {"trigger.host": {"type": "matchwildcard", "pattern": "web-{{ st2kv.system.env | string }}-*"}}
    assert match_criteria(criteria, {"host": "web-prod-3"}, ctx).matched


def test_pattern_can_use_the_payload(ctx):
    criteria = {"trigger.current": {"type": "gt", "pattern": "{{ trigger.threshold }}"}}
    assert match_criteria(criteria, {"current": 90, "threshold": 80}, ctx).matched
    assert not match_criteria(criteria, {"current": 70, "threshold": 80}, ctx).matched


def test_missing_datastore_key_renders_empty(ctx):
    assert render_pattern("{{ st2kv.system.nothing.here | string }}", ctx) == ""


def test_pattern_render_failure_is_a_non_match(ctx):
    result = match_criteria({"trigger.a": {"type": "eq", "pattern": "{{ undefined_name }}"}}, {"a": 1}, ctx)
    assert not result.matched and "failed to render pattern" in result.reason.lower()


def test_non_string_patterns_are_not_rendered(ctx):
    assert render_pattern(5, ctx) == 5
    assert render_pattern(["{{ x }}"], ctx) == ["{{ x }}"]
    assert render_pattern("plain", ctx) == "plain"


# --------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------

ITEMS = {
    "fields": [
        {"field_name": "Status", "to_value": "Approved"},
        {"field_name": "Assignee", "to_value": "sre"},
    ]
}
BOTH = {
    "item.field_name": {"type": "equals", "pattern": "Status"},
    "item.to_value": {"type": "equals", "pattern": "Approved"},
}


@pytest.mark.parametrize(
    ("condition", "pattern", "expected"),
    [
        ("any", BOTH, True),  # the first item matches both
        ("all", BOTH, False),  # the second does not
        ("all2any", BOTH, False),  # the second matches neither
        ("any2any", BOTH, True),
        (
            "all2any",
            {
                "item.field_name": {"type": "inside", "pattern": ["Status", "Assignee"]},
                "item.to_value": {"type": "eq", "pattern": "never"},
            },
            True,
        ),
        ("all", {"item.to_value": {"type": "exists"}}, True),
        ("any", {"item.to_value": {"type": "eq", "pattern": "never"}}, False),
        (
            "any2any",
            {
                "item.to_value": {"type": "eq", "pattern": "never"},
                "item.field_name": {"type": "eq", "pattern": "nope"},
            },
            False,
        ),
    ],
)
def test_search_conditions(ctx, condition, pattern, expected):
    criteria = {"trigger.fields": {"type": "search", "condition": condition, "pattern": pattern}}
    assert match_criteria(criteria, ITEMS, ctx).matched is expected


def test_search_dict_value_is_one_item(ctx):
    criteria = {"trigger.fields": {"type": "search", "condition": "all", "pattern": BOTH}}
    assert match_criteria(criteria, {"fields": {"field_name": "Status", "to_value": "Approved"}}, ctx).matched


def test_search_bad_condition_is_a_non_match(ctx):
    criteria = {"trigger.fields": {"type": "search", "condition": "most", "pattern": BOTH}}
    result = match_criteria(criteria, ITEMS, ctx)
    assert not result.matched and "most" in result.reason


def test_search_child_patterns_are_rendered(store, ctx):
    store.set("approved", "Approved")
    pattern = {"item.to_value": {"type": "equals", "pattern": "{{ st2kv.system.approved | string }}"}}
    criteria = {"trigger.fields": {"type": "search", "condition": "any", "pattern": pattern}}
    assert match_criteria(criteria, ITEMS, ctx).matched


# --------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------


def _rule(name, criteria=None, kind="standard", enabled=True, trigger="aegis.alert"):
    return {
        "name": name,
        "pack": "aegis",
        "enabled": enabled,
        "trigger": {"type": trigger},
        "criteria": criteria or {},
        "action": {"ref": "core.noop"},
        "type": {"ref": kind},
    }


def test_disabled_rule_never_matches(ctx):
    result = rule_matches(_rule("off", enabled=False), PAYLOAD, ctx)
    assert not result.matched and "disabled" in result.reason


def test_rule_without_criteria_matches_any_payload(ctx):
    rule = _rule("all")
    del rule["criteria"]
    assert rule_matches(rule, PAYLOAD, ctx).matched
    assert rule_matches(rule, {}, ctx).matched  # st2 only checks the payload when there are criteria


def test_enabled_defaults_to_true(ctx):
    rule = _rule("implicit")
    del rule["enabled"]
    assert rule_matches(rule, PAYLOAD, ctx).matched


def test_backstop_only_when_no_standard_rule_matched(ctx):
    critical = _rule("critical", {"trigger.labels.severity": {"type": "eq", "pattern": "critical"}})
    warning = _rule("warning", {"trigger.labels.severity": {"type": "eq", "pattern": "warning"}})
    backstop = _rule("catch_all", kind="backstop")
    other_trigger = _rule("other", trigger="core.st2.webhook")
    rules = [backstop, critical, warning, other_trigger]

    names = [r["name"] for r, _ in select_rules(rules, "aegis.alert", PAYLOAD, ctx)]
    assert names == ["critical"]

    info = {**PAYLOAD, "labels": {"severity": "info"}}
    names = [r["name"] for r, _ in select_rules(rules, "aegis.alert", info, ctx)]
    assert names == ["catch_all"]

    assert select_rules(rules, "aegis.unknown", PAYLOAD, ctx) == []
    names = [r["name"] for r, _ in select_rules(rules, "core.st2.webhook", PAYLOAD, ctx)]
    assert names == ["other"]


def test_disabled_standard_rule_lets_backstop_fire(ctx):
    rules = [_rule("std", enabled=False), _rule("catch_all", kind="backstop")]
    assert [r["name"] for r, _ in select_rules(rules, "aegis.alert", PAYLOAD, ctx)] == ["catch_all"]


def test_several_standard_rules_all_fire(ctx):
    rules = [
        _rule("one"),
        _rule("two", {"trigger.count": {"type": "gt", "pattern": 1}}),
        _rule("bs", kind="backstop"),
    ]
    matched = select_rules(rules, "aegis.alert", PAYLOAD, ctx)
    assert [r["name"] for r, _ in matched] == ["one", "two"]
    assert all(res.matched for _, res in matched)
