"""The diagnoser's knowledge as data: ``knowledge/rules/*.yaml``, schema-checked, compiled once.

    from rules import load_rules, validate_rules, find_rules_dir
    book = load_rules(find_rules_dir())          # RuleBook; raises RulesError(path, field, message)
    book.first("security", ctx)                  # (rule, matched text) of the first match, or None
    book.matches("signatures", ctx)              # every matching rule, in file order
    problems = validate_rules(rules_dir, runbooks_dir)   # [RuleProblem(path, field, message)], [] when valid

Each file maps rule-set names (``schema.json`` lists them) to lists of rules. Every rule has
an ``id``, ``why`` (the reason an SRE would give), the ``runbook`` it serves, and a ``match``
clause written with the matchers of ``matchers.py``; some sets need more fields (a signature
its ``action``/``cause``/``weight``, a veto its ``action``/``reason``). Files load in name
order and rules keep their order, so "first match wins" sets read top to bottom.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from alert_context import Context
from matchers import Clause, MatchError, compile_match, evaluate

SCHEMA_FILE = "schema.json"


class RulesError(ValueError):
    """A rule file is malformed: ``path``, ``field`` and ``message`` say where and why."""

    def __init__(self, path: str, field: str, message: str) -> None:
        super().__init__(f"{path}: {field}: {message}")
        self.path, self.field, self.message = path, field, message


@dataclass(frozen=True)
class RuleProblem:
    path: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.field}: {self.message}"


@dataclass(frozen=True)
class Rule:
    set: str
    id: str
    why: str
    runbook: str
    match: Clause
    fields: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


@dataclass
class RuleBook:
    directory: Path | None
    sets: dict[str, list[Rule]] = field(default_factory=dict)

    def rules(self, name: str) -> list[Rule]:
        return self.sets.get(name, [])

    def matches(self, name: str, ctx: Context) -> Iterator[tuple[Rule, str]]:
        for rule in self.rules(name):
            hit = evaluate(rule.match, ctx)
            if hit:
                yield rule, hit

    def first(self, name: str, ctx: Context) -> tuple[Rule, str] | None:
        return next(self.matches(name, ctx), None)

    def any(self, name: str, ctx: Context) -> str:
        """The matched text of the first rule of ``name`` that matches, '' if none."""
        hit = self.first(name, ctx)
        return hit[1] if hit else ""


def find_rules_dir(start: str | os.PathLike[str] | None = None) -> Path | None:
    """Search upward from ``start`` (default: this file) for ``knowledge/rules``."""
    from knowledge import find_knowledge_dir

    return find_knowledge_dir("rules", start or __file__)


def _schema(directory: Path) -> dict[str, Any]:
    path = directory / SCHEMA_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RulesError(str(path), "(root)", f"cannot read the rule schema: {exc}") from exc


def _field_path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(root)"


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _check_file(path: Path, schema: dict[str, Any], runbook_ids: set[str] | None) -> tuple[list[Rule], list[RuleProblem]]:
    import jsonschema

    rules: list[Rule] = []
    problems: list[RuleProblem] = []
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        return [], [RuleProblem(str(path), "(root)", f"not valid YAML: {exc}")]
    validator = jsonschema.Draft7Validator(schema)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path)):
        problems.append(RuleProblem(str(path), _field_path(err.absolute_path), err.message))
    if problems:
        return [], problems
    for set_name, entries in (data or {}).items():
        for i, entry in enumerate(entries):
            where = f"{set_name}[{i}]"
            try:
                clause = compile_match(entry["match"], f"{where}.match")
            except MatchError as exc:
                problems.append(RuleProblem(str(path), exc.field, exc.message))
                continue
            if runbook_ids is not None and entry["runbook"] not in runbook_ids:
                problems.append(RuleProblem(str(path), f"{where}.runbook", f"no runbook with id {entry['runbook']!r}"))
            extra = {k: v for k, v in entry.items() if k not in ("id", "why", "runbook", "match")}
            rules.append(Rule(set_name, entry["id"], entry["why"], entry["runbook"], clause, extra))
    return rules, problems


def _read(directory: Path, runbook_ids: set[str] | None) -> tuple[RuleBook, list[RuleProblem]]:
    schema = _schema(directory)
    book = RuleBook(directory)
    problems: list[RuleProblem] = []
    seen: dict[tuple[str, str], str] = {}
    for path in _files(directory):
        rules, file_problems = _check_file(path, schema, runbook_ids)
        problems += file_problems
        for i, rule in enumerate(rules):
            key = (rule.set, rule.id)
            if key in seen:
                problems.append(RuleProblem(str(path), f"{rule.set}[{i}].id",
                                            f"duplicate rule id {rule.id!r} (also in {seen[key]})"))
            seen[key] = path.name
            book.sets.setdefault(rule.set, []).append(rule)
    return book, problems


def validate_rules(directory: str | os.PathLike[str], runbooks_dir: str | os.PathLike[str] | None = None) -> list[RuleProblem]:
    """Every problem with the rule files (schema, matchers, regexes, runbook references)."""
    directory = Path(directory)
    if not directory.is_dir():
        return [RuleProblem(str(directory), "(root)", "rules directory does not exist")]
    runbook_ids = None
    if runbooks_dir is not None and Path(runbooks_dir).is_dir():
        runbook_ids = {p.stem for p in Path(runbooks_dir).glob("*.md") if p.stem.lower() != "readme"}
    try:
        return _read(directory, runbook_ids)[1]
    except RulesError as exc:
        return [RuleProblem(exc.path, exc.field, exc.message)]


def _fingerprint(directory: Path) -> str:
    return ";".join(f"{p.name}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in sorted(directory.iterdir()))


@functools.lru_cache(maxsize=4)
def _load_cached(directory: str, fingerprint: str) -> RuleBook:
    book, problems = _read(Path(directory), None)
    if problems:
        p = problems[0]
        raise RulesError(p.path, p.field, p.message + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return book


def load_rules(directory: str | os.PathLike[str] | None = None) -> RuleBook:
    """The compiled rules of ``directory`` (default: the nearest ``knowledge/rules``); cached
    until a file changes. A malformed file raises RulesError: the diagnoser never runs on
    half its knowledge."""
    path = Path(directory) if directory else find_rules_dir()
    if path is None or not path.is_dir():
        raise RulesError(str(path or "knowledge/rules"), "(root)",
                         "no rules directory: set knowledge.rules_dir in the pack config")
    return _load_cached(str(path.resolve()), _fingerprint(path))


def rules_for(config: dict[str, Any] | None) -> RuleBook:
    """The rule book the pack config points at (``knowledge.rules_dir``), else the default."""
    section = dict((config or {}).get("knowledge") or {})
    return load_rules(section.get("rules_dir") or None)
