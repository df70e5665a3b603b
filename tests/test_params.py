"""Action parameter schemas: merging, validation messages, defaults, immutables, secrets."""

from __future__ import annotations

import pytest

from st2lite.params import (
    MASKED_ATTRIBUTE_VALUE,
    ParameterSchemaError,
    ParameterValidationError,
    mask_secrets,
    merged_parameter_schema,
    validate_parameters,
)

RUNNER = {
    "timeout": {"type": "integer", "default": 60, "description": "seconds"},
    "env": {"type": "object", "description": "environment"},
    "sudo": {"type": "boolean", "default": False, "immutable": True},
}
ACTION = {
    "target": {"type": "string", "required": True},
    "count": {"type": "integer", "default": 1, "minimum": 1},
    "mode": {"type": "string", "enum": ["dry", "live"], "default": "dry"},
    "token": {"type": "string", "secret": True},
    "ratio": {"type": "number"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "nothing": {"type": "null"},
    "timeout": {"default": 30},
}


@pytest.fixture()
def schema():
    return merged_parameter_schema(RUNNER, ACTION, "aegis.restart")


def _errors(schema, provided):
    with pytest.raises(ParameterValidationError) as info:
        validate_parameters(schema, provided)
    return info.value


def test_action_overrides_runner_attributes(schema):
    assert schema["timeout"] == {"type": "integer", "default": 30, "description": "seconds"}
    assert schema["sudo"]["immutable"] is True
    assert set(schema) == set(RUNNER) | set(ACTION)
    # The inputs are not modified.
    assert RUNNER["timeout"]["default"] == 60


@pytest.mark.parametrize("attr", ["type", "secret", "position"])
def test_non_overridable_runner_attributes(attr):
    with pytest.raises(ParameterSchemaError) as info:
        merged_parameter_schema(
            {"timeout": {"type": "integer"}}, {"timeout": {attr: "string"}}, "aegis.restart"
        )
    assert (
        f'"{attr}"' in str(info.value)
        and '"timeout"' in str(info.value)
        and "aegis.restart" in str(info.value)
    )


def test_same_value_for_non_overridable_attribute_is_allowed():
    merged = merged_parameter_schema({"t": {"type": "integer"}}, {"t": {"type": "integer", "default": 2}})
    assert merged["t"] == {"type": "integer", "default": 2}


@pytest.mark.parametrize("bad", [{"type": ["string", "null"]}, {"type": "text"}, "integer"])
def test_invalid_definitions(bad):
    with pytest.raises(ParameterSchemaError, match="'p'"):
        merged_parameter_schema({}, {"p": bad})


def test_defaults_are_applied(schema):
    result = validate_parameters(schema, {"target": "web-1"})
    assert result == {"target": "web-1", "timeout": 30, "sudo": False, "count": 1, "mode": "dry"}


def test_none_takes_the_default(schema):
    assert validate_parameters(schema, {"target": "web-1", "count": None})["count"] == 1


def test_optional_parameter_may_be_none(schema):
    assert validate_parameters(schema, {"target": "web-1", "ratio": None, "nothing": None})["ratio"] is None


def test_provided_values_are_kept(schema):
    provided = {"target": "web-1", "count": 3, "mode": "live", "ratio": 1, "tags": ["a"], "env": {"A": "1"}}
    result = validate_parameters(schema, provided)
    assert {k: result[k] for k in provided} == provided
    assert provided == {
        "target": "web-1",
        "count": 3,
        "mode": "live",
        "ratio": 1,
        "tags": ["a"],
        "env": {"A": "1"},
    }


@pytest.mark.parametrize(
    ("provided", "message"),
    [
        ({"target": "w", "count": "x"}, "parameter 'count': 'x' is not of type 'integer'"),
        ({"target": "w", "count": True}, "parameter 'count': True is not of type 'integer'"),
        ({"target": "w", "count": 1.5}, "parameter 'count': 1.5 is not of type 'integer'"),
        ({"target": "w", "ratio": "1.5"}, "parameter 'ratio': '1.5' is not of type 'number'"),
        ({"target": 7}, "parameter 'target': 7 is not of type 'string'"),
        ({"target": None}, "parameter 'target': None is not of type 'string'"),
        ({"target": "w", "env": []}, "parameter 'env': [] is not of type 'object'"),
        ({"target": "w", "tags": "a"}, "parameter 'tags': 'a' is not of type 'array'"),
        ({"target": "w", "nothing": 0}, "parameter 'nothing': 0 is not of type 'null'"),
        ({}, "missing required parameter 'target'"),
        ({"target": "w", "mode": "x"}, "parameter 'mode': 'x' is not one of ['dry', 'live']"),
        ({"target": "w", "sudo": True}, "parameter 'sudo' is immutable and cannot be overridden"),
        ({"target": "w", "sudo": False}, "parameter 'sudo' is immutable and cannot be overridden"),
        ({"target": "w", "zzz": 1}, "unexpected parameter 'zzz'"),
        ({"target": "w", "count": 0}, "parameter 'count': 0 is less than the minimum of 1"),
        ({"target": "w", "tags": ["a", 2]}, "parameter 'tags'[1]: 2 is not of type 'string'"),
    ],
)
def test_error_messages(schema, provided, message):
    error = _errors(schema, provided)
    assert error.errors == [message]
    assert str(error) == message


def test_all_errors_are_reported_together(schema):
    error = _errors(schema, {"count": "x", "zzz": 1, "sudo": True})
    assert sorted(error.errors) == sorted(
        [
            "unexpected parameter 'zzz'",
            "missing required parameter 'target'",
            "parameter 'count': 'x' is not of type 'integer'",
            "parameter 'sudo' is immutable and cannot be overridden",
        ]
    )
    assert isinstance(error, ValueError)


def test_empty_schema_accepts_anything():
    assert validate_parameters({}, {"anything": 1}) == {"anything": 1}


def test_untyped_parameter_accepts_any_value():
    schema = {"blob": {}}
    for value in ("s", 1, 1.5, True, [1], {"a": 1}, None):
        assert validate_parameters(schema, {"blob": value}) == {"blob": value}


def test_optional_parameter_without_type_is_string_as_in_st2():
    # st2 assumes "string" for a parameter with attributes but no type.
    schema = {"note": {"description": "free text"}}
    assert validate_parameters(schema, {"note": "x"}) == {"note": "x"}
    assert _errors(schema, {"note": 5}).errors == ["parameter 'note': 5 is not of type 'string', 'null'"]


def test_required_with_default_is_satisfied_by_the_default():
    schema = {"region": {"type": "string", "required": True, "default": "eu"}}
    assert validate_parameters(schema, {}) == {"region": "eu"}


def test_error_can_be_built_from_one_message():
    error = ParameterValidationError("action 'x.y' is not registered")
    assert error.errors == ["action 'x.y' is not registered"]
    assert str(error) == "action 'x.y' is not registered"


def test_mask_secrets(schema):
    values = {"target": "web-1", "token": "s3cr3t", "count": 2}
    assert mask_secrets(schema, values) == {"target": "web-1", "token": MASKED_ATTRIBUTE_VALUE, "count": 2}
    assert values["token"] == "s3cr3t"
    assert MASKED_ATTRIBUTE_VALUE == "********"


def test_mask_nested_secrets():
    schema = {
        "auth": {"type": "object", "properties": {"user": {"type": "string"}, "password": {"secret": True}}},
        "creds": {"type": "array", "items": {"type": "object", "properties": {"key": {"secret": True}}}},
        "headers": {"type": "object", "additionalProperties": {"type": "string", "secret": True}},
    }
    values = {
        "auth": {"user": "u", "password": "p"},
        "creds": [{"key": "k1", "id": 1}, {"key": "k2"}],
        "headers": {"Authorization": "Bearer x"},
        "unknown": "kept",
    }
    assert mask_secrets(schema, values) == {
        "auth": {"user": "u", "password": MASKED_ATTRIBUTE_VALUE},
        "creds": [{"key": MASKED_ATTRIBUTE_VALUE, "id": 1}, {"key": MASKED_ATTRIBUTE_VALUE}],
        "headers": {"Authorization": MASKED_ATTRIBUTE_VALUE},
        "unknown": "kept",
    }
