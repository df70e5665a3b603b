"""Jinja rendering the way st2 does it: the ``st2kv`` namespace, st2's filters, and action
parameters rendered in dependency order and cast by their declared type.

Mirrors st2common/util/jinja.py (a sandboxed environment, filters), st2common/services/keyvalues.py
(``KeyValueLookup``), st2common/util/param.py (``render_live_params``,
``render_final_params``) and st2common/util/casts.py.

    >>> from st2lite.pack_env.pack_runtime.datastore import KeyValueStore
    >>> import tempfile
    >>> store = KeyValueStore(tempfile.mkdtemp() + "/kv.sqlite")
    >>> _ = store.set("aegis.mode", "enforce")
    >>> ctx = build_context(store, trigger_payload={"count": 3, "labels": {"sev": "page"}})
    >>> render_template("{{ st2kv.system.aegis.mode }}", ctx)
    'enforce'
    >>> render_template("{{ trigger.count }}", ctx)        # a lone expression keeps its type
    3
    >>> render_action_parameters(
    ...     {"n": "{{ trigger.count }}", "msg": "{{ n }} alerts"},
    ...     {"n": {"type": "integer"}, "msg": {"type": "string"}},
    ...     ctx,
    ... )
    {'n': 3, 'msg': '3 alerts'}

User-scoped keys: st2 stores them as ``<user>:<key>`` in the ``user`` scope, and
``{{ st2kv.user.key }}`` reads the key of the user the context was built for.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping
from graphlib import CycleError, TopologicalSorter
from typing import Any, Protocol

import jinja2
import jinja2.sandbox
import yaml
from jinja2 import meta, nodes

__all__ = [
    "NONE_MAGIC_VALUE",
    "KeyValueLookup",
    "RenderError",
    "build_context",
    "get_cast",
    "get_jinja_environment",
    "is_jinja_expression",
    "render_action_parameters",
    "render_final_parameters",
    "render_template",
]

#: What ``use_none`` turns None into, so that it survives rendering to text (st2's value).
NONE_MAGIC_VALUE = "%*****__%NONE%__*****%"

SYSTEM_SCOPE = "system"
USER_SCOPE = "user"
#: st2's separator between the user and the key name of a user-scoped key (UserKeyReference).
USER_KEY_SEPARATOR = ":"

# The names st2 puts in the rendering context of action parameters (st2common/constants).
DATASTORE_PARENT_SCOPE = "st2kv"
ACTION_CONTEXT_KV_PREFIX = "action_context"
PACK_CONFIG_CONTEXT_KV_PREFIX = "config_context"
TRIGGER_PAYLOAD_PREFIX = "trigger"


class RenderError(ValueError):
    """A template could not be rendered (undefined name, cycle, bad cast...)."""


class KeyStore(Protocol):
    """What the ``st2kv`` namespace needs from a datastore (``KeyValueStore`` satisfies it;
    ``decrypt`` is needed by the ``decrypt_kv`` filter only)."""

    def get(self, name: str, scope: str = SYSTEM_SCOPE) -> str | None: ...


# --------------------------------------------------------------------------------------
# st2kv namespace
# --------------------------------------------------------------------------------------


class KeyValueLookup:
    """``st2kv.system`` / ``st2kv.user``: attribute access accumulates a dotted key name.

    ``st2kv.system.aegis.mode`` reads the key ``aegis.mode``: every attribute (or item) step
    returns a new lookup for the longer key, and the value is read when Jinja turns the
    lookup into text. A missing key renders as an empty string, as in st2.

    >>> lookup = KeyValueLookup(store)             # doctest: +SKIP
    >>> str(lookup.aegis.mode)                     # doctest: +SKIP
    'enforce'
    """

    __slots__ = ("_store", "_scope", "_user", "_key", "_cache")

    def __init__(
        self,
        store: KeyStore,
        scope: str = SYSTEM_SCOPE,
        user: str | None = None,
        key: str = "",
        cache: dict[str, str] | None = None,
    ) -> None:
        if scope == USER_SCOPE and not user:
            raise ValueError("a user is required for the user scope of st2kv")
        self._store = store
        self._scope = scope
        self._user = user
        self._key = key
        # One cache per top-level lookup: a template that reads a key twice hits the DB once.
        self._cache = cache if cache is not None else {}

    def _child(self, name: str) -> KeyValueLookup:
        key = f"{self._key}.{name}" if self._key else str(name)
        return KeyValueLookup(self._store, self._scope, self._user, key, self._cache)

    def __getattr__(self, name: str) -> KeyValueLookup:
        # Dunder and private probes (copy, pickle, Jinja internals) must not become key names.
        if name.startswith("__") or name.startswith("_"):
            raise AttributeError(name)
        return self._child(name)

    def __getitem__(self, name: Any) -> KeyValueLookup:
        return self._child(str(name))

    # Only private names below: any public attribute would shadow a key of the same name
    # (``st2kv.system.foo.key`` must read the key "foo.key").
    def _kv_name(self) -> str:
        """The datastore key name this lookup reads (``<user>:<key>`` in the user scope)."""
        if self._scope == USER_SCOPE:
            return f"{self._user}{USER_KEY_SEPARATOR}{self._key}"
        return self._key

    def _value(self) -> str:
        """The key's value, ``''`` when it does not exist (st2's behaviour)."""
        if not self._key:
            return ""
        name = self._kv_name()
        if name not in self._cache:
            found = self._store.get(name, scope=self._scope)
            self._cache[name] = "" if found is None else found
        return self._cache[name]

    def __str__(self) -> str:
        return self._value()

    def __html__(self) -> str:
        return self._value()

    def __repr__(self) -> str:
        return f"KeyValueLookup(scope={self._scope!r}, key={self._kv_name()!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KeyValueLookup):
            return self._value() == other._value()
        return self._value() == other

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self._value())

    def __bool__(self) -> bool:
        return bool(self._value())

    def __len__(self) -> int:
        return len(self._value())

    def __iter__(self):
        return iter(self._value())

    def __contains__(self, item: object) -> bool:
        return str(item) in self._value()

    def __int__(self) -> int:
        return int(self._value())

    def __float__(self) -> float:
        return float(self._value())


def _resolve_lookups(value: Any) -> Any:
    """Turn any ``KeyValueLookup`` left in a native result into its string value."""
    if isinstance(value, KeyValueLookup):
        return value._value()
    if isinstance(value, dict):
        return {k: _resolve_lookups(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_lookups(v) for v in value]
    return value


def build_context(
    store: KeyStore,
    trigger_payload: Any = None,
    action_context: Mapping[str, Any] | None = None,
    config_context: Mapping[str, Any] | None = None,
    user: str = "stanley",
) -> dict[str, Any]:
    """The rendering context st2 gives rule criteria and action parameters.

    ``trigger`` (the trigger payload), ``st2kv`` (``system`` and ``user`` lookups; the
    user is ``action_context["api_user"]`` or ``["user"]`` when given, as in st2, else
    ``user``), ``action_context`` and ``config_context`` (the pack config).
    """
    action_context = dict(action_context or {})
    kv_user = action_context.get("api_user") or action_context.get("user") or user
    return {
        TRIGGER_PAYLOAD_PREFIX: trigger_payload if trigger_payload is not None else {},
        DATASTORE_PARENT_SCOPE: {
            SYSTEM_SCOPE: KeyValueLookup(store, SYSTEM_SCOPE),
            USER_SCOPE: KeyValueLookup(store, USER_SCOPE, user=kv_user),
        },
        ACTION_CONTEXT_KV_PREFIX: action_context,
        PACK_CONFIG_CONTEXT_KV_PREFIX: dict(config_context or {}),
    }


# --------------------------------------------------------------------------------------
# Filters (st2common/expressions/functions/*)
# --------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return _resolve_lookups(value)


def use_none(value: Any) -> Any:
    """Keep a None through text rendering; the parameter cast turns it back into None."""
    return NONE_MAGIC_VALUE if value is None else value


def decrypt_kv(value: Any) -> str:
    """``{{ st2kv.system.key | decrypt_kv }}``: the plain text of an encrypted datastore value.

    As st2's: an empty or missing key is an error naming it; the value must be one
    encrypted with the datastore's key.
    """
    if not isinstance(value, KeyValueLookup):
        raise ValueError("decrypt_kv decrypts datastore values: use it as {{ st2kv.system.<key> | decrypt_kv }}")
    text = value._value()
    if text == "":
        raise ValueError(f'Referenced datastore item "{value._kv_name()}" doesn\'t exist or it contains an empty string')
    decrypt = getattr(value._store, "decrypt", None)
    if decrypt is None:
        raise ValueError("this datastore cannot decrypt values")
    return decrypt(text)


def to_json_string(value: Any, indent: int | None = None, sort_keys: bool = False, separators=None) -> str:
    return json.dumps(_plain(value), indent=indent, sort_keys=sort_keys, separators=separators)


def to_yaml_string(value: Any, indent: int | None = None, sort_keys: bool = True) -> str:
    return yaml.safe_dump(
        _plain(value), indent=indent, allow_unicode=True, default_flow_style=False, sort_keys=sort_keys
    )


def to_complex(value: Any) -> str:
    return json.dumps(_plain(value))


def from_json_string(value: Any) -> Any:
    return json.loads(str(_plain(value)))


def from_yaml_string(value: Any) -> Any:
    return yaml.safe_load(str(_plain(value)))


def json_escape(value: Any) -> str:
    """Escape a string for embedding inside a JSON string literal (no surrounding quotes)."""
    return json.dumps(str(_plain(value)))[1:-1]


def regex_match(value: Any, pattern: str, ignorecase: bool = False) -> bool:
    flags = re.IGNORECASE if ignorecase else 0
    return re.match(pattern, str(_plain(value)), flags) is not None


def regex_search(value: Any, pattern: str, ignorecase: bool = False) -> bool:
    flags = re.IGNORECASE if ignorecase else 0
    return re.search(pattern, str(_plain(value)), flags) is not None


def regex_replace(value: Any, pattern: str, replacement: str, ignorecase: bool = False) -> str:
    flags = re.IGNORECASE if ignorecase else 0
    return re.sub(pattern, replacement, str(_plain(value)), flags=flags)


def regex_substring(value: Any, pattern: str, result_index: int = 0, ignorecase: bool = False) -> str:
    flags = re.IGNORECASE if ignorecase else 0
    matches = re.findall(pattern, str(_plain(value)), flags)
    if not matches:
        raise ValueError(f"no match for pattern {pattern!r}")
    return matches[result_index]


def to_human_time_from_seconds(seconds: Any) -> str:
    """``3725`` -> ``'1h2m5s'`` (st2's compact form)."""
    total = int(float(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    if total or not parts:
        parts.append(f"{total}s")
    return "".join(parts)


def basename(value: Any) -> str:
    import os.path

    return os.path.basename(str(_plain(value)))


def dirname(value: Any) -> str:
    import os.path

    return os.path.dirname(str(_plain(value)))


_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


def _semver(value: Any) -> tuple[int, int, int, tuple[str, ...]]:
    """(major, minor, patch, prerelease parts) of a semantic version, as python-semver parses it."""
    match = _SEMVER.match(str(_plain(value)))
    if not match:
        raise ValueError(f"{value} is not valid SemVer string")
    pre = tuple(match.group(4).split(".")) if match.group(4) else ()
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), pre


def _pre_key(pre: tuple[str, ...]) -> tuple:
    # SemVer 2.0 precedence: a release sorts after its prereleases; numeric identifiers sort
    # numerically and before alphanumeric ones; more identifiers sort later when equal.
    if not pre:
        return (1,)
    return (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre))


def version_compare(value: Any, pattern: Any) -> int:
    """st2's ``version_compare`` (python-semver ``compare``): -1, 0 or 1."""
    a, b = _semver(value), _semver(pattern)
    left, right = (a[:3], _pre_key(a[3])), (b[:3], _pre_key(b[3]))
    return (left > right) - (left < right)


def version_match(value: Any, pattern: Any) -> bool:
    """``"1.2.3" | version_match(">=1.0.0")`` (operators <, >, <=, >=, ==, !=; none means ==)."""
    expr = str(pattern)
    for op in (">=", "<=", "==", "!=", ">", "<"):
        if expr.startswith(op):
            other = expr[len(op):]
            break
    else:
        if not expr[:1].isdigit():
            raise ValueError(f"{expr!r} is not a version match expression (<, >, <=, >=, ==, !=)")
        op, other = "==", expr
    result = version_compare(value, other)
    return {">=": result >= 0, "<=": result <= 0, "==": result == 0, "!=": result != 0, ">": result > 0, "<": result < 0}[op]


def _bump(index: int) -> Callable[[Any], str]:
    def bump(value: Any) -> str:
        parts = list(_semver(value)[:3])
        parts[index] += 1
        parts[index + 1 :] = [0] * (2 - index)
        return ".".join(map(str, parts))

    return bump


FILTERS: dict[str, Callable[..., Any]] = {
    "decrypt_kv": decrypt_kv,
    "from_json_string": from_json_string,
    "from_yaml_string": from_yaml_string,
    "json_escape": json_escape,
    "to_complex": to_complex,
    "to_json_string": to_json_string,
    "to_yaml_string": to_yaml_string,
    "regex_match": regex_match,
    "regex_replace": regex_replace,
    "regex_search": regex_search,
    "regex_substring": regex_substring,
    "to_human_time_from_seconds": to_human_time_from_seconds,
    "version_compare": version_compare,
    "version_more_than": lambda value, pattern: version_compare(value, pattern) == 1,
    "version_less_than": lambda value, pattern: version_compare(value, pattern) == -1,
    "version_equal": lambda value, pattern: version_compare(value, pattern) == 0,
    "version_match": version_match,
    "version_bump_major": _bump(0),
    "version_bump_minor": _bump(1),
    "version_bump_patch": _bump(2),
    "version_strip_patch": lambda value: "{}.{}".format(*_semver(value)[:2]),
    "use_none": use_none,
    "basename": basename,
    "dirname": dirname,
}


def get_jinja_environment(allow_undefined: bool = False) -> jinja2.Environment:
    """st2's environment: sandboxed, StrictUndefined, trim_blocks, lstrip_blocks, st2 filters.

    Sandboxed as st2's is (``jinja2.sandbox.SandboxedEnvironment``): templates see data,
    never Python internals, so ``{{ trigger.__class__.__mro__ }}`` in a criteria pattern, a
    rule parameter, an alias template or a config value is a ``SecurityError``.
    """
    env = jinja2.sandbox.SandboxedEnvironment(
        undefined=jinja2.Undefined if allow_undefined else jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.tests["in"] = lambda item, seq: item in seq
    return env


ENV = get_jinja_environment()

_SINGLE_EXPRESSION = re.compile(r"\{\{[-+]?(.*?)[-+]?\}\}", re.DOTALL)


def is_jinja_expression(value: Any) -> bool:
    """True when ``value`` is a string that contains ``{{`` or ``{%`` (st2's quick check)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _single_expression_source(template: str) -> str | None:
    """The expression of a template that is exactly one ``{{ expr }}``, else None."""
    stripped = template
    if not (stripped.startswith("{{") and stripped.endswith("}}")):
        return None
    try:
        body = ENV.parse(stripped).body
    except jinja2.TemplateSyntaxError:
        return None
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    if isinstance(body[0].nodes[0], nodes.TemplateData):
        return None
    match = _SINGLE_EXPRESSION.fullmatch(stripped)
    return match.group(1) if match else None


def _render_string(template: str, context: Mapping[str, Any]) -> Any:
    expression = _single_expression_source(template)
    if expression is not None:
        result = ENV.compile_expression(expression, undefined_to_none=False)(**context)
        if isinstance(result, jinja2.Undefined):
            # A bare undefined name: StrictUndefined raises when it is used as text.
            str(result)
        return _resolve_lookups(result)
    return ENV.from_string(template).render(**context)


def render_template(value: Any, context: Mapping[str, Any]) -> Any:
    """Render ``value`` with Jinja; dicts and lists are rendered item by item.

    A string that is exactly one ``{{ expr }}`` returns the expression's value with its
    type (a number stays a number, a dict a dict); any other string renders to text.
    Undefined names raise ``jinja2.UndefinedError`` (StrictUndefined).

    >>> render_template({"n": "{{ x }}", "s": "x={{ x }}"}, {"x": 2})
    {'n': 2, 's': 'x=2'}
    """
    if isinstance(value, str):
        if not is_jinja_expression(value):
            return value
        return _render_string(value, context)
    if isinstance(value, dict):
        return {k: render_template(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_template(v, context) for v in value]
    return value


# --------------------------------------------------------------------------------------
# Casts (st2common/util/casts.py)
# --------------------------------------------------------------------------------------


def _cast_none(value: Any) -> Any:
    return None if isinstance(value, str) and value == NONE_MAGIC_VALUE else value


def _cast_object(value: Any) -> Any:
    value = _cast_none(value)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            # st2 renders a dict to its Python repr, so that is the other accepted form.
            return ast.literal_eval(value)
    return value


def _cast_boolean(value: Any) -> Any:
    value = _cast_none(value)
    if isinstance(value, str):
        # st2: literal_eval of the capitalised string ("true" -> True, "False" -> False).
        result = ast.literal_eval(value.capitalize())
        if not isinstance(result, bool):
            raise ValueError(f"{value!r} is not a boolean")
        return result
    return value


def _cast_integer(value: Any) -> int | None:
    value = _cast_none(value)
    return None if value is None else int(value)


def _cast_number(value: Any) -> float | None:
    value = _cast_none(value)
    return None if value is None else float(value)


def _cast_string(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f'Value "{value}" must either be a string or None. Got "{type(value).__name__}".')
    return _cast_none(value)


CASTS: dict[str, Callable[[Any], Any]] = {
    "array": _cast_object,
    "boolean": _cast_boolean,
    "integer": _cast_integer,
    "number": _cast_number,
    "object": _cast_object,
    "string": _cast_string,
}


def get_cast(cast_type: Any) -> Callable[[Any], Any] | None:
    """The cast st2 applies to a rendered value of JSON schema type ``cast_type``."""
    return CASTS.get(cast_type) if isinstance(cast_type, str) else None


def _cast(name: str, value: Any, spec: Mapping[str, Any] | None) -> Any:
    if value is None or not spec:
        return value
    cast = get_cast(spec.get("type"))
    if cast is None:
        return value
    try:
        return cast(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise RenderError(f"parameter {name!r}: cannot cast {value!r} to {spec.get('type')}: {exc}") from exc


# --------------------------------------------------------------------------------------
# Action parameters (st2common/util/param.py)
# --------------------------------------------------------------------------------------

_TEMPLATE = "template"
_VALUE = "value"


def _render_node(name: str, node: tuple[str, Any], context: Mapping[str, Any]) -> Any:
    kind, raw = node
    if kind == _VALUE:
        return raw
    try:
        if isinstance(raw, (dict, list)):
            # Containers are rendered leaf by leaf so a lone "{{ expr }}" keeps its type
            # (st2 gets there with its ``to_complex`` rewrite of '"{{name}}"').
            return render_template(raw, context)
        return ENV.from_string(str(raw)).render(**context)
    except jinja2.UndefinedError as exc:
        raise RenderError(f"failed to render parameter {name!r}: {exc}") from exc
    except jinja2.TemplateError as exc:
        raise RenderError(f"failed to render parameter {name!r}: {exc}") from exc
    except Exception as exc:  # a filter raising on bad input is still a render failure
        raise RenderError(f"failed to render parameter {name!r}: {exc}") from exc


def _template_variables(value: Any) -> set[str] | None:
    """Top-level names a template uses; None when ``value`` is not a (valid) template."""
    texts: list[str] = []

    def collect(v: Any) -> None:
        if isinstance(v, str):
            if is_jinja_expression(v):
                texts.append(v)
        elif isinstance(v, dict):
            for item in v.values():
                collect(item)
        elif isinstance(v, list):
            for item in v:
                collect(item)

    collect(value)
    if not texts:
        return None
    names: set[str] = set()
    for text in texts:
        try:
            names |= meta.find_undeclared_variables(ENV.parse(text))
        except jinja2.TemplateSyntaxError:
            # st2: "is_jinja_expression only checks for {{ or {%": not Jinja after all.
            return None
    return names


def _resolve(
    params: Mapping[str, Any],
    schema: Mapping[str, Mapping[str, Any]],
    context: Mapping[str, Any],
    render_provided: bool,
) -> dict[str, Any]:
    """Render every parameter (provided, then defaults) in dependency order."""
    graph: dict[str, tuple[str, Any]] = {}
    deps: dict[str, set[str]] = {}

    def process(name: str, value: Any, render: bool = True) -> None:
        variables = _template_variables(value) if render else None
        if variables is None:
            graph[name] = (_VALUE, value)
            deps[name] = set()
        else:
            graph[name] = (_TEMPLATE, value)
            deps[name] = variables

    for name, value in context.items():
        process(name, value, render=False)
    for name, value in params.items():
        process(name, value, render=render_provided)
    # st2 _process_defaults: a default applies when the parameter is absent or None, and
    # always for an immutable parameter (its default wins over anything provided).
    for name, spec in schema.items():
        spec = spec or {}
        absent = name not in params
        is_none = not absent and params[name] is None
        if absent or is_none or spec.get("immutable", False):
            if "default" in spec or absent or is_none:
                process(name, spec.get("default"))

    for name, names in deps.items():
        missing = sorted(n for n in names if n not in graph)
        if missing:
            plural = "variables" if len(missing) > 1 else "variable"
            raise RenderError(
                f"parameter {name!r} references undefined {plural} {', '.join(repr(m) for m in missing)}"
            )

    sorter = TopologicalSorter({name: deps[name] for name in graph})
    try:
        order = list(sorter.static_order())
    except CycleError as exc:
        cycle = exc.args[1]
        raise RenderError(
            f"cyclic dependency between parameters: {' -> '.join(cycle)}"
            " (a parameter references itself, directly or through others)"
        ) from exc

    parameter_names = set(params) | set(schema)
    resolved: dict[str, Any] = {}
    for name in order:
        value = _render_node(name, graph[name], resolved)
        if name in parameter_names:
            # Cast as soon as rendered, so "{{ count / 2 }}" sees an integer ``count``
            # (st2 keeps the text until the end, which makes such templates fail).
            value = _cast(name, value, schema.get(name))
        resolved[name] = value
    return resolved


def render_action_parameters(
    parameters: Mapping[str, Any],
    param_schema: Mapping[str, Mapping[str, Any]],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Render a rule's (or a user's) action parameters; st2's ``render_live_params``.

    ``parameters`` may use the context (``trigger``, ``st2kv``, ``action_context``,
    ``config_context``) and each other (``{{ other_param }}``), and defaults of
    ``param_schema`` (the merged runner + action parameters) may use them too. Values are
    rendered in dependency order; a cycle or an undefined name is a ``RenderError`` naming
    the parameter. Each result is cast by its parameter's ``type``.

    Returns the provided parameters, plus parameters left at a Jinja default (not
    immutable) as st2 does, so that validation sees rendered values.
    """
    resolved = _resolve(parameters, param_schema, context, render_provided=True)
    result = {name: _cast(name, resolved[name], param_schema.get(name)) for name in parameters}
    for name, spec in param_schema.items():
        spec = spec or {}
        if name in parameters or spec.get("immutable") or "default" not in spec:
            continue
        if not is_jinja_expression(spec.get("default")) or spec.get("default") == resolved.get(name):
            continue
        result[name] = _cast(name, resolved[name], spec)
    return result


def render_final_parameters(
    param_schema: Mapping[str, Mapping[str, Any]],
    parameters: Mapping[str, Any],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Every parameter the action runs with; st2's ``render_final_params``.

    ``parameters`` are already rendered (the output of ``render_action_parameters``) and
    are taken as plain values; defaults of the schema are rendered and everything is cast.
    """
    resolved = _resolve(parameters, param_schema, context, render_provided=False)
    names = list(parameters) + [n for n in param_schema if n not in parameters]
    return {name: _cast(name, resolved.get(name), param_schema.get(name)) for name in names}
