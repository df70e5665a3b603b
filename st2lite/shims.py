"""Compatibility shims that let orquesta 1.2.0 (st2's conductor) run on Python 3.11, in threads.

Call :func:`apply` before anything imports ``orquesta`` (``st2lite.workflow`` does)::

    from st2lite import shims

    shims.apply()
    from orquesta import conducting  # now safe

``apply()`` is idempotent and thread-safe; calling it again is a cheap no-op. It adds names
that Python removed, rewrites two regular expressions and serializes YAQL parsing; it
changes no behaviour that already works.

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
    stays concurrent. This one is about threads, not Python 3.11: it goes only if st2lite
    runs each workflow in its own process or yaql's engine becomes re-entrant.
"""

from __future__ import annotations

import collections
import collections.abc
import fractions
import math
import threading
from typing import Any

__all__ = ["apply", "SHIMS"]

#: Names of the individual shims, in the order ``apply()`` installs them.
SHIMS = ("collections_abc", "fractions_gcd", "inline_params_regex", "yaql_parser_lock")

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
    """A yaql engine whose ``engine(expression)`` (the parse) runs one thread at a time."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._parse_lock = threading.Lock()

    def __call__(self, expression: str, options: dict | None = None) -> Any:
        with self._parse_lock:
            return self._engine(expression, options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def _shim_yaql_parser_lock() -> None:
    from orquesta.expressions import yql

    if not isinstance(yql.YAQLEvaluator._engine, _SerializedYaqlEngine):
        yql.YAQLEvaluator._engine = _SerializedYaqlEngine(yql.YAQLEvaluator._engine)


_INSTALLERS = {
    "collections_abc": _shim_collections_abc,
    "fractions_gcd": _shim_fractions_gcd,
    "inline_params_regex": _shim_inline_params_regex,
    "yaql_parser_lock": _shim_yaql_parser_lock,
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
