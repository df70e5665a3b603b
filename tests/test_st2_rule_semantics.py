"""Rule criteria exactly as StackStorm evaluates them: one row per point of issue 11 part 2.

Each expected outcome is what st2's code does, read from (StackStorm/st2, 3.10dev):
``st2reactor/st2reactor/rules/filter.py`` (RuleFilter), ``st2reactor/st2reactor/rules/matcher.py``,
``st2common/st2common/operators.py``, ``st2common/st2common/util/payload.py`` (jsonpath-rw),
``st2common/st2common/util/templating.py`` and ``expressions/functions/data.py`` (``to_complex``
is ``json.dumps``), and st2's own tests ``st2common/tests/unit/test_operators.py``
(``test_timediff_lt_webui_value``: a string period; ``SearchOperatorTest``) and
``st2reactor/tests/unit/test_filter.py`` (``test_search_operator_*``, ``test_empty_payload``,
``test_criteria_pattern_references_a_datastore_item``: that one passes in st2 only because it
mocks ``KeyValueLookup`` with plain strings; the real lookup object is not JSON-serialisable,
StackStorm/st2#4043 and #5260).

``errors`` is how many failed rule enforcements st2 writes (``_create_rule_enforcement``).
"""

from __future__ import annotations

import datetime as dt

import pytest

from st2lite.criteria import RuleMatchingError, UnknownOperatorError, match_criteria, match_rules
from st2lite.pack_env.pack_runtime.datastore import KeyValueStore
from st2lite.templating import build_context


def _ago(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)).isoformat()


ITEMS = {"fields": [{"name": "Status", "value": "Approved", "n": "x"}, {"name": "Owner", "value": "sre", "n": "y"}]}
PAYLOAD = {
    "status": "firing",
    "labels": {"severity": "critical", "x-team": "db"},
    "alerts": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
    "fields": ITEMS["fields"],
    "started": "60 s before the test runs",  # set by the test: collection may be minutes earlier
}


def search(condition, pattern, key="trigger.fields", op="search"):
    spec = {"type": op, "condition": condition}
    if pattern is not None:
        spec["pattern"] = pattern
    return {key: spec}


# (id, criteria, payload, datastore, matched, errors)
CASES = [
    # -- timediff with a string period: operators._timediff float()s it
    ("timediff_lt string period", {"trigger.started": {"type": "timediff_lt", "pattern": "600"}}, PAYLOAD, {}, True, 0),
    ("timediff_gt string period", {"trigger.started": {"type": "timediff_gt", "pattern": "600"}}, PAYLOAD, {}, False, 0),
    ("td_gt string period, older", {"trigger.started": {"type": "td_gt", "pattern": "30"}}, PAYLOAD, {}, True, 0),
    ("timediff non-numeric period", {"trigger.started": {"type": "timediff_lt", "pattern": "ten"}}, PAYLOAD, {}, False, 1),
    # -- search: every child for every item (list comprehensions, no short-circuit)
    ("search all children evaluated, 2 items x 1 failing child",
     search("any", {"item.name": {"type": "equals", "pattern": "nope"}, "item.n": {"type": "lt", "pattern": 5}}),
     PAYLOAD, {}, False, 2),
    ("search any: later items still evaluated after a match",
     search("any", {"item.name": {"type": "equals", "pattern": "Status"}, "item.n#2": {"type": "gt", "pattern": 1}}),
     PAYLOAD, {}, False, 2),
    ("search any matches", search("any", {"item.name": {"type": "equals", "pattern": "Owner"},
                                          "item.value": {"type": "equals", "pattern": "sre"}}), PAYLOAD, {}, True, 0),
    ("search all2any", search("all2any", {"item.name": {"type": "equals", "pattern": "Owner"},
                                          "item.value": {"type": "equals", "pattern": "Approved"}}), PAYLOAD, {}, True, 0),
    ("search unknown condition", search("some", {"item.name": {"type": "equals", "pattern": "Owner"}}), PAYLOAD, {}, False, 1),
    # -- operator names: get_operator lower()s, but filter.py tests type == "search" as spelled
    ("EQ is equals", {"trigger.status": {"type": "EQ", "pattern": "firing"}}, PAYLOAD, {}, True, 0),
    ("SEARCH is not search (called as a plain operator: TypeError)",
     search("any", {"item.name": {"type": "equals", "pattern": "Owner"}}, op="SEARCH"), PAYLOAD, {}, False, 1),
    # -- search without a pattern: pattern.items() on None, only reached for a first item
    ("search without pattern, items", search("any", None), PAYLOAD, {}, False, 1),
    ("search without pattern, empty list, all", search("all", None), {"fields": []}, {}, True, 0),
    ("search without pattern, empty list, any", search("any", None), {"fields": []}, {}, False, 0),
    # -- trigger inside a search child: the child context is {"item": ..., "system": ...}
    ("trigger in a search child pattern is undefined (one failure per item)",
     search("any", {"item.name": {"type": "equals", "pattern": "{{ trigger.status }}"}}), PAYLOAD, {}, False, 2),
    ("item in a search child pattern", search("any", {"item.n": {"type": "equals", "pattern": "{{ item.n }}"}}),
     PAYLOAD, {}, True, 0),
    # -- unknown operator inside a search: get_operator raises inside the search call's try
    ("unknown operator in a search child", search("any", {"item.name": {"type": "almost", "pattern": "x"}}),
     PAYLOAD, {}, False, 1),
    # -- the datastore in patterns: to_complex = json.dumps(KeyValueLookup) raises TypeError
    ("st2kv.system in a pattern cannot be serialised", {"trigger.status": {"type": "equals", "pattern": "{{ st2kv.system.k }}"}},
     PAYLOAD, {"k": "firing"}, False, 1),
    ("st2kv.system with text around fails too", {"trigger.status": {"type": "equals", "pattern": "fir{{ st2kv.system.k }}"}},
     PAYLOAD, {"k": "ing"}, False, 1),
    ("st2kv.system | string works", {"trigger.status": {"type": "equals", "pattern": "{{ st2kv.system.k | string }}"}},
     PAYLOAD, {"k": "firing"}, True, 0),
    ("st2kv.system | int works", {"trigger.labels.severity": {"type": "neq", "pattern": "{{ st2kv.system.n | int }}"}},
     PAYLOAD, {"n": "3"}, True, 0),
    ("st2kv.user is not in the criteria context", {"trigger.status": {"type": "equals", "pattern": "{{ st2kv.user.k | string }}"}},
     PAYLOAD, {}, False, 1),
    # -- the legacy system scope: PayloadLookup puts KeyValueLookup(scope="system") at "system"
    ("legacy system. scope in a pattern | string", {"trigger.status": {"type": "equals", "pattern": "{{ system.k | string }}"}},
     PAYLOAD, {"k": "firing"}, True, 0),
    ("legacy system. scope in a pattern, bare", {"trigger.status": {"type": "equals", "pattern": "{{ system.k }}"}},
     PAYLOAD, {"k": "firing"}, False, 1),
    ("system.<key> as a criteria key is a lookup object: exists even when missing",
     {"system.missing": {"type": "exists"}}, PAYLOAD, {}, True, 0),
    ("system.<key> as a criteria key never equals its value", {"system.k": {"type": "equals", "pattern": "firing"}},
     PAYLOAD, {"k": "firing"}, False, 0),
    # -- payload keys are jsonpath-rw expressions
    ("$. root", {"$.trigger.status": {"type": "equals", "pattern": "firing"}}, PAYLOAD, {}, True, 0),
    (".. descendants (first match)", {"trigger..name": {"type": "equals", "pattern": "a"}}, PAYLOAD, {}, True, 0),
    ("slice", {"trigger.alerts[1:2].name": {"type": "equals", "pattern": "b"}}, PAYLOAD, {}, True, 0),
    ("wildcard index", {"trigger.alerts[*].name": {"type": "equals", "pattern": "a"}}, PAYLOAD, {}, True, 0),
    ("where", {"trigger.labels where severity": {"type": "exists"}}, PAYLOAD, {}, True, 0),
    ("where, no match", {"trigger.labels where nothing": {"type": "exists"}}, PAYLOAD, {}, False, 0),
    ("backticks `this`", {"trigger.status.`this`": {"type": "equals", "pattern": "firing"}}, PAYLOAD, {}, True, 0),
    ("quoted field with a dash", {'trigger.labels."x-team"': {"type": "equals", "pattern": "db"}}, PAYLOAD, {}, True, 0),
    ("#tag stripped", {"trigger.status#1": {"type": "equals", "pattern": "firing"}}, PAYLOAD, {}, True, 0),
    ("rejected: a bare number field", {"trigger.0": {"type": "exists"}}, {"0": 1}, {}, False, 1),
    ("rejected: $ inside a name", {"trigger.$x": {"type": "exists"}}, {"$x": 1}, {}, False, 1),
    ("missing key is None", {"trigger.nothing": {"type": "nexists"}}, PAYLOAD, {}, True, 0),
    # -- the rest of filter.py
    ("criteria and an empty payload", {"trigger.a": {"type": "nexists"}}, {}, {}, False, 0),
    ("no operator type: not a comparison, nothing recorded", {"trigger.status": {"pattern": "firing"}}, PAYLOAD, {}, False, 0),
]


@pytest.mark.parametrize(("criteria", "payload", "keys", "matched", "errors"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_criteria_as_st2_evaluates_them(tmp_path, criteria, payload, keys, matched, errors):
    store = KeyValueStore(str(tmp_path / "kv.sqlite"))
    for name, value in keys.items():
        store.set(name, value)
    if payload.get("started") == PAYLOAD["started"]:
        payload = {**payload, "started": _ago(60)}
    result = match_criteria(criteria, payload, build_context(store))
    assert (result.matched, len(result.errors)) == (matched, errors), result


def test_an_unknown_operator_fails_the_whole_trigger_instance(tmp_path):
    # filter.py calls get_operator() outside its try: the exception leaves RulesMatcher and
    # the rules engine marks the trigger instance processing_failed; no rule is enforced,
    # not even one that matched before.
    context = build_context(KeyValueStore(str(tmp_path / "kv.sqlite")))
    good = {"name": "good", "pack": "p", "trigger": {"type": "p.t"}, "criteria": {}}
    bad = {"name": "bad", "pack": "p", "trigger": {"type": "p.t"}, "criteria": {"trigger.a": {"type": "Equalz", "pattern": 1}}}
    with pytest.raises(UnknownOperatorError):
        match_criteria(bad["criteria"], {"a": 1}, context)
    with pytest.raises(RuleMatchingError) as info:
        match_rules([good, bad], "p.t", {"a": 1}, context)
    assert info.value.rule == "p.bad"


def test_backstop_rules_are_not_evaluated_when_a_standard_rule_matched(tmp_path):
    # SecondPassRuleFilter returns False before filtering: a backstop's errors are not recorded.
    context = build_context(KeyValueStore(str(tmp_path / "kv.sqlite")))
    standard = {"name": "s", "pack": "p", "trigger": {"type": "p.t"}}
    backstop = {"name": "b", "pack": "p", "type": {"ref": "backstop"}, "trigger": {"type": "p.t"},
                "criteria": {"trigger.a": {"type": "lt", "pattern": "x"}}}  # fmt: skip
    assert [r["name"] for r, _ in match_rules([standard, backstop], "p.t", {"a": 1}, context)] == ["s"]
    only_backstop = match_rules([backstop], "p.t", {"a": 1}, context)
    assert [(r["name"], len(res.errors)) for r, res in only_backstop] == [("b", 1)]


def _runtime_with_criteria(make_runtime, criteria):
    import dataclasses

    from conftest import FIXTURE_PACKS

    runtime = make_runtime(FIXTURE_PACKS / "svctest")
    (rule,) = [r for r in runtime.rules if r.trigger_type == "svctest.tick"]
    runtime.rules = [dataclasses.replace(rule, meta={**rule.meta, "criteria": criteria})]
    ti_id = runtime.records.record_trigger_instance("svctest.tick", {"n": 1, "items": [{"a": 1}, {"a": 2}]})
    assert runtime.process_trigger_instance(runtime.records.get_trigger_instance(ti_id)) == []
    return runtime, ti_id


def test_the_runtime_records_each_matching_error_as_a_failed_enforcement(make_runtime):
    criteria = {"trigger.items": {"type": "search", "condition": "any", "pattern": {"item.a": {"type": "lt", "pattern": "x"}}}}
    runtime, ti_id = _runtime_with_criteria(make_runtime, criteria)
    enforcements = runtime.records.list_rule_enforcements(ti_id)
    assert [(e["rule"], e["status"], e["execution_id"]) for e in enforcements] == [("svctest.on_tick", "failed", None)] * 2
    assert all(e["failure_reason"].startswith(f'Failed to match rule "svctest.on_tick" against trigger instance "{ti_id}"')
               for e in enforcements)  # fmt: skip
    assert runtime.records.get_trigger_instance(ti_id)["status"] == "processed", "the rule did not match; no crash"


def test_the_runtime_fails_a_trigger_instance_on_an_unknown_operator(make_runtime):
    runtime, ti_id = _runtime_with_criteria(make_runtime, {"trigger.n": {"type": "equalz", "pattern": 1}})
    assert runtime.records.get_trigger_instance(ti_id)["status"] == "processing_failed"
    (enforcement,) = runtime.records.list_rule_enforcements(ti_id)
    assert enforcement["status"] == "failed" and "equalz" in enforcement["failure_reason"]
