"""Trigger payload validation: st2's hybrid draft-3/draft-4 rules, and a fast path that never disagrees."""

from __future__ import annotations

import copy
import random

import pytest
import yaml
from conftest import REPO

from st2lite.pack_env.pack_runtime.schema import St2Validator, _fast_valid, payload_errors, with_defaults

ALERT_SCHEMA = yaml.safe_load((REPO / "packs/aegis/sensors/alertmanager_webhook_sensor.yaml").read_text())[
    "trigger_types"
][0]["payload_schema"]
ALERT = {
    "status": "firing", "labels": {"alertname": "X", "severity": "critical"}, "annotations": {"summary": "s"},
    "startsAt": "2024-05-01T10:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p/g",
    "fingerprint": "0123456789abcdef", "receiver": "aegis", "groupKey": "{}:{}", "externalURL": "http://am",
    "alertname": "X", "repeat": False, "incident_id": "inc-0123456789abcdef",
}  # fmt: skip
SMALL_SCHEMA = {
    "type": "object",
    "required": ["n"],
    "properties": {
        "n": {"type": "integer", "minimum": 0, "maximum": 10},
        "name": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2, "required": True},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}, "maxItems": 3},
        "when": {"type": ["string", "null"]},
        "ratio": {"type": "number"},
        "code": {"pattern": "^[0-9a-z]+$", "maxLength": 3},  # untyped: constrains strings only
        "level": {"enum": [1, "1", None, "abc"]},  # mixed types: 1 is not "1"
        "kind": {"type": "string", "enum": ["abc", "ABC"]},
    },
    "additionalProperties": {"type": "boolean"},
}


def jsonschema_valid(payload, schema) -> bool:
    return not list(St2Validator(schema).iter_errors(payload))


def mutations(base: dict, rng: random.Random, count: int):
    junk = [None, True, 0, 1, 1.5, -3, "", "abc", "ABC", [], ["a"], ["c"], {}, {"x": 1}, "2024-01-01"]
    for _ in range(count):
        payload = copy.deepcopy(base)
        for _ in range(rng.randint(1, 3)):
            roll = rng.random()
            keys = list(payload)
            if roll < 0.3 and keys:
                payload.pop(rng.choice(keys))
            elif roll < 0.7 and keys:
                payload[rng.choice(keys)] = rng.choice(junk)
            else:
                payload[rng.choice(["extra", "other", "labels", "tags"])] = rng.choice(junk)
        yield payload


@pytest.mark.parametrize(
    ("schema", "base"),
    [(ALERT_SCHEMA, ALERT), (SMALL_SCHEMA, {"n": 3, "name": "ok", "tags": ["a"], "when": None, "ratio": 2, "flag": True,
                     "code": "12", "level": "1", "kind": "abc"})],
    ids=["aegis.alert", "small"],
)
def test_fast_path_only_says_valid_when_jsonschema_agrees(schema, base):
    assert _fast_valid(base, schema) and jsonschema_valid(base, schema)
    rng = random.Random(1234)
    disagreements = [p for p in mutations(base, rng, 3000) if _fast_valid(p, schema) and not jsonschema_valid(p, schema)]
    assert disagreements == []
    # and every payload gets the same verdict from payload_errors as from jsonschema
    for payload in mutations(base, random.Random(99), 500):
        assert (payload_errors(payload, schema) == []) == jsonschema_valid(payload, schema)


def test_draft3_required_flag_is_enforced():
    errors = payload_errors({"n": 1}, SMALL_SCHEMA)
    assert errors == ["name: 'name' is a required property"]


def test_errors_name_the_path():
    errors = payload_errors({"n": 11, "name": "ok", "tags": ["a", "z"]}, SMALL_SCHEMA)
    assert any(e.startswith("n: 11 is greater than the maximum") for e in errors)
    assert any(e.startswith("tags.1: 'z' is not one of") for e in errors)


def test_unknown_keywords_go_to_jsonschema():
    schema = {"type": "object", "properties": {"a": {"type": "string", "format": "email"}}, "dependencies": {"a": ["b"]}}
    assert not _fast_valid({"a": "x"}, schema)
    assert payload_errors({"a": "x"}, schema) == ["(root): 'b' is a dependency of 'a'"]


def test_defaults_are_filled_recursively_before_validation():
    schema = {"type": "object", "properties": {"a": {"type": "integer", "default": 1},
              "o": {"type": "object", "properties": {"b": {"type": "string", "default": "x"}}}}}  # fmt: skip
    assert with_defaults({"o": {}}, schema) == {"a": 1, "o": {"b": "x"}}
    assert with_defaults({"a": None}, schema) == {"a": 1}
