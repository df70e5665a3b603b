"""The table of matchers the knowledge rules are written in (like st2's ``operators.py``).

    from matchers import MATCHERS, compile_match, evaluate
    clause = compile_match({"regex": {"pattern": "OOMKilled", "in": ["logs"]}}, where="rules[0].match")
    evaluate(clause, ctx)   # the matched text ("OOMKilled"), or "" when it does not match

A clause is a mapping with exactly one key, a matcher name from ``MATCHERS``; its value is
the matcher's argument. ``all``/``any``/``not`` combine clauses. Matchers only *read* the
context (alert text is data; nothing in it is evaluated). Regular expressions are compiled
once when the rule file loads, case-insensitive unless ``case_sensitive: true``.

``share_at_most`` reads a stated share of a limit however it is phrased ("30% of the limit",
"0.3 of its 2 CPU limit", "300m of a 2000m limit", "usage 0.3 CPU, limit 2 CPU") and matches
when it is at most ``value``.

Fields a ``regex`` can look ``in``: ``alertname``, ``labels`` (all values), ``label:<name>``,
``annotations``, ``logs``, ``mount`` (the mountpoint-like label), ``subject`` (alert name and
label values), ``text`` (alert name, annotations and logs).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alert_context import Context

MOUNT_LABELS = ("mountpoint", "mount", "mount_point", "path", "volume", "persistentvolumeclaim", "device")


class MatchError(ValueError):
    """A clause is malformed; ``field`` is its dotted path in the rule file."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def mountpoint_of(labels: dict[str, str]) -> str:
    for key in MOUNT_LABELS:
        if labels.get(key):
            return labels[key]
    return ""


def tokens(value: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", value.lower()) if t}


FIELDS: dict[str, Callable[[Context], list[str]]] = {
    "alertname": lambda c: [c.alertname],
    "labels": lambda c: [c.label_text],
    "annotations": lambda c: [c.annotation_text],
    "logs": lambda c: c.logs,
    "mount": lambda c: [mountpoint_of(c.labels)],
    "subject": lambda c: [c.alertname + " " + c.label_text],
    "text": lambda c: [c.alertname, c.annotation_text, *c.logs],
}


def _texts(ctx: Context, name: str) -> list[str]:
    if name.startswith("label:"):
        return [ctx.labels.get(name[6:], "")]
    return FIELDS[name](ctx)


@dataclass(frozen=True)
class Clause:
    name: str
    arg: Any


# --------------------------------------------------------------------------- compilers (validate + prepare)


def _fields(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise MatchError(f"{where}.in", "must be a non-empty list of fields")
    for f in value:
        if not isinstance(f, str) or not (f in FIELDS or (f.startswith("label:") and len(f) > 6)):
            raise MatchError(f"{where}.in", f"unknown field {f!r} (one of {', '.join(FIELDS)}, label:<name>)")
    return tuple(value)


def _regex(pattern: Any, where: str, case_sensitive: bool = False) -> re.Pattern[str]:
    if not isinstance(pattern, str) or not pattern:
        raise MatchError(where, "must be a non-empty regular expression string")
    try:
        return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
    except re.error as exc:
        raise MatchError(where, f"is not a valid regular expression: {exc}") from exc


def _c_regex(arg: Any, where: str) -> Any:
    if not isinstance(arg, dict) or set(arg) - {"pattern", "in", "case_sensitive", "fullmatch"}:
        raise MatchError(where, "needs {pattern, in} (optional case_sensitive, fullmatch)")
    return (_regex(arg.get("pattern"), f"{where}.pattern", bool(arg.get("case_sensitive"))),
            _fields(arg.get("in"), where), bool(arg.get("fullmatch")))


def _c_names(arg: Any, where: str) -> Any:
    if not isinstance(arg, list) or not arg or not all(isinstance(a, str) and a for a in arg):
        raise MatchError(where, "must be a non-empty list of label names")
    return tuple(arg)


def _c_label_equals(arg: Any, where: str) -> Any:
    if not isinstance(arg, dict) or not isinstance(arg.get("label"), str) or not isinstance(arg.get("values"), list):
        raise MatchError(where, "needs {label, values}")
    return arg["label"], frozenset(str(v).lower() for v in arg["values"])


def _c_label_tokens(arg: Any, where: str) -> Any:
    if not isinstance(arg, dict) or not isinstance(arg.get("labels"), list) or not isinstance(arg.get("any"), list):
        raise MatchError(where, "needs {labels, any} (optional none)")
    return tuple(arg["labels"]), frozenset(arg["any"]), frozenset(arg.get("none") or ())


def _c_metric_at_least(arg: Any, where: str) -> Any:
    if not isinstance(arg, dict) or not isinstance(arg.get("metric"), list) or not isinstance(arg.get("value"), int | float):
        raise MatchError(where, "needs {metric: [name fragments], value: number}")
    return tuple(arg["metric"]), float(arg["value"])


def _c_metric_reaches(arg: Any, where: str) -> Any:
    if not isinstance(arg, dict) or not isinstance(arg.get("metric"), list) or not isinstance(arg.get("of"), list):
        raise MatchError(where, "needs {metric: [fragments], of: [fragments]}")
    return tuple(arg["metric"]), tuple(arg["of"])


def _c_count(arg: Any, where: str) -> Any:
    if not isinstance(arg, dict) or not isinstance(arg.get("value"), int):
        raise MatchError(where, "needs {pattern, in, group, value}")
    pattern, fields, _ = _c_regex({k: arg[k] for k in ("pattern", "in") if k in arg}, where)
    group = arg.get("group", 1)
    if not isinstance(group, int) or group > pattern.groups:
        raise MatchError(f"{where}.group", f"the pattern has {pattern.groups} groups")
    return pattern, fields, group, arg["value"]


#: CPU-style amounts: "300m" is millicores; cores, CPUs and vCPUs are whole units.
_AMOUNT = r"(\d+(?:\.\d+)?)\s*(m\b|millicores?|cores?|v?cpus?)?"
_ARTICLE = r"(?:(?:the|its|their|a|an)\s+)?"


def _c_share(arg: Any, where: str) -> Any:
    """``{of: [limit, quota], value: 0.5, in: [annotations]}``: the patterns that read a share."""
    if not isinstance(arg, dict) or set(arg) - {"of", "value", "in"} or not isinstance(arg.get("value"), int | float):
        raise MatchError(where, "needs {of: [words], value: number, in: [fields]}")
    words = arg.get("of")
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.isalpha() for w in words):
        raise MatchError(f"{where}.of", "must be a non-empty list of words (what the share is of: limit, quota)")
    of = "(?:" + "|".join(words) + r")\b"
    tail = r"[\s(-]*(?:[a-z]+\s+){0,2}" + of
    patterns = (
        # "30% of the limit", "at 12 percent of its CPU quota"
        re.compile(r"(\d+(?:\.\d+)?)\s?(?:%|percent)\s+of\s+" + _ARTICLE + r"(?:[a-z]+\s+){0,2}" + of, re.I),
        # "0.3 of its 2 CPU limit", "300m of a 2000m limit", "0.25 cores / 2 cores limit"
        re.compile(_AMOUNT + r"\s*(?:out of|of|/)\s*" + _ARTICLE + _AMOUNT + tail, re.I),
        # "usage 0.3 CPU, limit 2 CPU"
        re.compile(r"\b(?:usage|using|uses|used|consum\w*)\D{0,20}?" + _AMOUNT + r"[^.;\d]{0,40}?" + of
                   + r"(?:\s+(?:is|of|at))?\s*[:=]?\s*" + _AMOUNT, re.I),
    )
    return patterns, float(arg["value"]), _fields(arg.get("in"), where)


def _amount(number: str, unit: str | None) -> float:
    value = float(number)
    return value / 1000 if unit and unit.lower().startswith("m") else value


def _e_share(arg: Any, ctx: Context) -> str:
    """The text stating a share of a limit at most ``value`` (a percentage, or "A of B")."""
    patterns, at_most, fields = arg
    for f in fields:
        for text in _texts(ctx, f):
            for i, pattern in enumerate(patterns):
                for m in pattern.finditer(text):
                    if i == 0:
                        share = float(m.group(1)) / 100
                    else:
                        whole = _amount(m.group(3), m.group(4) or m.group(2))
                        share = _amount(m.group(1), m.group(2) or m.group(4)) / whole if whole else 1.0
                    if share <= at_most:
                        return m.group(0)
    return ""


def _c_status(arg: Any, where: str) -> Any:
    if arg not in ("firing", "resolved"):
        raise MatchError(where, "must be firing or resolved")
    return arg


def _c_list(arg: Any, where: str) -> Any:
    if not isinstance(arg, list) or not arg:
        raise MatchError(where, "must be a non-empty list of clauses")
    return tuple(compile_match(c, f"{where}[{i}]") for i, c in enumerate(arg))


def _c_one(arg: Any, where: str) -> Any:
    return compile_match(arg, where)


# --------------------------------------------------------------------------- evaluators


def _e_regex(arg: Any, ctx: Context) -> str:
    pattern, fields, full = arg
    for f in fields:
        for text in _texts(ctx, f):
            m = pattern.fullmatch(text) if full else pattern.search(text)
            if m:
                return m.group(0) or f
    return ""


def _e_label_present(arg: Any, ctx: Context) -> str:
    return next((f"{k}={ctx.labels[k]}" for k in arg if ctx.labels.get(k)), "")


def _e_label_equals(arg: Any, ctx: Context) -> str:
    label, values = arg
    value = ctx.labels.get(label, "")
    return f"{label}={value}" if value.lower() in values else ""


def _e_label_tokens(arg: Any, ctx: Context) -> str:
    labels, wanted, excluded = arg
    for key in labels:
        toks = tokens(ctx.labels.get(key, ""))
        if toks & wanted and not toks & excluded:
            return f"{key}={ctx.labels[key]}"
    return ""


def _e_metric_at_least(arg: Any, ctx: Context) -> str:
    fragments, value = arg
    got = ctx.metric(*fragments)
    return f"{'_'.join(fragments)}={got:g}" if got is not None and got >= value else ""


def _e_metric_reaches(arg: Any, ctx: Context) -> str:
    a, b = ctx.metric(*arg[0]), ctx.metric(*arg[1])
    return f"{'_'.join(arg[0])} {a:g} >= {'_'.join(arg[1])} {b:g}" if a is not None and b is not None and a >= b else ""


def _e_count(arg: Any, ctx: Context) -> str:
    pattern, fields, group, value = arg
    for f in fields:
        for text in _texts(ctx, f):
            for m in pattern.finditer(text):
                try:
                    if int(m.group(group)) >= value:
                        return m.group(0)
                except (TypeError, ValueError):
                    continue
    return ""


def _e_status(arg: Any, ctx: Context) -> str:
    return f"status {arg}" if ctx.alert.get("status") == arg else ""


def _e_all(arg: Any, ctx: Context) -> str:
    """The last clause's matched text (a ``not`` clause has none to show, so it is skipped)."""
    found = []
    for clause in arg:
        hit = evaluate(clause, ctx)
        if not hit:
            return ""
        if clause.name != "not":
            found.append(hit)
    return found[-1] if found else "all"


def _e_any(arg: Any, ctx: Context) -> str:
    return next((hit for clause in arg if (hit := evaluate(clause, ctx))), "")


def _e_not(arg: Any, ctx: Context) -> str:
    return "" if evaluate(arg, ctx) else "not"


#: name -> (compile(arg, where) -> prepared arg, evaluate(prepared, ctx) -> matched text or "")
MATCHERS: dict[str, tuple[Callable[[Any, str], Any], Callable[[Any, Context], str]]] = {
    "regex": (_c_regex, _e_regex),
    "label_present": (_c_names, _e_label_present),
    "label_equals": (_c_label_equals, _e_label_equals),
    "label_tokens": (_c_label_tokens, _e_label_tokens),
    "metric_at_least": (_c_metric_at_least, _e_metric_at_least),
    "metric_reaches": (_c_metric_reaches, _e_metric_reaches),
    "count_at_least": (_c_count, _e_count),
    "share_at_most": (_c_share, _e_share),
    "status": (_c_status, _e_status),
    "all": (_c_list, _e_all),
    "any": (_c_list, _e_any),
    "not": (_c_one, _e_not),
}


def compile_match(raw: Any, where: str = "match") -> Clause:
    """Check a clause and prepare it (compile regexes); raises MatchError naming the field."""
    if not isinstance(raw, dict) or len(raw) != 1:
        raise MatchError(where, f"must be a mapping with exactly one matcher ({', '.join(MATCHERS)})")
    name, arg = next(iter(raw.items()))
    if name not in MATCHERS:
        raise MatchError(where, f"unknown matcher {name!r} (one of {', '.join(MATCHERS)})")
    return Clause(name, MATCHERS[name][0](arg, f"{where}.{name}"))


def evaluate(clause: Clause, ctx: Context) -> str:
    """The text that made ``clause`` match (non-empty), or '' when it does not match."""
    return MATCHERS[clause.name][1](clause.arg, ctx)
