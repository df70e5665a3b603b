"""Action parameter schemas and validation, as st2 checks an execution request.

Mirrors st2common/util/schema (``get_schema_for_action_parameters``,
``assign_default_values``, ``modify_schema_allow_default_none``, ``validate``) and the
immutable check of st2common/services/action.py ``create_request``.

    >>> schema = merged_parameter_schema(
    ...     {"timeout": {"type": "integer", "default": 60}},
    ...     {"target": {"type": "string", "required": True},
    ...      "mode": {"type": "string", "enum": ["dry", "live"], "default": "dry"},
    ...      "token": {"type": "string", "secret": True}},
    ... )
    >>> validate_parameters(schema, {"target": "web-1", "token": "s3cr3t"})
    {'target': 'web-1', 'token': 's3cr3t', 'timeout': 60, 'mode': 'dry'}
    >>> mask_secrets(schema, {"target": "web-1", "token": "s3cr3t"})
    {'target': 'web-1', 'token': '********'}
    >>> validate_parameters(schema, {"target": "web-1", "count": 2})
    Traceback (most recent call last):
    ...
    st2lite.params.ParameterValidationError: unexpected parameter 'count'

Value checks beyond the basics (``minimum``, ``pattern``, ``items``...) use st2's own
validator (draft 4 keywords with draft 3 ``required``), ``pack_runtime.schema.St2Validator``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from st2lite.pack_env.pack_runtime.schema import St2Validator

__all__ = [
    "MASKED_ATTRIBUTE_VALUE",
    "RUNNER_PARAM_OVERRIDABLE_ATTRS",
    "ParameterSchemaError",
    "ParameterValidationError",
    "mask_secrets",
    "merged_parameter_schema",
    "validate_parameters",
]

#: st2common/constants/secrets.py
MASKED_ATTRIBUTE_VALUE = "********"

#: The attributes of a runner parameter that an action may override (st2's list).
RUNNER_PARAM_OVERRIDABLE_ATTRS = ("default", "description", "enum", "immutable", "required")

SIMPLE_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")

#: st2's schema for a parameter defined without any attribute: any non-null JSON value.
SCHEMA_ANY_TYPE = {
    "anyOf": [{"type": t} for t in ("array", "boolean", "integer", "number", "object", "string")]
}


class ParameterValidationError(ValueError):
    """Provided parameters do not satisfy the action's parameters; ``errors`` lists each."""

    def __init__(self, errors: str | list[str]) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors))


class ParameterSchemaError(ValueError):
    """The parameter definitions themselves are invalid (bad type, forbidden override)."""


def _deep_update(target: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in source.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _check_definition(name: str, spec: Any) -> None:
    if spec is None:
        return
    if not isinstance(spec, Mapping):
        raise ParameterSchemaError(
            f"parameter {name!r}: definition must be a mapping, got {type(spec).__name__}"
        )
    kind = spec.get("type")
    if kind is None:
        return
    if isinstance(kind, list):
        # st2's action_params schema: an action parameter has one type, not a list.
        raise ParameterSchemaError(
            f"parameter {name!r}: 'type' must be one of {list(SIMPLE_TYPES)}, not a list"
        )
    if kind not in SIMPLE_TYPES:
        raise ParameterSchemaError(
            f"parameter {name!r}: unknown type {kind!r}; expected one of {list(SIMPLE_TYPES)}"
        )


def merged_parameter_schema(
    runner_params: Mapping[str, Any] | None,
    action_params: Mapping[str, Any] | None,
    action_ref: str = "<action>",
) -> dict[str, dict[str, Any]]:
    """Runner parameters deep-merged with the action's (the action's attributes win).

    An action may only change ``default``, ``description``, ``enum``, ``immutable`` and
    ``required`` of a runner parameter; changing anything else (``type``...) is a
    ``ParameterSchemaError``, as st2 refuses to register such an action.
    """
    runner_params = runner_params or {}
    action_params = action_params or {}
    for name, spec in list(runner_params.items()) + list(action_params.items()):
        _check_definition(name, spec)
    for name, spec in action_params.items():
        if name not in runner_params or not spec:
            continue
        runner_spec = runner_params[name] or {}
        for attr, value in spec.items():
            if attr not in RUNNER_PARAM_OVERRIDABLE_ATTRS and runner_spec.get(attr) != value:
                raise ParameterSchemaError(
                    f'The attribute "{attr}" for the runner parameter "{name}" in action'
                    f' "{action_ref}" cannot be overridden.'
                )
    merged: dict[str, Any] = {}
    _deep_update(merged, {k: dict(v or {}) for k, v in runner_params.items()})
    _deep_update(merged, {k: dict(v or {}) for k, v in action_params.items()})
    return merged


def _value_schema(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema one value is checked against (st2's allow_default_none rules)."""
    if not spec:
        schema: dict[str, Any] = copy.deepcopy(SCHEMA_ANY_TYPE)
    else:
        schema = {k: copy.deepcopy(v) for k, v in spec.items() if k != "required"}
    optional = not spec.get("required", False)
    if ("default" in spec or optional) and spec.get("default") is None:
        # st2 modify_schema_allow_default_none: None is accepted for an optional
        # parameter, or one whose default is None. Note st2 assumes "string" for a
        # parameter that has attributes but no type.
        if "anyOf" in schema:
            schema["anyOf"].append({"type": "null"})
        elif "oneOf" in schema:
            schema["oneOf"].append({"type": "null"})
        else:
            kind = schema.get("type", "string")
            if kind != "null":
                schema["type"] = [kind, "null"]
    return schema


def _error_message(name: str, spec: Mapping[str, Any], error: Any) -> str:
    path = "".join(f"[{p!r}]" for p in error.path)
    message = error.message
    if error.validator == "type" and not error.path and isinstance(spec.get("type"), str):
        # Name the declared type, not the internal "type or null" schema.
        message = f"{error.instance!r} is not of type {spec['type']!r}"
    return f"parameter {name!r}{path}: {message}"


def validate_parameters(
    schema: Mapping[str, Mapping[str, Any]], provided: Mapping[str, Any]
) -> dict[str, Any]:
    """Check ``provided`` against a parameter schema and return them with defaults applied.

    ``schema`` maps parameter names to st2 parameter definitions (``merged_parameter_schema``).
    Unknown parameters, missing required ones, wrong types, values outside ``enum`` and
    overriding an ``immutable`` parameter are errors; all are reported together in one
    ``ParameterValidationError``. A default fills a parameter that is absent or None.
    An empty schema accepts anything, as st2's does.
    """
    for name, spec in schema.items():
        _check_definition(name, spec)
    result = copy.deepcopy(dict(provided))
    if not schema:
        return result

    errors: list[str] = []
    for name in provided:
        if name not in schema:
            errors.append(f"unexpected parameter {name!r}")

    for name, spec in schema.items():
        spec = spec or {}
        if "default" in spec and result.get(name) is None:
            result[name] = copy.deepcopy(spec["default"])
        if name not in result:
            if spec.get("required", False):
                errors.append(f"missing required parameter {name!r}")
            continue
        validator = St2Validator(_value_schema(spec))
        for error in sorted(validator.iter_errors(result[name]), key=lambda e: list(e.path)):
            errors.append(_error_message(name, spec, error))

    # st2 create_request: overriding an immutable parameter is refused, even with the
    # same value, rather than silently ignored.
    immutable = [name for name in provided if (schema.get(name) or {}).get("immutable", False)]
    for name in immutable:
        errors.append(f"parameter {name!r} is immutable and cannot be overridden")

    if errors:
        raise ParameterValidationError(errors)
    return result


def _mask(spec: Mapping[str, Any], value: Any) -> Any:
    if spec.get("secret", False):
        return MASKED_ATTRIBUTE_VALUE
    kind = spec.get("type")
    if kind == "object" and isinstance(value, dict):
        props = spec.get("properties") or {}
        extra = spec.get("additionalProperties")
        masked = {}
        for key, item in value.items():
            sub = props.get(key) or (extra if isinstance(extra, Mapping) else {})
            masked[key] = _mask(sub, item)
        return masked
    if kind == "array" and isinstance(value, list) and isinstance(spec.get("items"), Mapping):
        return [_mask(spec["items"], item) for item in value]
    return value


def mask_secrets(schema: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with ``secret: true`` parameters (also nested ones) masked.

    For execution records and logs; the action itself gets the real values.
    """
    return {name: _mask(schema.get(name) or {}, value) for name, value in values.items()}
