"""Load a StackStorm pack from disk the way st2's content registrars read it.

st2 registers a pack with one registrar per resource kind (``st2common/bootstrap/*registrar.py``):
each reads ``<pack>/<kind>/*.{json,yaml,yml}`` (not recursively), fills in ``pack`` when the
file leaves it out (and refuses a file whose ``pack`` names another pack), computes the ref
``<pack>.<name>`` and registers the resource. This module does the same reading and ref
computation, without a database, and never raises for a content problem: it records a
:class:`Problem` and keeps going, so ``aegis validate`` can report every problem at once.

Usage::

    from st2lite.loader import load_pack, load_pack_config

    pack = load_pack("packs/aegis")
    for problem in pack.problems:
        print(problem)                      # "actions/x.yaml: runner_type: ..."
    action = pack.actions["aegis.diagnose"]
    config = load_pack_config(pack, Path("~/.local/share/aegis/configs/aegis.yaml").expanduser())

Schema validation of the metadata files and cross-resource checks (does a rule's action
exist?) live in :mod:`st2lite.validation`; this module only reports what stops it from
building a resource.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = [
    "ActionMeta",
    "AliasMeta",
    "ConfigError",
    "Pack",
    "PackLoadError",
    "PolicyMeta",
    "Problem",
    "RUNNER_TYPES",
    "RuleMeta",
    "SensorMeta",
    "config_validation_problems",
    "dynamic_config_keys",
    "is_jinja_expression",
    "load_pack",
    "load_pack_config",
    "read_metadata_file",
    "render_config",
    "resource_files",
    "schema_failure_reason",
]

#: Extensions st2 reads metadata from (``st2common.constants.meta.ALLOWED_EXTS``).
METADATA_EXTENSIONS = (".json", ".yaml", ".yml")

#: Runner types a StackStorm 3.x install registers (``contrib/runners/*/runner.yaml``).
#: mistral-v2 and the old windows-* runners were removed upstream, so they are not here.
RUNNER_TYPES = frozenset(
    {
        "action-chain",
        "announcement",
        "http-request",
        "inquirer",
        "local-shell-cmd",
        "local-shell-script",
        "noop",
        "orquesta",
        "python-script",
        "remote-shell-cmd",
        "remote-shell-script",
        "winrm-cmd",
        "winrm-ps-cmd",
        "winrm-ps-script",
    }
)

#: Runner types whose action cannot run without an ``entry_point`` file.
RUNNERS_NEEDING_ENTRY_POINT = frozenset(
    {
        "action-chain",
        "local-shell-script",
        "orquesta",
        "python-script",
        "remote-shell-script",
        "winrm-ps-script",
    }
)

RULE_TYPES = ("standard", "backstop")

# st2's rule for a pack ref (pack.json's ``ref`` pattern); a ``name`` that fits may stand in.
_PACK_REF_RE = re.compile(r"^[a-z0-9_]+$")
_JINJA_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


class PackLoadError(Exception):
    """The directory is not a pack: ``pack.yaml`` is missing, unreadable or not a mapping."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pack, anchored to a file (relative to the pack) and a field path.

    >>> str(Problem("actions/x.yaml", "parameters.count.type", "'integr' is not a type"))
    "actions/x.yaml: parameters.count.type: 'integr' is not a type"
    """

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field or '(root)'}: {self.message}"


class ConfigError(ValueError):
    """A pack config that does not satisfy ``config.schema.yaml``; ``problems`` lists why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass
class ActionMeta:
    """An action, from ``actions/<file>.yaml``. ``timeout`` is the ``timeout`` parameter's default."""

    ref: str
    name: str
    pack: str
    runner_type: str
    entry_point: str | None
    entry_point_path: Path | None
    parameters: dict[str, Any]
    enabled: bool
    timeout: int | None
    output_schema: dict[str, Any] | None
    meta: dict[str, Any]
    file: Path
    description: str = ""


@dataclass
class SensorMeta:
    """A sensor, from ``sensors/<file>.yaml``; its ref is ``<pack>.<class_name>``."""

    ref: str
    class_name: str
    entry_point_path: Path
    trigger_types: list[dict[str, Any]]
    poll_interval: float | None
    enabled: bool
    meta: dict[str, Any]
    file: Path
    pack: str = ""
    entry_point: str = ""


@dataclass
class RuleMeta:
    """A rule, from ``rules/<file>.yaml``. st2 rules are disabled unless ``enabled: true``."""

    ref: str
    name: str
    pack: str
    enabled: bool
    trigger_type: str
    criteria: dict[str, Any]
    action_ref: str
    action_parameters: dict[str, Any]
    rule_type: str
    meta: dict[str, Any]
    file: Path
    trigger_parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class AliasMeta:
    """A ChatOps action alias, from ``aliases/<file>.yaml``."""

    ref: str
    name: str
    pack: str
    action_ref: str
    formats: list[Any]
    enabled: bool
    meta: dict[str, Any]
    file: Path


@dataclass
class PolicyMeta:
    """An action policy, from ``policies/<file>.yaml``."""

    ref: str
    name: str
    pack: str
    resource_ref: str
    policy_type: str
    parameters: dict[str, Any]
    enabled: bool
    meta: dict[str, Any]
    file: Path


@dataclass
class Pack:
    """Everything :func:`load_pack` read. ``trigger_types`` maps ``<pack>.<name>`` to the type
    (``name``, ``pack``, ``ref``, ``description``, ``payload_schema``, ``parameters_schema``)."""

    ref: str
    path: Path
    meta: dict[str, Any]
    config_schema: dict[str, Any]
    actions: dict[str, ActionMeta] = field(default_factory=dict)
    sensors: list[SensorMeta] = field(default_factory=list)
    trigger_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: list[RuleMeta] = field(default_factory=list)
    aliases: list[AliasMeta] = field(default_factory=list)
    policies: list[PolicyMeta] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def relative(self, path: Path) -> str:
        """``path`` relative to the pack directory, as problems name files."""
        try:
            return path.relative_to(self.path).as_posix()
        except ValueError:
            return str(path)

    @property
    def dependencies(self) -> list[str]:
        """Refs of the packs this pack declares in ``dependencies`` (URL and version stripped)."""
        refs = []
        for dep in self.meta.get("dependencies") or []:
            if isinstance(dep, str) and dep:
                # "<name or URL>[=<version>]": st2 pack install's format.
                name = dep.split("=", 1)[0].rstrip("/").rsplit("/", 1)[-1]
                name = name.removesuffix(".git").removeprefix("stackstorm-")
                refs.append(name)
        return refs


# --------------------------------------------------------------------------- reading files


def read_metadata_file(path: Path) -> Any:
    """Parse a JSON or YAML metadata file (by extension, as st2's MetaLoader does).

    Raises ``ValueError`` with a readable message when the file cannot be parsed.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read file: {exc}") from exc
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"invalid YAML: {what}{where}") from exc


def resource_files(pack_dir: Path, kind: str) -> list[Path]:
    """The metadata files of one resource kind (``actions``, ``rules``, ...), sorted."""
    directory = pack_dir / kind
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in METADATA_EXTENSIONS)


def is_jinja_expression(value: Any) -> bool:
    """True for a string st2 would render with Jinja (``"{{ st2kv.system.key }}"``)."""
    return isinstance(value, str) and bool(_JINJA_RE.search(value))


# --------------------------------------------------------------------------- the loader


class _Loader:
    def __init__(self, pack: Pack) -> None:
        self.pack = pack

    def problem(self, path: Path | str, field_path: str, message: str) -> None:
        file = self.pack.relative(path) if isinstance(path, Path) else path
        self.pack.problems.append(Problem(file, field_path, message))

    def documents(self, kind: str) -> Iterator[tuple[Path, dict[str, Any]]]:
        """Yield (file, content) for each readable mapping of ``kind``; record the rest."""
        for path in resource_files(self.pack.path, kind):
            try:
                content = read_metadata_file(path)
            except ValueError as exc:
                self.problem(path, "", str(exc))
                continue
            if not isinstance(content, dict):
                self.problem(path, "", f"expected a mapping, got {_type_name(content)}")
                continue
            yield path, content

    def string(
        self, path: Path, content: dict[str, Any], key: str, *, required: bool, prefix: str = ""
    ) -> str | None:
        value = content.get(key)
        if value is None or value == "":
            if required:
                self.problem(path, prefix + key, "required field is missing")
            return None
        if not isinstance(value, str):
            self.problem(path, prefix + key, f"expected a string, got {_type_name(value)}")
            return None
        return value

    def mapping(self, path: Path, content: dict[str, Any], key: str) -> dict[str, Any]:
        value = content.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, key, f"expected a mapping, got {_type_name(value)}")
            return {}
        return value

    def boolean(self, path: Path, content: dict[str, Any], key: str, default: bool) -> bool:
        value = content.get(key, default)
        if not isinstance(value, bool):
            self.problem(path, key, f"expected true or false, got {_type_name(value)}")
            return default
        return value

    def first_definition(self, seen: dict[str, Path], ref: str, path: Path, field_path: str, kind: str) -> bool:
        """Remember where ``ref`` is defined; a second definition is a problem and is skipped."""
        if ref in seen:
            self.problem(path, field_path, f'duplicate {kind} "{ref}" (also in {self.pack.relative(seen[ref])})')
            return False
        seen[ref] = path
        return True

    def pack_field(self, path: Path, content: dict[str, Any]) -> bool:
        """st2's registrars fill in a missing ``pack`` and refuse one naming another pack."""
        value = content.get("pack")
        if value in (None, ""):
            return True
        if value != self.pack.ref:
            self.problem(path, "pack", f'file is in pack "{self.pack.ref}" but its "pack" field is "{value}"')
            return False
        return True

    # -- resources

    def actions(self) -> None:
        seen: dict[str, Path] = {}
        for path, content in self.documents("actions"):
            name = self.string(path, content, "name", required=True)
            runner_type = self.string(path, content, "runner_type", required=True)
            entry_point = self.string(path, content, "entry_point", required=False)
            parameters = self.mapping(path, content, "parameters")
            output_schema = content.get("output_schema")
            if output_schema is not None and not isinstance(output_schema, dict):
                self.problem(path, "output_schema", f"expected a mapping, got {_type_name(output_schema)}")
                output_schema = None
            enabled = self.boolean(path, content, "enabled", True)
            pack_ok = self.pack_field(path, content)
            if runner_type is not None and runner_type not in RUNNER_TYPES:
                self.problem(
                    path,
                    "runner_type",
                    f'unknown runner type "{runner_type}" (st2 has: {", ".join(sorted(RUNNER_TYPES))})',
                )
            if name is None or runner_type is None or not pack_ok:
                continue
            ref = f"{self.pack.ref}.{name}"
            if not self.first_definition(seen, ref, path, "name", "action"):
                continue
            timeout_param = parameters.get("timeout")
            timeout = None
            if isinstance(timeout_param, dict) and isinstance(timeout_param.get("default"), int):
                timeout = timeout_param["default"]
            self.pack.actions[ref] = ActionMeta(
                ref=ref,
                name=name,
                pack=self.pack.ref,
                runner_type=runner_type,
                # st2 resolves an action's entry_point relative to <pack>/actions/.
                entry_point=entry_point,
                entry_point_path=(self.pack.path / "actions" / entry_point) if entry_point else None,
                parameters=parameters,
                enabled=enabled,
                timeout=timeout,
                output_schema=output_schema,
                meta=content,
                file=path,
                description=content.get("description") if isinstance(content.get("description"), str) else "",
            )

    def _trigger_type(self, path: Path, field_path: str, spec: Any) -> None:
        if not isinstance(spec, dict):
            self.problem(path, field_path, f"expected a mapping, got {_type_name(spec)}")
            return
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            self.problem(path, f"{field_path}.name", "required field is missing")
            return
        if spec.get("pack") not in (None, "", self.pack.ref):
            self.problem(
                path, f"{field_path}.pack", f'trigger type is in pack "{self.pack.ref}", not "{spec["pack"]}"'
            )
            return
        ref = f"{self.pack.ref}.{name}"
        if ref in self.pack.trigger_types:
            other = self.pack.trigger_types[ref]["file"]
            self.problem(path, f"{field_path}.name", f'duplicate trigger type "{ref}" (also in {other})')
            return
        payload_schema = spec.get("payload_schema") or {}
        parameters_schema = spec.get("parameters_schema") or {}
        for key, value in (("payload_schema", payload_schema), ("parameters_schema", parameters_schema)):
            if not isinstance(value, dict):
                self.problem(path, f"{field_path}.{key}", f"expected a mapping, got {_type_name(value)}")
        self.pack.trigger_types[ref] = {
            "name": name,
            "pack": self.pack.ref,
            "ref": ref,
            "description": spec.get("description", ""),
            "payload_schema": payload_schema if isinstance(payload_schema, dict) else {},
            "parameters_schema": parameters_schema if isinstance(parameters_schema, dict) else {},
            "file": self.pack.relative(path),
            "field": field_path,  # where in that file it is declared, for problems
        }

    def sensors(self) -> None:
        seen: dict[str, Path] = {}
        for path, content in self.documents("sensors"):
            class_name = self.string(path, content, "class_name", required=True)
            entry_point = self.string(path, content, "entry_point", required=False)
            if entry_point is None and class_name is not None:
                # The schema leaves it optional, but st2's SensorsRegistrar refuses a sensor without one.
                self.problem(
                    path, "entry_point", "required field is missing (st2 cannot load the sensor without it)"
                )
            trigger_types = content.get("trigger_types") or []
            if not isinstance(trigger_types, list):
                self.problem(path, "trigger_types", f"expected a list, got {_type_name(trigger_types)}")
                trigger_types = []
            for index, spec in enumerate(trigger_types):
                self._trigger_type(path, f"trigger_types.{index}", spec)
            poll_interval = content.get("poll_interval")
            if poll_interval is not None and (
                isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float)
            ):
                self.problem(path, "poll_interval", f"expected a number, got {_type_name(poll_interval)}")
                poll_interval = None
            enabled = self.boolean(path, content, "enabled", True)
            pack_ok = self.pack_field(path, content)
            if class_name is None or entry_point is None or not pack_ok:
                continue
            ref = f"{self.pack.ref}.{class_name}"
            if not self.first_definition(seen, ref, path, "class_name", "sensor"):
                continue
            self.pack.sensors.append(
                SensorMeta(
                    ref=ref,
                    class_name=class_name,
                    # ... and a sensor's entry_point relative to <pack>/sensors/.
                    entry_point_path=self.pack.path / "sensors" / entry_point,
                    trigger_types=[t for t in trigger_types if isinstance(t, dict)],
                    poll_interval=float(poll_interval) if poll_interval is not None else None,
                    enabled=enabled,
                    meta=content,
                    file=path,
                    pack=self.pack.ref,
                    entry_point=entry_point,
                )
            )

    def triggers(self) -> None:
        # st2's TriggersRegistrar: trigger types declared on their own, outside any sensor.
        for path, content in self.documents("triggers"):
            self._trigger_type(path, "", content)

    def rules(self) -> None:
        seen: dict[str, Path] = {}
        for path, content in self.documents("rules"):
            name = self.string(path, content, "name", required=True)
            trigger = self.mapping(path, content, "trigger")
            action = self.mapping(path, content, "action")
            if "trigger" not in content:
                self.problem(path, "trigger", "required field is missing")
            if "action" not in content:
                self.problem(path, "action", "required field is missing")
            trigger_type = (
                self.string(path, trigger, "type", required=False, prefix="trigger.") if trigger else None
            )
            if trigger and trigger_type is None:
                self.problem(path, "trigger.type", "required field is missing")
            action_ref = (
                self.string(path, action, "ref", required=False, prefix="action.") if action else None
            )
            if action and action_ref is None:
                self.problem(path, "action.ref", "required field is missing")
            action_parameters = action.get("parameters") or {}
            if not isinstance(action_parameters, dict):
                self.problem(
                    path, "action.parameters", f"expected a mapping, got {_type_name(action_parameters)}"
                )
                action_parameters = {}
            trigger_parameters = trigger.get("parameters") or {}
            if not isinstance(trigger_parameters, dict):
                self.problem(
                    path, "trigger.parameters", f"expected a mapping, got {_type_name(trigger_parameters)}"
                )
                trigger_parameters = {}
            criteria = self.mapping(path, content, "criteria")
            rule_type = "standard"
            type_spec = content.get("type")
            if isinstance(type_spec, dict) and type_spec.get("ref") is not None:
                rule_type = type_spec["ref"]
                if rule_type not in RULE_TYPES:
                    self.problem(
                        path, "type.ref", f'unknown rule type "{rule_type}" (st2 has: standard, backstop)'
                    )
                    rule_type = "standard"
            enabled = self.boolean(path, content, "enabled", False)
            pack_ok = self.pack_field(path, content)
            if name is None or trigger_type is None or action_ref is None or not pack_ok:
                continue
            ref = f"{self.pack.ref}.{name}"
            if not self.first_definition(seen, ref, path, "name", "rule"):
                continue
            self.pack.rules.append(
                RuleMeta(
                    ref=ref,
                    name=name,
                    pack=self.pack.ref,
                    enabled=enabled,
                    trigger_type=trigger_type,
                    criteria=criteria,
                    action_ref=action_ref,
                    action_parameters=action_parameters,
                    rule_type=rule_type,
                    meta=content,
                    file=path,
                    trigger_parameters=trigger_parameters,
                )
            )

    def aliases(self) -> None:
        seen: dict[str, Path] = {}
        for path, content in self.documents("aliases"):
            name = self.string(path, content, "name", required=True)
            action_ref = self.string(path, content, "action_ref", required=True)
            formats = content.get("formats") or []
            if not isinstance(formats, list):
                self.problem(path, "formats", f"expected a list, got {_type_name(formats)}")
                formats = []
            enabled = self.boolean(path, content, "enabled", True)
            pack_ok = self.pack_field(path, content)
            if name is None or action_ref is None or not pack_ok:
                continue
            ref = f"{self.pack.ref}.{name}"
            if not self.first_definition(seen, ref, path, "name", "alias"):
                continue
            self.pack.aliases.append(
                AliasMeta(ref, name, self.pack.ref, action_ref, formats, enabled, content, path)
            )

    def policies(self) -> None:
        seen: dict[str, Path] = {}
        for path, content in self.documents("policies"):
            name = self.string(path, content, "name", required=True)
            resource_ref = self.string(path, content, "resource_ref", required=True)
            policy_type = self.string(path, content, "policy_type", required=True)
            parameters = self.mapping(path, content, "parameters")
            enabled = self.boolean(path, content, "enabled", True)
            pack_ok = self.pack_field(path, content)
            if name is None or resource_ref is None or policy_type is None or not pack_ok:
                continue
            ref = f"{self.pack.ref}.{name}"
            if not self.first_definition(seen, ref, path, "name", "policy"):
                continue
            self.pack.policies.append(
                PolicyMeta(
                    ref, name, self.pack.ref, resource_ref, policy_type, parameters, enabled, content, path
                )
            )

    def config_schema(self) -> None:
        path = self.pack.path / "config.schema.yaml"
        if not path.is_file():
            return
        try:
            schema = read_metadata_file(path)
        except ValueError as exc:
            self.problem(path, "", str(exc))
            return
        if schema is None:
            return
        if not isinstance(schema, dict):
            self.problem(path, "", f"expected a mapping of config keys to schemas, got {_type_name(schema)}")
            return
        self.pack.config_schema = schema


def _pack_ref(pack_dir: Path, meta: dict[str, Any], problems: list[Problem]) -> str:
    """st2's rule: ``ref`` if given, else ``name`` when it is a valid ref; else an error."""
    ref = meta.get("ref")
    name = meta.get("name")
    if isinstance(ref, str) and ref:
        if not _PACK_REF_RE.match(ref):
            problems.append(
                Problem("pack.yaml", "ref", f'"{ref}" is not a valid pack ref (lowercase letters, digits, _)')
            )
        return ref
    if isinstance(name, str) and _PACK_REF_RE.match(name):
        return name
    problems.append(
        Problem(
            "pack.yaml",
            "ref",
            f'pack name "{name}" is not a valid ref (lowercase letters, digits, _) and no "ref" is given',
        )
    )
    # Keep loading under the directory name so the rest of the pack is still checked.
    return pack_dir.name


def load_pack(pack_dir: str | Path) -> Pack:
    """Read every resource of the pack at ``pack_dir``.

    Content problems (a bad file, a missing field, a ``pack`` naming another pack) become
    ``pack.problems`` and the faulty resource is left out; only a missing or unreadable
    ``pack.yaml`` raises :class:`PackLoadError`.
    """
    path = Path(pack_dir).resolve()
    meta_file = path / "pack.yaml"
    if not meta_file.is_file():
        raise PackLoadError(f"{path} is not a StackStorm pack: {meta_file} does not exist")
    try:
        meta = read_metadata_file(meta_file)
    except ValueError as exc:
        raise PackLoadError(f"{meta_file}: {exc}") from exc
    if not isinstance(meta, dict):
        raise PackLoadError(f"{meta_file}: expected a mapping, got {_type_name(meta)}")
    problems: list[Problem] = []
    ref = _pack_ref(path, meta, problems)
    pack = Pack(ref=ref, path=path, meta=meta, config_schema={}, problems=problems)
    loader = _Loader(pack)
    loader.config_schema()
    loader.actions()
    loader.sensors()
    loader.triggers()
    loader.rules()
    loader.aliases()
    loader.policies()
    return pack


# --------------------------------------------------------------------------- pack config


def _assign_defaults(schema: dict[str, Any], config: dict[str, Any]) -> None:
    """Fill defaults in place, recursing into object properties and array items.

    Mirrors st2's ContentPackConfigLoader and ``util.schema.assign_default_values``: a key
    that is absent or null takes its default; an object with ``properties`` is created empty
    when absent so its own defaults apply; each object in an array gets its items' defaults.
    """
    for key, item in schema.items():
        if not isinstance(item, dict):
            continue
        if "default" in item and config.get(key) is None:
            config[key] = copy.deepcopy(item["default"])
        item_type = item.get("type")
        properties = item.get("properties")
        if item_type == "object" and isinstance(properties, dict) and properties:
            if config.get(key) is None:
                config[key] = {}
            if isinstance(config[key], dict):
                _assign_defaults(properties, config[key])
        items = item.get("items")
        if item_type == "array" and isinstance(items, dict) and isinstance(items.get("properties"), dict):
            for element in config.get(key) or []:
                if isinstance(element, dict):
                    _assign_defaults(items["properties"], element)


def _strip_dynamic(value: Any) -> Any:
    """Drop Jinja-valued entries: st2 validates only static values at registration (st2 PR
    #2840); dynamic ones are rendered from the datastore when an action or sensor starts."""
    if isinstance(value, dict):
        return {k: _strip_dynamic(v) for k, v in value.items() if not is_jinja_expression(v)}
    if isinstance(value, list):
        return [_strip_dynamic(v) for v in value]
    return value


def config_validation_problems(
    config_schema: dict[str, Any], config: dict[str, Any], file: str = "config"
) -> list[Problem]:
    """How ``config`` (defaults already applied) fails ``config_schema`` (empty when valid).

    st2 validates the config as an object whose properties are the schema's top-level keys,
    with draft-3 ``required: true`` flags, extra top-level keys allowed.
    """
    from st2lite.pack_env.pack_runtime.schema import St2Validator  # the runtime's one validator

    schema = {"type": "object", "properties": config_schema, "additionalProperties": True}
    validator = St2Validator(schema)
    try:
        errors = sorted(validator.iter_errors(_strip_dynamic(config)), key=lambda e: [str(p) for p in e.path])
    except (
        jsonschema.exceptions.SchemaError,
        jsonschema.exceptions.UnknownType,
        jsonschema.RefResolutionError,
    ) as exc:
        # A broken config.schema.yaml: say so instead of a traceback (validate reports where).
        reason = schema_failure_reason(exc)
        return [
            Problem(
                "config.schema.yaml", "", f"the schema is invalid, the config cannot be validated: {reason}"
            )
        ]
    # One line per key: "False is not of type 'string'" and "... is not one of [...]" say the
    # same thing; keep the one that lists the allowed values.
    by_key: dict[str, Any] = {}
    for error in errors:
        key = ".".join(str(p) for p in error.path)
        if key not in by_key or error.validator == "enum":
            by_key[key] = error
    return [Problem(file, key, error.message + config_hint(error)) for key, error in by_key.items()]


# YAML 1.1 (PyYAML, and st2) reads these unquoted words as booleans.
_YAML_BOOLEANS = "y, yes, n, no, on, off, true, false"


def config_hint(error: Any) -> str:
    """How to fix a config value, for the mistakes a new user makes (``mode: off``, ``port: "x"``)."""
    instance, expected = error.instance, error.schema.get("type")
    if isinstance(instance, bool) and (expected == "string" or error.validator == "enum"):
        word = "off" if instance is False else "on"
        return (f"; YAML reads unquoted {_YAML_BOOLEANS} as booleans: quote it "
                f"(e.g. \"{word}\") or use an allowed value")
    if isinstance(instance, str) and expected in ("integer", "number"):
        return f"; write a {'whole ' if expected == 'integer' else ''}number without quotes"
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        low, high = error.schema.get("minimum"), error.schema.get("maximum")
        if low is not None and high is not None:
            return f"; use a value from {low} to {high}"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties") or {})
        if allowed:
            return f"; allowed keys: {', '.join(allowed)}"
    return ""


def schema_failure_reason(exc: Exception) -> str:
    """One line on why a schema could not be used at all (unknown type, bad ``$ref``...)."""
    if isinstance(exc, jsonschema.exceptions.UnknownType):
        return f"unknown type {exc.type!r}"
    if isinstance(exc, jsonschema.exceptions.SchemaError):
        return exc.message
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_pack_config(pack: Pack, config_path: Path | None) -> dict[str, Any]:
    """The pack's config as st2 hands it to actions and sensors, before dynamic values.

    Values come from ``config_path`` (st2's ``/opt/stackstorm/configs/<pack>.yaml``; None or a
    missing file means no values), then defaults from ``config.schema.yaml`` fill the gaps,
    nested objects included. The result is validated against the schema; :class:`ConfigError`
    lists every violation. Values that are Jinja expressions (``"{{ st2kv.system.x }}"``) are
    left as strings: find them with :func:`dynamic_config_keys`, render them with
    :func:`render_config` when an action runs, as st2 does.
    """
    values: dict[str, Any] = {}
    file = str(config_path) if config_path is not None else "config"
    if config_path is not None and Path(config_path).is_file():
        try:
            loaded = read_metadata_file(Path(config_path))
        except ValueError as exc:
            raise ConfigError([Problem(file, "", str(exc))]) from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError([Problem(file, "", f"expected a mapping, got {_type_name(loaded)}")])
        values = loaded or {}
    config = copy.deepcopy(values)
    _assign_defaults(pack.config_schema, config)
    problems = config_validation_problems(pack.config_schema, config, file)
    if problems:
        raise ConfigError(problems)
    return config


def unknown_config_sections(pack: Pack, config: dict[str, Any]) -> list[str]:
    """Top-level config keys the schema does not know (st2 ignores them: often a typo)."""
    if not pack.config_schema:
        return []
    return [key for key in config if key not in pack.config_schema]


def suggest(name: str, known: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest known name, or ``""``."""
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def dynamic_config_keys(config: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the values st2 renders at run time (Jinja expressions).

    >>> dynamic_config_keys({"a": {"key": "{{ st2kv.system.k }}"}, "b": 1})
    ['a.key']
    """
    found: list[str] = []
    if isinstance(config, dict):
        items: Iterator[tuple[Any, Any]] = iter(config.items())
    elif isinstance(config, list):
        items = iter(enumerate(config))
    else:
        return found
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        if is_jinja_expression(value):
            found.append(path)
        else:
            found.extend(dynamic_config_keys(value, path))
    return found


def render_config(config: Any, render: Callable[[str], Any]) -> Any:
    """A copy of ``config`` with each Jinja-valued string replaced by ``render(value)``.

    ``render`` is the runtime's renderer (with ``st2kv`` in its context); the config itself
    is left untouched so it can be rendered again later with fresh datastore values::

        rendered = render_config(config, lambda s: jinja_env.from_string(s).render(st2kv=kv))
    """
    if isinstance(config, dict):
        return {key: render_config(value, render) for key, value in config.items()}
    if isinstance(config, list):
        return [render_config(value, render) for value in config]
    if is_jinja_expression(config):
        return render(config)
    return config


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)
