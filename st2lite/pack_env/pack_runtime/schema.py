"""Payload validation the way st2 does it (``CustomValidator`` in st2common/util/schema).

st2 validates with draft-4 keywords but draft-3's ``properties`` rule, so a property may
say ``required: true``. Works with any installed ``jsonschema`` (2.6 in the runtime's
environment, 3.2 in st2's and the aegis pack's).

Payloads are checked first by a small fast path that understands the keywords trigger
schemas use (type, properties with draft-3 ``required``, ``required`` lists,
``additionalProperties``, enum, items, pattern, length and range bounds); it only ever
says "valid" when jsonschema would, and anything else (an invalid payload, a keyword it
does not know) goes to jsonschema, which also words the errors. At thousands of alerts a
second, jsonschema alone is most of a dispatch's cost.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from jsonschema import Draft3Validator, Draft4Validator

_draft4_required = Draft4Validator.VALIDATORS["required"]


def _required_list_only(validator: Any, required: Any, instance: Any, schema: Any):
    # A boolean ``required`` is the draft-3 flag, already enforced by ``properties``.
    if isinstance(required, list):
        yield from _draft4_required(validator, required, instance, schema)


St2Validator = jsonschema.validators.extend(
    Draft4Validator,
    {"properties": Draft3Validator.VALIDATORS["properties"], "required": _required_list_only},
)


_validators: dict[str, Any] = {}  # one compiled validator per schema, not one per payload

_TYPE_CHECKS = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "null": lambda v: v is None,
}
_ANNOTATIONS = {"description", "title", "default", "examples", "$schema", "id", "secret", "immutable", "position"}
_KNOWN = _ANNOTATIONS | {"type", "properties", "required", "additionalProperties", "enum", "items", "pattern",
                         "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems"}  # fmt: skip


def _fast_valid(value: Any, schema: Any) -> bool:
    """True only when ``value`` certainly satisfies ``schema``; False means "ask jsonschema"."""
    if not isinstance(schema, dict) or not schema.keys() <= _KNOWN:
        return False
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(n in _TYPE_CHECKS and _TYPE_CHECKS[n](value) for n in names):
            return False
    if "enum" in schema and not any(value == c and type(value) is type(c) for c in schema["enum"]):
        return False
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            return False
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            return False
        items = schema.get("items")
        if items is not None and not (isinstance(items, dict) and all(_fast_valid(v, items) for v in value)):
            return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(properties, dict) or not isinstance(required, list | bool):
            return False
        if isinstance(required, list) and not all(name in value for name in required):
            return False
        for name, prop in properties.items():
            if name in value:
                if not _fast_valid(value[name], prop):
                    return False
            elif isinstance(prop, dict) and prop.get("required") is True:
                return False
        extra = schema.get("additionalProperties", True)
        if extra is not True:
            for name, item in value.items():
                if name in properties:
                    continue
                if extra is False or not _fast_valid(item, extra):
                    return False
    return True


def payload_errors(payload: Any, schema: dict[str, Any]) -> list[str]:
    """Every way ``payload`` fails ``schema``, as ``path: message`` strings (empty when valid)."""
    if not schema or _fast_valid(payload, schema):
        return []
    key = json.dumps(schema, sort_keys=True, default=str)
    validator = _validators.get(key)
    if validator is None:
        validator = _validators[key] = St2Validator(schema)
    errors = []
    for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.path)):
        path = ".".join(str(p) for p in error.path) or "(root)"
        errors.append(f"{path}: {error.message}")
    return errors


def with_defaults(instance: Any, schema: dict[str, Any]) -> Any:
    """A copy of ``instance`` with the schema's property defaults filled in, recursively.

    st2 validates trigger payloads with ``use_default=True``: a property that is absent
    (or null, with ``allow_default_none``) takes its schema default before validation.
    """
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return instance
    filled = dict(instance)
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if filled.get(name) is None and "default" in prop:
            filled[name] = prop["default"]
        if name in filled:
            filled[name] = with_defaults(filled[name], prop)
    return filled
