"""Payload validation the way st2 does it (``CustomValidator`` in st2common/util/schema).

st2 validates with draft-4 keywords but draft-3's ``properties`` rule, so a property may
say ``required: true``. Works with any installed ``jsonschema`` (2.6 in the runtime's
environment, 3.2 in st2's and the aegis pack's).

Payloads are checked first by a small fast path that understands the keywords trigger
schemas use (type, properties with draft-3 ``required``, ``required`` lists,
``additionalProperties``, enum, items, pattern, length and range bounds); it only ever
says "valid" when jsonschema would, and anything else (an invalid payload, a keyword it
does not know) goes to jsonschema, which also words the errors. At thousands of alerts a
second, jsonschema alone is most of a dispatch's cost; so is re-reading the schema for
each payload, so the fast path is compiled once per schema into closures.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
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
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        entry = _compiled[id(schema)] = (schema, _compile(schema))  # the schema is kept: its id stays unique
    return entry[1](value)


_compiled: dict[int, tuple[Any, Callable[[Any], bool]]] = {}


def _never(_value: Any) -> bool:
    return False


def _plain_string(schema: Any) -> bool:
    """``{"type": "string"}`` with nothing but annotations (and draft-3 ``required``) beside it."""
    return isinstance(schema, dict) and schema.get("type") == "string" and schema.keys() <= _ANNOTATIONS | {"type", "required"}


def _compile(schema: Any) -> Callable[[Any], bool]:
    """A checker for ``schema`` built once, so a payload costs no re-reading of the schema.

    Each keyword becomes a closure; the checker answers True only when every keyword holds,
    and a schema with a keyword the fast path does not know compiles to "ask jsonschema".
    """
    if not isinstance(schema, dict) or not schema.keys() <= _KNOWN:
        return _never
    checks: list[Callable[[Any], bool]] = []
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        tests = [_TYPE_CHECKS[n] for n in names if n in _TYPE_CHECKS]
        if len(tests) == 1:
            checks.append(tests[0])
        else:
            checks.append(lambda v: any(t(v) for t in tests))
    if "enum" in schema:
        choices = list(schema["enum"])
        if choices and all(type(c) is str for c in choices):  # the usual enum: a set lookup
            strings_allowed = frozenset(choices)
            checks.append(lambda v: type(v) is str and v in strings_allowed)
        else:
            checks.append(lambda v: any(v == c and type(v) is type(c) for c in choices))
    if "pattern" in schema or "minLength" in schema or "maxLength" in schema:
        try:
            pattern = re.compile(schema["pattern"]) if "pattern" in schema else None
        except (re.error, TypeError):
            return _never
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        # With ``type: string`` the type check is this closure's first line, not a closure.
        typed = checks == [_TYPE_CHECKS["string"]]

        def string_ok(v: Any) -> bool:
            if not isinstance(v, str):
                return not typed
            if pattern is not None and not pattern.search(v):
                return False
            return low <= len(v) and (high is None or len(v) <= high)

        if typed:
            checks = []
        checks.append(string_ok)
    if "minimum" in schema or "maximum" in schema:
        minimum, maximum = schema.get("minimum"), schema.get("maximum")

        def number_ok(v: Any) -> bool:
            if not isinstance(v, int | float) or isinstance(v, bool):
                return True
            return (minimum is None or v >= minimum) and (maximum is None or v <= maximum)

        checks.append(number_ok)
    if "items" in schema or "minItems" in schema or "maxItems" in schema:
        items = schema.get("items")
        if items is not None and not isinstance(items, dict):
            return _never  # tuple validation and the like: jsonschema's job
        item_ok = _compile(items) if items is not None else None
        low_items, high_items = schema.get("minItems", 0), schema.get("maxItems")

        def array_ok(v: Any) -> bool:
            if not isinstance(v, list):
                return True
            if len(v) < low_items or (high_items is not None and len(v) > high_items):
                return False
            return item_ok is None or all(item_ok(x) for x in v)

        checks.append(array_ok)
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(properties, dict) or not isinstance(required, list | bool):
            return _never
        needed = list(required) if isinstance(required, list) else []
        needed += [n for n, p in properties.items() if isinstance(p, dict) and p.get("required") is True]
        # The common shapes get no closure of their own: a plain string property, and a map
        # of strings (additionalProperties: {type: string}); the rest is compiled.
        strings = tuple(n for n, p in properties.items() if _plain_string(p))
        property_checks = [(n, _compile(p)) for n, p in properties.items() if n not in strings]
        extra = schema.get("additionalProperties", True)
        known = frozenset(properties)
        extra_ok = None if extra is True else (_never if extra is False else _compile(extra))
        closed, string_values = extra is False, _plain_string(extra)

        needed_keys = frozenset(needed)

        def object_ok(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            keys = v.keys()
            if not keys >= needed_keys or (closed and not keys <= known):
                return False
            for name in strings:
                if name in v and not isinstance(v[name], str):
                    return False
            for name, check in property_checks:
                if name in v and not check(v[name]):
                    return False
            if string_values:
                for name, item in v.items():
                    if not isinstance(item, str) and name not in known:
                        return False
            elif extra_ok is not None and not closed:
                for name, item in v.items():
                    if name not in known and not extra_ok(item):
                        return False
            return True

        if expected == "object" and len(checks) == 1:  # the type check is object_ok's first line
            checks = [lambda v: isinstance(v, dict) and object_ok(v)]
        else:
            checks.append(object_ok)
    if not checks:
        return lambda _v: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:  # the usual pair (a type and one constraint): no generator per value
        first, second = checks
        return lambda v: first(v) and second(v)

    def all_ok(v: Any) -> bool:
        for check in checks:
            if not check(v):
                return False
        return True

    return all_ok


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
    if not isinstance(instance, dict) or not isinstance(schema, dict) or not _has_defaults(schema):
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


_defaults_cache: dict[int, tuple[Any, bool]] = {}


def _has_defaults(schema: dict[str, Any]) -> bool:
    """Whether any property at any depth of ``schema`` has a default (cached per schema)."""
    entry = _defaults_cache.get(id(schema))
    if entry is None or entry[0] is not schema:
        found = "\"default\"" in json.dumps(schema, default=str)
        entry = _defaults_cache[id(schema)] = (schema, found)
    return entry[1]
