"""Payload validation the way st2 does it (``CustomValidator`` in st2common/util/schema).

st2 validates with draft-4 keywords but draft-3's ``properties`` rule, so a property may
say ``required: true``. Works with any installed ``jsonschema`` (2.6 in the runtime's
environment, 4.x in a pack's).
"""

from __future__ import annotations

import json
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


def payload_errors(payload: Any, schema: dict[str, Any]) -> list[str]:
    """Every way ``payload`` fails ``schema``, as ``path: message`` strings (empty when valid)."""
    if not schema:
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
