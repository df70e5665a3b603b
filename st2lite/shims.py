"""Compatibility shims that let orquesta 1.2.0 (st2's conductor) run on Python 3.11, in
threads, with its expressions confined to data.

Call :func:`apply` before anything imports ``orquesta`` (``st2lite.workflow`` does)::

    from st2lite import shims

    shims.apply()
    from orquesta import conducting  # now safe

``apply()`` is idempotent and thread-safe; calling it again is a cheap no-op. It adds names
that Python removed, rewrites two regular expressions, serializes YAQL parsing and sandboxes
expressions; it changes no behaviour a workflow that only handles data relies on.

Why each shim exists, and when it can go:

(a) ``collections.Mapping``, ``collections.MutableSequence``, ... were removed in Python 3.10
    (they live in ``collections.abc``). orquesta 1.2.0 uses ``collections.MutableSequence``
    as a base class of ``orquesta.specs.base.SequenceSpec`` and ``collections.Mapping`` in
    ``item()``. Remove when st2lite moves to an orquesta release that imports from
    ``collections.abc`` (orquesta >= 1.3 does).

(b) ``fractions.gcd`` was removed in Python 3.9. networkx 1.11 (orquesta 1.2.0 pins
    networkx < 2) does ``from fractions import gcd`` in ``networkx.algorithms.dag``. Remove
    when orquesta's pin allows a networkx >= 2.x that supports Python 3.11.

(c) ``orquesta.utils.parameters`` builds ``REGEX_INLINE_PARAMS`` (the pattern that parses
    the ``action: core.echo message="x" flag=true`` shorthand) by joining alternatives, two
    of which are ``(?i)true`` and ``(?i)false``. A global inline flag that is not at the start
    of a pattern is an error since Python 3.11 (``re.error: global flags not at the start of
    the expression``), so every workflow using the shorthand failed to load. They are
    rewritten as scoped groups ``(?i:true)`` / ``(?i:false)``. On Python < 3.11 the stray
    ``(?i)`` made the *whole* pattern case-insensitive; the only other alternative with
    letters is ``null``, so ``flag=NULL`` is no longer picked up as an inline parameter
    (st2 documents lower-case ``null``). Remove when orquesta ships a fixed pattern.

(d) orquesta parses every YAQL expression with one engine shared by the whole process
    (``YAQLEvaluator._engine``: a single PLY lexer and parser, which keep their parse state
    on the object). st2 runs workflows in eventlet green threads, which never switch in the
    middle of a parse; st2lite runs several workflows in OS threads, where concurrent parses
    corrupt each other (``YaqlGrammarException`` on valid expressions, or wrong values).
    The engine is wrapped so that parsing is serialized; evaluation of a parsed statement
    stays concurrent. The wrapper also keeps parsed statements, so each expression is parsed
    once per process rather than on every evaluation. This one is about threads, not Python 3.11: it goes only if st2lite
    runs each workflow in its own process or yaql's engine becomes re-entrant.

(e) Defence in depth, not compatibility: orquesta renders Jinja expressions with a plain
    ``jinja2.Environment``, in which ``{{ lipsum.__globals__.os.popen('id').read() }}`` runs a
    command; st2 itself does not sandbox orquesta either (its own parameter templates use
    ``SandboxedEnvironment``, orquesta's do not). The evaluator's environment is replaced by a
    ``jinja2.sandbox.SandboxedEnvironment`` with the same options and orquesta's functions
    (no ``_``-prefixed attributes, no unsafe callables, ``range`` bounded), and an expression
    whose result is not data (a function, a module, any Python object) fails. The real fix is
    that workflows never get untrusted text as an expression (their inputs are identifiers);
    this stays as long as orquesta's environment is unsandboxed.

(f) The same for YAQL: its lexer already refuses ``_``-prefixed names, it reaches no Python
    attribute of plain data (``yaqlized`` access needs objects marked for it, and the context
    holds only data) and delegates are off, but ``def()`` returns a yaql ``Context``. An
    expression whose result is not data fails, so no Python object enters a workflow's
    context, its task inputs or its output.
"""

from __future__ import annotations

import collections
import collections.abc
import datetime
import fractions
import math
import threading
from typing import Any

__all__ = ["apply", "is_data", "SHIMS"]

#: Names of the individual shims, in the order ``apply()`` installs them.
SHIMS = ("collections_abc", "fractions_gcd", "inline_params_regex", "yaql_parser_lock", "jinja_sandbox", "yaql_data_only")

_lock = threading.Lock()
_applied: set[str] = set()


def _shim_collections_abc() -> None:
    for name in collections.abc.__all__:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


def _shim_fractions_gcd() -> None:
    if not hasattr(fractions, "gcd"):
        fractions.gcd = math.gcd  # type: ignore[attr-defined]


def _scope_inline_flag(pattern: str) -> str:
    """``(?i)true`` -> ``(?i:true)``; patterns without a leading ``(?i)`` are unchanged."""
    if pattern.startswith("(?i)"):
        return "(?i:" + pattern[len("(?i)") :] + ")"
    return pattern


def _shim_inline_params_regex() -> None:
    # Imported here: this module needs (a) and (b) installed first.
    from orquesta.utils import parameters

    parameters.REGEX_TRUE = _scope_inline_flag(parameters.REGEX_TRUE)
    parameters.REGEX_FALSE = _scope_inline_flag(parameters.REGEX_FALSE)
    variations = [_scope_inline_flag(p) for p in parameters.REGEX_INLINE_PARAM_VARIATIONS]
    parameters.REGEX_INLINE_PARAM_VARIATIONS = variations
    # Same construction as orquesta's own module-level statement; parse_inline_params()
    # reads the module global at call time, so replacing it is enough.
    parameters.REGEX_INLINE_PARAMS = r"([\w]+)=({})".format("|".join(variations))


class _SerializedYaqlEngine:
    """A yaql engine whose ``engine(expression)`` (the parse) runs one thread at a time.

    Parsed statements are kept (up to ``MAX_PARSED``, oldest dropped first): a workflow
    evaluates the same few dozen expressions on every run, and a parse costs more than
    most evaluations. A statement is an immutable expression tree, evaluated against the
    context it is given, so one statement serves concurrent evaluations (as Mistral caches
    its parsed YAQL).
    """

    MAX_PARSED = 4096

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._parse_lock = threading.Lock()
        self._parsed: dict[str, Any] = {}

    def __call__(self, expression: str, options: dict | None = None) -> Any:
        with self._parse_lock:
            if options is not None or not isinstance(expression, str):
                return self._engine(expression, options)
            statement = self._parsed.get(expression)
            if statement is None:
                statement = self._engine(expression, options)  # a parse error is not kept
                if len(self._parsed) >= self.MAX_PARSED:
                    self._parsed.pop(next(iter(self._parsed)))
                self._parsed[expression] = statement
            return statement

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def _shim_yaql_parser_lock() -> None:
    from orquesta.expressions import yql

    if not isinstance(yql.YAQLEvaluator._engine, _SerializedYaqlEngine):
        yql.YAQLEvaluator._engine = _SerializedYaqlEngine(yql.YAQLEvaluator._engine)


#: What an expression may evaluate to: JSON's types, plus what YAQL's own functions return
#: (sets from ``keys()``/``toSet()``, tuples, datetimes).
_SCALARS = (str, bool, int, float, type(None), datetime.datetime, datetime.date, datetime.timedelta)


def is_data(value: Any, _depth: int = 0) -> bool:
    """True when ``value`` is made only of data (no function, module, or other Python object)."""
    if isinstance(value, _SCALARS):
        return True
    if _depth > 200:
        return False
    if isinstance(value, collections.abc.Mapping):
        return all(is_data(k, _depth + 1) and is_data(v, _depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(is_data(v, _depth + 1) for v in value)
    return False


def _results_are_data(evaluator: Any, error: type[Exception]) -> None:
    """Make ``evaluator.evaluate`` refuse results that are not data."""
    original = evaluator.evaluate.__func__
    if getattr(original, "_st2lite_data_only", False):
        return

    def evaluate(cls: Any, text: Any, data: Any = None) -> Any:
        result = original(cls, text, data)
        if not is_data(result):
            raise error(
                f"Unable to evaluate expression '{text}'. The result is a {type(result).__name__},"
                " not data (st2lite confines expressions to data)."
            )
        return result

    evaluate._st2lite_data_only = True  # type: ignore[attr-defined]
    evaluator.evaluate = classmethod(evaluate)


def _shim_jinja_sandbox() -> None:
    import jinja2
    import jinja2.sandbox
    from orquesta.expressions import jinja as orquesta_jinja

    evaluator = orquesta_jinja.JinjaEvaluator
    if not isinstance(evaluator._jinja_env, jinja2.sandbox.SandboxedEnvironment):
        # orquesta's own options (StrictUndefined, trim/lstrip blocks) and functions as filters.
        env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        orquesta_jinja.register_functions(env)
        evaluator._jinja_env = env
    _results_are_data(evaluator, orquesta_jinja.JinjaEvaluationException)


def _shim_yaql_data_only() -> None:
    from orquesta.expressions import yql

    _results_are_data(yql.YAQLEvaluator, yql.YaqlEvaluationException)


_INSTALLERS = {
    "collections_abc": _shim_collections_abc,
    "fractions_gcd": _shim_fractions_gcd,
    "inline_params_regex": _shim_inline_params_regex,
    "yaql_parser_lock": _shim_yaql_parser_lock,
    "jinja_sandbox": _shim_jinja_sandbox,
    "yaql_data_only": _shim_yaql_data_only,
}


def apply(only: tuple[str, ...] | None = None) -> None:
    """Install the shims: all of them by default; ``only`` picks a subset (tests use it
    to show each one is needed), e.g. ``apply(only=("collections_abc", "fractions_gcd"))``.
    """
    names = SHIMS if only is None else only
    unknown = [n for n in names if n not in _INSTALLERS]
    if unknown:
        raise ValueError(f"unknown shim(s) {', '.join(unknown)}; expected some of {', '.join(SHIMS)}")
    with _lock:
        for name in SHIMS:  # keep the dependency order whatever order `only` lists
            if name in names and name not in _applied:
                _INSTALLERS[name]()
                _applied.add(name)
