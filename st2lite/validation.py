"""``aegis validate [PACK_DIR]``: check a pack as st2 would when it registers and runs it.

Three layers, all reported as :class:`~st2lite.loader.Problem` (``file: field: message``):

1. what the loader could not read (:func:`st2lite.loader.load_pack`);
2. every metadata file against StackStorm's published JSON schemas (``contrib/schemas`` of
   st2; found through ``schemas_dir``, ``$ST2_SCHEMAS_DIR`` or a ``shared/st2-schemas``
   directory beside an ancestor of the pack or of the working directory), with st2's
   validator semantics: draft-4 keywords plus draft-3 ``properties``, so a property's
   ``required: true`` counts. Without the schemas a built-in structural check (required
   fields, allowed top-level keys, their types) stands in and the report says so;
3. what only makes sense across files: entry points exist and define what st2 loads, rules
   name existing actions, trigger types and criteria operators, aliases and policies point
   at existing actions, policy types and parameters, the config schema's form, example
   configs, and every Orquesta workflow passes orquesta's inspection.

Usage::

    from st2lite.validation import validate_pack
    for problem in validate_pack("packs/aegis"):
        print(problem)

    $ aegis validate packs/aegis          # or: python -m st2lite.validation packs/aegis
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, RefResolver
from jsonschema.exceptions import RefResolutionError, SchemaError, UnknownType, best_match

from st2lite.loader import (
    Pack,
    PackLoadError,
    Problem,
    load_pack,
    read_metadata_file,
    resource_files,
    schema_failure_reason,
)
from st2lite.pack_env.pack_runtime.schema import St2Validator
from st2lite.untrusted import rule_warnings

__all__ = [
    "KINDS",
    "ValidationReport",
    "check_pack",
    "find_schemas_dir",
    "load_schemas",
    "main",
    "metadata_schema_problems",
    "registered_content",
    "validate_pack",
]

#: Resource directory -> schema name (``<name>.json``); ``pack.yaml`` is kind ``pack``.
KINDS = {"actions": "action", "sensors": "sensor", "rules": "rule", "aliases": "alias", "policies": "policy"}
SCHEMA_NAMES = ("pack", *KINDS.values())

# Built-in stand-in for the schemas: required fields and allowed top-level keys with their
# JSON types (field names as in st2's API models; README of the vendored schemas).
_S, _B, _O, _A, _N = "string", "boolean", "object", "array", "number"
_FALLBACK_FIELDS: dict[str, tuple[tuple[str, ...], dict[str, str], bool]] = {
    "pack": (
        ("name", "description", "version", "author"),
        {"id": _S, "name": _S, "ref": _S, "uid": _S, "description": _S, "keywords": _A, "version": _S,
         "stackstorm_version": _S, "python_versions": _A, "author": _S, "email": _S, "contributors": _A,
         "files": _A, "dependencies": _A, "system": _O, "path": _S},
        True,
    ),
    "action": (
        ("name", "runner_type"),
        {"id": _S, "ref": _S, "uid": _S, "name": _S, "description": _S, "enabled": _B, "runner_type": _S,
         "entry_point": _S, "pack": _S, "parameters": _O, "output_schema": _O, "tags": _A, "notify": _O,
         "metadata_file": _S},
        False,
    ),
    "alias": (
        ("name", "pack", "action_ref"),
        {"id": _S, "ref": _S, "uid": _S, "name": _S, "pack": _S, "description": _S, "enabled": _B,
         "action_ref": _S, "formats": _A, "ack": _O, "result": _O, "extra": _O, "immutable_parameters": _O,
         "metadata_file": _S},
        False,
    ),
    "rule": (
        ("name", "trigger", "action"),
        {"id": _S, "ref": _S, "uid": _S, "name": _S, "pack": _S, "description": _S, "type": _O, "trigger": _O,
         "criteria": _O, "action": _O, "enabled": _B, "context": _O, "tags": _A, "metadata_file": _S},
        False,
    ),
    "sensor": (
        ("class_name",),
        {"id": _S, "ref": _S, "uid": _S, "class_name": _S, "pack": _S, "description": _S, "artifact_uri": _S,
         "entry_point": _S, "enabled": _B, "trigger_types": _A, "poll_interval": _N, "metadata_file": _S},
        False,
    ),
    "policy": (
        ("name", "resource_ref", "policy_type"),
        {"id": _S, "uid": _S, "name": _S, "pack": _S, "ref": _S, "description": _S, "enabled": _B,
         "resource_ref": _S, "policy_type": _S, "parameters": _O, "metadata_file": _S},
        False,
    ),
}  # fmt: skip
_SEMVER = r"^(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)(?:-[\da-z\-]+(?:\.[\da-z\-]+)*)?(?:\+[\da-z\-]+(?:\.[\da-z\-]+)*)?$"

#: Packs every st2 install has; refs into them cannot be checked from here and are accepted.
SYSTEM_PACKS = frozenset({"core", "chatops", "default", "linux", "packs", "st2"})

#: st2's internal trigger types (st2common/constants/triggers.py), with the parameters
#: schema of the ones a rule must parameterise.
SYSTEM_TRIGGER_TYPES: dict[str, dict[str, Any] | None] = {
    "core.st2.generic.actiontrigger": None,
    "core.st2.generic.notifytrigger": None,
    "core.st2.action.file_written": None,
    "core.st2.generic.inquiry": None,
    "core.st2.key_value_pair.create": None,
    "core.st2.key_value_pair.update": None,
    "core.st2.key_value_pair.value_change": None,
    "core.st2.key_value_pair.delete": None,
    "core.st2.sensor.process_spawn": None,
    "core.st2.sensor.process_exit": None,
    "core.st2.webhook": {
        "type": "object",
        "properties": {"url": {"type": "string", "required": True}},
        "additionalProperties": False,
    },
    "core.st2.IntervalTimer": {
        "type": "object",
        "properties": {
            "timezone": {"type": "string"},
            "unit": {
                "enum": ["weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds"],
                "required": True,
            },
            "delta": {"type": "integer", "required": True},
        },
        "additionalProperties": False,
    },
    "core.st2.DateTimer": {
        "type": "object",
        "properties": {"timezone": {"type": "string"}, "date": {"type": "string", "required": True}},
        "additionalProperties": False,
    },
    "core.st2.CronTimer": {
        "type": "object",
        "properties": {
            key: {"anyOf": [{"type": "string"}, {"type": "integer"}]}
            for key in ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")
        }
        | {"timezone": {"type": "string"}},
        "additionalProperties": False,
    },
}

#: st2's policy types and their parameters (st2common/policies/meta/*.yaml).
POLICY_TYPES: dict[str, dict[str, Any]] = {
    "action.concurrency": {
        "action": {"type": "string", "enum": ["delay", "cancel"]},
        "threshold": {"type": "integer", "required": True},
    },
    "action.concurrency.attr": {
        "action": {"type": "string", "enum": ["delay", "cancel"]},
        "threshold": {"type": "integer", "required": True},
        "attributes": {"type": "array", "items": {"type": "string"}, "required": True},
    },
    "action.retry": {
        "retry_on": {"type": "string", "enum": ["failure", "timeout"], "required": True},
        "max_retry_count": {"type": "integer"},
        "delay": {"type": "number"},
    },
}

#: Runner parameters an action accepts besides its own (contrib/runners/*/runner.yaml), for
#: the runner types whose list is known here; others are not checked for unknown parameters.
RUNNER_PARAMETERS: dict[str, frozenset[str]] = {
    "python-script": frozenset({"debug", "content_version", "env", "timeout", "log_level"}),
    "orquesta": frozenset(),
    "noop": frozenset(),
    "inquirer": frozenset({"schema", "roles", "users", "route", "ttl"}),
    "local-shell-cmd": frozenset({"cmd", "cwd", "env", "kwarg_op", "sudo", "sudo_password", "timeout"}),
    "local-shell-script": frozenset(
        {"cwd", "env", "kwarg_op", "sudo", "sudo_password", "timeout", "content_version"}
    ),
}

# Used only while st2lite.criteria is not importable: st2's operator names and aliases
# (st2common/operators.py).
_FALLBACK_OPERATORS = frozenset(
    {
        "equals", "eq", "nequals", "neq", "iequals", "ieq", "contains", "icontains", "ncontains",
        "incontains", "startswith", "istartswith", "endswith", "iendswith", "lessthan", "lt",
        "greaterthan", "gt", "matchwildcard", "matchregex", "regex", "iregex", "timediff_lt", "td_lt",
        "timediff_gt", "td_gt", "exists", "nexists", "inside", "in", "ninside", "nin", "search",
    }
)  # fmt: skip
_SEARCH_CONDITIONS = ("any", "all", "all2any", "any2any")
# Patterns of the schemas whose raw regex would make an unreadable message.
_PATTERN_NAMES = {
    _SEMVER: "a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.0)",
    r"^[a-z0-9_]+$": "a valid ref (lowercase letters, digits and _)",
    r"^((>?>|>=|=|<=|<?<)\s*[0-9]+\.[0-9]+\.[0-9]+?(\s*,)?\s*)+$": 'a version range such as ">=3.8.0, <4.0.0"',
}
_SCHEMA_KEYWORDS = frozenset(Draft4Validator.META_SCHEMA["properties"]) | {"secret", "position", "immutable"}
_DRAFT4_ID = "http://json-schema.org/draft-04/schema"
_ALIAS_PARAM_RE = re.compile(r"\{\{\s*(\w+)\s*(?:=|\}\})")


# --------------------------------------------------------------------------- schemas


def find_schemas_dir(pack_dir: str | Path | None = None, explicit: str | Path | None = None) -> Path | None:
    """Where the st2 schemas are: ``explicit``, else ``$ST2_SCHEMAS_DIR``, else the first
    ``shared/st2-schemas`` found beside an ancestor of ``pack_dir`` or of the working directory.

    A directory counts only when it holds all six ``<kind>.json`` files.
    """

    def complete(path: Path) -> bool:
        return all((path / f"{name}.json").is_file() for name in SCHEMA_NAMES)

    for given in (explicit, os.environ.get("ST2_SCHEMAS_DIR")):
        if given:
            path = Path(given).expanduser().resolve()
            return path if complete(path) else None
    starts = [Path(pack_dir).resolve()] if pack_dir is not None else []
    starts.append(Path.cwd().resolve())
    for start in starts:
        for ancestor in (start, *start.parents):
            candidate = ancestor / "shared" / "st2-schemas"
            if complete(candidate):
                return candidate
    return None


def _meta_schema_for_refs(param_meta: dict[str, Any] | None) -> dict[str, Any]:
    """The meta-schema st2 resolves ``{"$ref": "#"}`` to inside a parameter's schema.

    st2 registers its CustomValidator under the draft-04 id, so in an st2 process the draft-04
    meta-schema *is* st2's: a boolean ``required``, ``secret``, ``position``, ``immutable``
    and no ban on other keys. Derived here from the vendored action schema's parameter
    meta-schema (or from plain draft-04 without it) so nested ``properties`` of an object
    parameter may say ``required: true`` exactly as on st2.
    """
    if param_meta is None:
        meta = copy.deepcopy(Draft4Validator.META_SCHEMA)
        meta["properties"]["required"] = {
            "anyOf": [{"type": "boolean"}, {"$ref": "#/definitions/stringArray"}]
        }
        return meta
    meta = copy.deepcopy(param_meta)
    meta.pop("additionalProperties", None)
    meta["properties"]["type"] = {
        "anyOf": [
            {"$ref": "#/definitions/simpleTypes"},
            {
                "type": "array",
                "items": {"$ref": "#/definitions/simpleTypes"},
                "minItems": 1,
                "uniqueItems": True,
            },
        ]
    }
    return meta


@dataclass
class Schemas:
    """The schema per metadata kind, and where they came from (None: built-in fallback)."""

    by_kind: dict[str, dict[str, Any]]
    source: Path | None
    ref_meta: dict[str, Any]

    def validator(self, schema: dict[str, Any]) -> Any:
        resolver = RefResolver.from_schema(
            schema, store={_DRAFT4_ID: self.ref_meta, _DRAFT4_ID + "#": self.ref_meta}
        )
        return St2Validator(schema, resolver=resolver)

    @property
    def config_schema_form(self) -> dict[str, Any]:
        """What st2's ConfigSchemaAPI requires of ``config.schema.yaml``: a mapping of
        ``\\w+`` keys, each a parameter schema (the same form as action parameters)."""
        action = self.by_kind.get("action", {})
        parameters = action.get("properties", {}).get("parameters")
        if self.source is not None and isinstance(parameters, dict):
            return parameters
        return {
            "type": "object",
            "patternProperties": {r"^\w+$": self.ref_meta},
            "additionalProperties": False,
        }


def _fallback_schema(kind: str) -> dict[str, Any]:
    required, types, extra_allowed = _FALLBACK_FIELDS[kind]
    properties: dict[str, Any] = {key: {"type": t, "required": key in required} for key, t in types.items()}
    if kind == "pack":
        properties["version"]["pattern"] = _SEMVER
        properties["ref"]["pattern"] = r"^[a-z0-9_]+$"
    return {"type": "object", "properties": properties, "additionalProperties": extra_allowed}


def load_schemas(schemas_dir: Path | None) -> Schemas:
    """Read ``<kind>.json`` from ``schemas_dir``; without one, the built-in structural schemas."""
    if schemas_dir is None:
        return Schemas(
            {kind: _fallback_schema(kind) for kind in SCHEMA_NAMES}, None, _meta_schema_for_refs(None)
        )
    by_kind = {}
    for kind in SCHEMA_NAMES:
        with open(schemas_dir / f"{kind}.json", encoding="utf-8") as handle:
            by_kind[kind] = json.load(handle)
    param_meta = by_kind["action"]["properties"]["parameters"]["patternProperties"][r"^\w+$"]
    return Schemas(by_kind, schemas_dir, _meta_schema_for_refs(param_meta))


def _join(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


def _errors_to_problems(errors: Iterable[Any], file: str, prefix: str = "") -> list[Problem]:
    """jsonschema errors -> problems with a dotted field path; one problem per unknown key."""
    problems = []
    base = prefix.split(".") if prefix else []
    try:
        ordered = sorted(errors, key=lambda e: [str(p) for p in e.path])
    except (SchemaError, UnknownType, RefResolutionError) as exc:
        # The schema itself is unusable (a pack's own payload/parameters schema can be).
        return [Problem(file, prefix, f"schema is invalid: {schema_failure_reason(exc)}")]
    for error in ordered:
        path = base + list(error.path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = set((error.schema.get("properties") or {}).keys())
            patterns = list((error.schema.get("patternProperties") or {}).keys())
            extras = [
                k for k in error.instance if k not in known and not any(re.search(p, k) for p in patterns)
            ]
            for key in extras:
                problems.append(Problem(file, _join([*path, key]), f'unknown field "{key}"'))
            if extras:
                continue
        message = error.message
        if error.validator == "pattern" and error.validator_value in _PATTERN_NAMES:
            message = f"{error.instance!r} is not {_PATTERN_NAMES[error.validator_value]}"
        elif error.context:
            # anyOf/oneOf: the closest alternative says more than "not valid under any".
            deepest = best_match(error.context)
            message = f"{deepest.message} ({error.message})"
        problems.append(Problem(file, _join(path), message))
    return problems


def registered_content(kind: str, content: dict[str, Any], pack_ref: str) -> dict[str, Any]:
    """The document as st2's registrar validates it: it fills in ``pack`` first."""
    if kind == "pack" or content.get("pack"):
        return content
    return {**content, "pack": pack_ref}


def metadata_schema_problems(pack: Pack, schemas: Schemas) -> list[Problem]:
    """Every metadata file of ``pack`` against its st2 schema."""
    problems = []
    files: list[tuple[str, Path]] = [("pack", pack.path / "pack.yaml")]
    for directory, kind in KINDS.items():
        files += [(kind, path) for path in resource_files(pack.path, directory)]
    for kind, path in files:
        try:
            content = read_metadata_file(path)
        except ValueError:
            continue  # the loader already reported it
        if not isinstance(content, dict):
            continue
        validator = schemas.validator(schemas.by_kind[kind])
        instance = registered_content(kind, content, pack.ref)
        problems += _errors_to_problems(validator.iter_errors(instance), pack.relative(path))
    return problems


# --------------------------------------------------------------------------- python sources


@dataclass
class _Module:
    classes: dict[str, ast.ClassDef]
    imports: dict[str, tuple[str, str]]  # local name -> (module, original name)


def _parse_module(path: Path) -> _Module:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    imports: dict[str, tuple[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            module = "." * node.level + node.module
            for alias in node.names:
                imports[alias.asname or alias.name] = (module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                imports[alias.asname or alias.name.split(".")[0]] = (alias.name, "")
    return _Module(classes, imports)


class _ActionClassFinder:
    """Which classes of a python-script entry point subclass st2's ``Action``, found with
    ``ast`` (nothing is imported). Bases imported from the pack's own modules are followed
    (st2 puts the entry point's directory and ``actions/lib`` on the path); bases from
    anywhere else are not Actions."""

    BASE_MODULE = "st2common.runners.base_action"

    def __init__(self, search_roots: Sequence[Path]) -> None:
        self.search_roots = search_roots
        self._modules: dict[Path, _Module | None] = {}

    def module(self, path: Path) -> _Module | None:
        if path not in self._modules:
            try:
                self._modules[path] = _parse_module(path)
            except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
                self._modules[path] = None
        return self._modules[path]

    def _find_module(self, name: str, relative_to: Path) -> Path | None:
        dots = len(name) - len(name.lstrip("."))
        parts = name.lstrip(".").split(".")
        if dots > len(relative_to.parents):
            return None
        roots = [relative_to.parents[dots - 1]] if dots else list(self.search_roots)
        for root in roots:
            for candidate in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")):
                if candidate.is_file():
                    return candidate
        return None

    def _is_action_base(self, base: ast.expr, module: _Module, path: Path, depth: int) -> bool:
        if depth > 8:
            return False
        if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name):
            # base_action.Action, after `from st2common.runners import base_action` or
            # `import st2common.runners.base_action as base_action`.
            imported = module.imports.get(base.value.id)
            return base.attr == "Action" and imported in (
                ("st2common.runners", "base_action"),
                (self.BASE_MODULE, ""),
            )
        if not isinstance(base, ast.Name):
            return False
        if base.id in module.classes:
            return self.is_action(module.classes[base.id], module, path, depth + 1)
        imported = module.imports.get(base.id)
        if imported is None:
            return False
        source, original = imported
        if source == self.BASE_MODULE and original == "Action":
            return True
        other_path = self._find_module(source, path)
        other = self.module(other_path) if other_path else None
        if other is None or other_path is None or original not in other.classes:
            return False
        return self.is_action(other.classes[original], other, other_path, depth + 1)

    def is_action(self, cls: ast.ClassDef, module: _Module, path: Path, depth: int = 0) -> bool:
        return any(self._is_action_base(base, module, path, depth) for base in cls.bases)


def _python_action_problems(pack: Pack, file: str, entry: Path) -> list[Problem]:
    finder = _ActionClassFinder([entry.parent, pack.path / "actions", pack.path / "actions" / "lib"])
    try:
        module = _parse_module(entry)
    except SyntaxError as exc:
        return [Problem(file, "entry_point", f"{pack.relative(entry)}:{exc.lineno}: syntax error: {exc.msg}")]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [Problem(file, "entry_point", f"cannot read {pack.relative(entry)}: {exc}")]
    finder._modules[entry] = module
    found = [name for name, cls in module.classes.items() if finder.is_action(cls, module, entry)]
    if len(found) == 1:
        return []
    if not found:
        message = f"{pack.relative(entry)} defines no subclass of st2common.runners.base_action.Action"
    else:
        message = f"{pack.relative(entry)} defines {len(found)} Action subclasses ({', '.join(found)}); st2 expects exactly one per entry point"
    return [Problem(file, "entry_point", message)]


# --------------------------------------------------------------------------- semantic checks


def _operator_lookup() -> tuple[Callable[[str], bool], str | None]:
    """How to tell a known criteria operator, and a note when falling back to the table."""
    try:
        # Imported late: the validator must work (with st2's list below) without it.
        from st2lite.criteria import UnknownOperatorError, get_operator
    except ImportError:
        return (lambda name: name.lower() in _FALLBACK_OPERATORS), (
            "st2lite.criteria is not importable; criteria operators checked against st2's list"
        )

    def known(name: str) -> bool:
        try:
            get_operator(name)
        except UnknownOperatorError:
            return False
        return True

    return known, None


class _SemanticChecker:
    def __init__(self, pack: Pack, schemas: Schemas) -> None:
        self.pack = pack
        self.schemas = schemas
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.operator_known, note = _operator_lookup()
        if note:
            self.notes.append(note)

    def add(self, file: Path | str, field_path: str, message: str) -> None:
        name = self.pack.relative(file) if isinstance(file, Path) else file
        self.problems.append(Problem(name, field_path, message))

    def ref_pack(self, ref: str) -> str:
        return ref.split(".", 1)[0] if "." in ref else ""

    def action_problem(self, ref: str) -> str | None:
        """Why ``ref`` cannot name an action, or None when it can (or cannot be checked)."""
        if not isinstance(ref, str) or "." not in ref.strip(".") or ref.startswith(".") or ref.endswith("."):
            return f'"{ref}" is not an action reference of the form <pack>.<name>'
        pack_ref = self.ref_pack(ref)
        if pack_ref == self.pack.ref:
            return (
                None
                if ref in self.pack.actions
                else f'action "{ref}" does not exist in pack "{self.pack.ref}"'
            )
        if pack_ref in SYSTEM_PACKS or pack_ref in self.pack.dependencies:
            return None
        return (
            f'action "{ref}" is in pack "{pack_ref}", which is neither this pack, a system pack '
            f"nor listed in pack.yaml dependencies"
        )

    # -- actions

    def actions(self) -> None:
        from st2lite.loader import RUNNERS_NEEDING_ENTRY_POINT

        for action in self.pack.actions.values():
            self.output_schema(action.file, action.output_schema)
            if action.entry_point_path is None:
                if action.runner_type in RUNNERS_NEEDING_ENTRY_POINT:
                    self.add(
                        action.file, "entry_point", f'runner "{action.runner_type}" needs an entry_point'
                    )
                continue
            if not action.entry_point_path.is_file():
                self.add(
                    action.file,
                    "entry_point",
                    f"{self.pack.relative(action.entry_point_path)} does not exist (entry_point is relative to actions/)",
                )
                continue
            if action.runner_type == "python-script":
                self.problems += _python_action_problems(
                    self.pack, self.pack.relative(action.file), action.entry_point_path
                )
            elif action.runner_type == "orquesta":
                self.workflow(action.file, action.entry_point_path)

    def output_schema(self, file: Path, schema: dict[str, Any] | None) -> None:
        """Flag the pre-3.5 form (a map of result keys to schemas) when st2 would misread it.

        Current st2 reads ``output_schema`` as a full JSON schema; the old map still passes
        unless a result key is also a schema keyword (``id``, ``type``, ``items``...), which
        then is validated as that keyword.
        """
        if not schema or "type" in schema or not all(isinstance(v, dict) for v in schema.values()):
            return
        clashes = sorted(set(schema) & _SCHEMA_KEYWORDS)
        if clashes:
            self.add(
                file,
                "output_schema",
                f"looks like the old map of result keys to schemas, and {', '.join(clashes)} "
                "is a JSON-schema keyword there; write it as type: object, properties: {...}",
            )

    def workflow(self, action_file: Path, path: Path) -> None:
        from st2lite.workflow import inspect_workflow  # heavy (orquesta); only when a pack has workflows

        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.add(action_file, "entry_point", f"cannot read {self.pack.relative(path)}: {exc}")
            return

        def action_exists(ref: str) -> bool:
            return self.action_problem(ref) is None

        for line in inspect_workflow(text, action_exists=action_exists):
            # "spec_path: message"; the workflow file is the one at fault, not the metadata.
            spec_path, _, message = line.partition(": ")
            self.add(path, "" if spec_path == "(root)" else spec_path, message or line)

    # -- sensors

    def sensors(self) -> None:
        for sensor in self.pack.sensors:
            entry = sensor.entry_point_path
            if not entry.is_file():
                self.add(
                    sensor.file,
                    "entry_point",
                    f"{self.pack.relative(entry)} does not exist (entry_point is relative to sensors/)",
                )
                continue
            try:
                module = _parse_module(entry)
            except SyntaxError as exc:
                self.add(
                    sensor.file,
                    "entry_point",
                    f"{self.pack.relative(entry)}:{exc.lineno}: syntax error: {exc.msg}",
                )
                continue
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                self.add(sensor.file, "entry_point", f"cannot read {self.pack.relative(entry)}: {exc}")
                continue
            if sensor.class_name not in module.classes:
                self.add(
                    sensor.file,
                    "class_name",
                    f'{self.pack.relative(entry)} defines no class "{sensor.class_name}"',
                )
        for trigger_type in self.pack.trigger_types.values():
            for key in ("payload_schema", "parameters_schema"):
                schema = trigger_type.get(key)
                if schema:
                    where = trigger_type.get("field", "")
                    self.check_schema(trigger_type["file"], f"{where}.{key}" if where else key, schema)

    def check_schema(self, file: str, field_path: str, schema: dict[str, Any]) -> None:
        validator = self.schemas.validator(self.schemas.ref_meta)
        self.problems += _errors_to_problems(validator.iter_errors(schema), file, field_path)

    # -- rules

    def trigger_parameters_schema(
        self, rule_file: Path, trigger_type: str
    ) -> tuple[bool, dict[str, Any] | None]:
        """(exists, parameters schema) for a trigger type; reports unknown ones."""
        pack_ref = self.ref_pack(trigger_type)
        if trigger_type in self.pack.trigger_types:
            return True, self.pack.trigger_types[trigger_type].get("parameters_schema") or None
        if trigger_type in SYSTEM_TRIGGER_TYPES:
            return True, SYSTEM_TRIGGER_TYPES[trigger_type]
        if pack_ref == self.pack.ref:
            known = ", ".join(sorted(self.pack.trigger_types)) or "none"
            self.add(
                rule_file,
                "trigger.type",
                f'trigger type "{trigger_type}" does not exist (this pack has: {known})',
            )
        elif pack_ref == "core":
            self.add(rule_file, "trigger.type", f'"{trigger_type}" is not one of st2\'s system trigger types')
        elif not pack_ref:
            self.add(
                rule_file, "trigger.type", f'"{trigger_type}" is not a trigger type reference <pack>.<name>'
            )
        return False, None

    def criteria(self, file: Path, criteria: dict[str, Any], prefix: str, item_scope: bool = False) -> None:
        for key, criterion in criteria.items():
            field_path = f"{prefix}.{key}"
            path_key = str(key).split("#", 1)[0]
            root = path_key.split(".", 1)[0]
            expected_root = "item" if item_scope else "trigger"
            if root != expected_root:
                self.add(
                    file,
                    field_path,
                    f"criteria key must address the {'list item' if item_scope else 'trigger payload'} "
                    f"({expected_root}.<field>); st2 evaluates anything else as null",
                )
            if not isinstance(criterion, dict):
                self.add(file, field_path, "a criterion is a mapping with type (operator) and pattern")
                continue
            operator = criterion.get("type")
            if not isinstance(operator, str) or not operator:
                self.add(file, f"{field_path}.type", "required field is missing (the criteria operator)")
                continue
            if not self.operator_known(operator):
                self.add(file, f"{field_path}.type", f'unknown criteria operator "{operator}"')
                continue
            if operator.lower() == "search":
                condition = criterion.get("condition")
                if condition not in _SEARCH_CONDITIONS:
                    self.add(
                        file,
                        f"{field_path}.condition",
                        f"search needs condition one of {', '.join(_SEARCH_CONDITIONS)}, got {condition!r}",
                    )
                pattern = criterion.get("pattern")
                if isinstance(pattern, dict):
                    self.criteria(file, pattern, f"{field_path}.pattern", item_scope=True)
                else:
                    self.add(
                        file,
                        f"{field_path}.pattern",
                        "search needs a mapping of item criteria as its pattern",
                    )

    def action_parameters(self, file: Path, field_path: str, action_ref: str, given: dict[str, Any]) -> None:
        """Unknown parameter names, and required parameters neither given nor defaulted."""
        action = self.pack.actions.get(action_ref)
        if action is None:
            return
        runner_params = RUNNER_PARAMETERS.get(action.runner_type)
        if runner_params is not None:
            known = set(action.parameters) | runner_params
            for name in given:
                if name not in known:
                    self.add(file, f"{field_path}.{name}", f'action "{action_ref}" has no parameter "{name}"')
        for name, spec in action.parameters.items():
            if (
                isinstance(spec, dict)
                and spec.get("required") is True
                and "default" not in spec
                and name not in given
            ):
                self.add(
                    file, field_path, f'required parameter "{name}" of action "{action_ref}" is not given'
                )

    def rules(self) -> None:
        for rule in self.pack.rules:
            exists, params_schema = self.trigger_parameters_schema(rule.file, rule.trigger_type)
            if exists and params_schema:
                validator = self.schemas.validator(params_schema)
                self.problems += _errors_to_problems(
                    validator.iter_errors(rule.trigger_parameters),
                    self.pack.relative(rule.file),
                    "trigger.parameters",
                )
            problem = self.action_problem(rule.action_ref)
            if problem:
                self.add(rule.file, "action.ref", problem)
            else:
                self.action_parameters(
                    rule.file, "action.parameters", rule.action_ref, rule.action_parameters
                )
            self.criteria(rule.file, rule.criteria, "criteria")

    # -- aliases and policies

    def aliases(self) -> None:
        for alias in self.pack.aliases:
            problem = self.action_problem(alias.action_ref)
            if problem:
                self.add(alias.file, "action_ref", problem)
                continue
            action = self.pack.actions.get(alias.action_ref)
            if action is None:
                continue
            runner_params = RUNNER_PARAMETERS.get(action.runner_type, frozenset())
            for index, fmt in enumerate(alias.formats):
                texts = [fmt] if isinstance(fmt, str) else []
                if isinstance(fmt, dict):
                    texts = [t for t in fmt.get("representation") or [] if isinstance(t, str)]
                for text in texts:
                    for name in _ALIAS_PARAM_RE.findall(text):
                        if name not in action.parameters and name not in runner_params:
                            self.add(
                                alias.file,
                                f"formats.{index}",
                                f'format names parameter "{name}", which action "{alias.action_ref}" does not have',
                            )

    def policies(self) -> None:
        for policy in self.pack.policies:
            problem = self.action_problem(policy.resource_ref)
            if problem:
                self.add(policy.file, "resource_ref", problem)
            params_schema = POLICY_TYPES.get(policy.policy_type)
            if params_schema is None:
                self.add(
                    policy.file,
                    "policy_type",
                    f'unknown policy type "{policy.policy_type}" (st2 has: {", ".join(POLICY_TYPES)})',
                )
                continue
            schema = {"type": "object", "properties": params_schema, "additionalProperties": False}
            validator = self.schemas.validator(schema)
            self.problems += _errors_to_problems(
                validator.iter_errors(policy.parameters), self.pack.relative(policy.file), "parameters"
            )
            if policy.policy_type == "action.concurrency.attr":
                action = self.pack.actions.get(policy.resource_ref)
                for attribute in policy.parameters.get("attributes") or []:
                    if action is not None and attribute not in action.parameters:
                        self.add(
                            policy.file,
                            "parameters.attributes",
                            f'action "{policy.resource_ref}" has no parameter "{attribute}"',
                        )

    # -- config

    def config(self, config_paths: Sequence[Path]) -> None:
        from st2lite.loader import ConfigError, load_pack_config

        schema_file = self.pack.path / "config.schema.yaml"
        schema_problems = []
        if self.pack.config_schema:
            validator = self.schemas.validator(self.schemas.config_schema_form)
            schema_problems = _errors_to_problems(
                validator.iter_errors(self.pack.config_schema), "config.schema.yaml"
            )
            self.problems += schema_problems
        for path in config_paths:
            name = self.pack.relative(path)
            if not schema_file.is_file():
                self.add(name, "", "a config is given but the pack has no config.schema.yaml")
                continue
            try:
                load_pack_config(self.pack, path)
            except ConfigError as exc:
                for problem in exc.problems:
                    if problem.file == str(path):
                        self.add(name, problem.field, problem.message)
                    elif schema_problems:
                        # The schema's own problems are reported already; this one only says
                        # the config could not be checked because of them.
                        self.notes.append(f"{name} not checked: {problem.message}")
                    else:
                        self.problems.append(problem)


@dataclass
class ValidationReport:
    """What :func:`check_pack` found; ``problems`` is what :func:`validate_pack` returns."""

    pack_dir: Path
    pack_ref: str | None
    problems: list[Problem] = field(default_factory=list)
    schemas_dir: Path | None = None
    #: Valid on st2 but unsafe (they do not fail validation), e.g. trigger text into a workflow.
    warnings: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _example_configs(pack: Pack) -> list[Path]:
    # The StackStorm Exchange convention: <pack>.yaml.example beside pack.yaml (CI validates it).
    return [
        p for p in (pack.path / f"{pack.ref}.yaml.example", pack.path / "config.yaml.example") if p.is_file()
    ]


def _dedupe(loader_problems: list[Problem], others: list[Problem]) -> list[Problem]:
    """The loader and the schema often see the same missing field; keep the schema's wording."""
    covered = {(p.file, p.field) for p in others}
    merged = [p for p in loader_problems if (p.file, p.field) not in covered] + others
    seen: set[Problem] = set()
    unique = []
    for problem in merged:
        if problem not in seen:
            seen.add(problem)
            unique.append(problem)
    return unique


def check_pack(
    pack_dir: str | Path, schemas_dir: Path | None = None, config_path: Path | None = None
) -> ValidationReport:
    """Validate the pack at ``pack_dir``; see the module docstring for what is checked.

    ``config_path`` is a pack config to validate against ``config.schema.yaml`` as well (the
    pack's ``<pack>.yaml.example`` is always validated when present).
    """
    report = ValidationReport(Path(pack_dir), None)
    try:
        pack = load_pack(pack_dir)
    except PackLoadError as exc:
        report.problems.append(Problem("pack.yaml", "", str(exc)))
        return report
    report.pack_ref = pack.ref
    located = find_schemas_dir(pack.path, schemas_dir)
    if schemas_dir is not None and located is None:
        report.notes.append(f"{schemas_dir} does not hold the st2 schemas ({', '.join(SCHEMA_NAMES)} .json)")
    if located is None:
        report.notes.append(
            "st2 schemas not found (pass --schemas, set ST2_SCHEMAS_DIR or keep shared/st2-schemas beside the repo); "
            "used built-in structural checks (required fields, allowed keys, types) instead"
        )
    report.schemas_dir = located
    schemas = load_schemas(located)
    schema_problems = metadata_schema_problems(pack, schemas)
    checker = _SemanticChecker(pack, schemas)
    checker.actions()
    checker.sensors()
    checker.rules()
    checker.aliases()
    checker.policies()
    configs = _example_configs(pack) + ([Path(config_path).resolve()] if config_path is not None else [])
    checker.config(configs)
    report.notes += checker.notes
    report.warnings = rule_warnings(pack)
    report.problems = _dedupe(pack.problems, schema_problems + checker.problems)
    return report


def validate_pack(
    pack_dir: str | Path, schemas_dir: Path | None = None, config_path: Path | None = None
) -> list[Problem]:
    """Every problem with the pack at ``pack_dir`` (empty when it is valid)."""
    return check_pack(pack_dir, schemas_dir, config_path).problems


# --------------------------------------------------------------------------- CLI


def _default_pack_dirs() -> list[Path]:
    cwd = Path.cwd()
    if (cwd / "pack.yaml").is_file():
        return [cwd]
    return sorted(p.parent for p in cwd.glob("packs/*/pack.yaml"))


def _print_report(report: ValidationReport, out: Any) -> None:
    for note in report.notes:
        print(f"note: {note}", file=out)
    for warning in report.warnings:
        print(f"warning: {report.pack_dir / warning.file}: {warning.field}: {warning.message}", file=out)
    for problem in report.problems:
        print(f"{report.pack_dir / problem.file}: {problem.field or '(root)'}: {problem.message}", file=out)
    name = report.pack_ref or str(report.pack_dir)
    if report.ok:
        where = f"st2 schemas from {report.schemas_dir}" if report.schemas_dir else "built-in checks"
        print(f"pack {name}: valid ({where})", file=out)
    else:
        count = len(report.problems)
        print(f"pack {name}: {count} problem{'s' if count != 1 else ''}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """``aegis validate [PACK_DIR ...] [--schemas DIR] [--config FILE]``.

    Prints one problem a line (``FILE: FIELD: MESSAGE``) and a summary line per pack; exits 0
    when every pack is valid, 1 when any has problems, 2 on a usage error.
    """
    parser = argparse.ArgumentParser(
        prog="aegis validate",
        description="Validate StackStorm packs: st2's metadata schemas plus cross-file checks.",
    )
    parser.add_argument("pack_dirs", nargs="*", type=Path, metavar="PACK_DIR",
                        help="pack directory (default: the current directory if it is a pack, else packs/*)")  # fmt: skip
    parser.add_argument("--schemas", type=Path, metavar="DIR", help="directory of st2's <kind>.json schemas")
    parser.add_argument("--config", type=Path, metavar="FILE", help="a pack config to validate as well")
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return int(exc.code or 0)
    pack_dirs = args.pack_dirs or _default_pack_dirs()
    if not pack_dirs:
        print(
            "aegis validate: no pack given and none found (no ./pack.yaml, no packs/*/pack.yaml)",
            file=sys.stderr,
        )
        return 2
    if args.config is not None and len(pack_dirs) != 1:
        print("aegis validate: --config needs exactly one PACK_DIR", file=sys.stderr)
        return 2
    status = 0
    for pack_dir in pack_dirs:
        report = check_pack(pack_dir, args.schemas, args.config)
        _print_report(report, sys.stdout)
        status = status or (0 if report.ok else 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
