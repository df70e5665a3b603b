"""st2 action alias formats: parameter extraction and command matching (standard library only).

Mirrors st2common/models/utils/action_alias_utils.py and st2common/util/actionalias_matching.py,
so that a command means here what it means to ``st2 action-alias execute`` and to hubot.
Imported by the runtime (``st2lite.aliases``) and, in the pack venv, by ``st2tests.base``.

A format string is a regular expression in which ``{{ name }}`` is a parameter and
``{{ name=default }}`` an optional one; the whole command must match (anchors are added
unless the format has its own), surrounding whitespace is ignored, values may be quoted
('...' or "...") or a ``{...}`` object, and trailing ``key=value`` pairs become extra
parameters:

    >>> ActionAliasFormatParser("run {{cmd}} on {{hosts=localhost}}", "run date on web1").get_extracted_param_value()
    {'cmd': 'date', 'hosts': 'web1'}
    >>> extract_parameters("run {{cmd}}( on {{hosts=localhost}})?", '  run "uname -a"  timeout=120 ')
    {'cmd': 'uname -a', 'hosts': 'localhost', 'timeout': '120'}
    >>> try:
    ...     extract_parameters("run {{cmd}}", "deploy now")
    ... except ParseException as exc:
    ...     print(exc)
    Command "deploy now" doesn't match format string "run {{cmd}}"

Matching a command against aliases (mappings as in the YAML, or objects with ``formats``,
``enabled`` and ``name`` attributes):

    >>> aliases = [{"name": "get_mode", "formats": ["aegis mode"]},
    ...            {"name": "set_mode", "formats": [{"display": "aegis mode <mode>",
    ...                                              "representation": ["aegis mode {{ mode }}"]}]}]
    >>> match = get_matching_alias("aegis mode auto", aliases)
    >>> match.alias["name"], match.representation
    ('set_mode', 'aegis mode {{ mode }}')
    >>> try:
    ...     get_matching_alias("aegis reboot", aliases)
    ... except ActionAliasAmbiguityException as exc:
    ...     print(exc)
    Command 'aegis reboot' matched no patterns
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "ActionAliasAmbiguityException",
    "ActionAliasFormatParser",
    "AliasDefinition",
    "AliasFormat",
    "InvalidAliasFormat",
    "ParseException",
    "extract_parameters",
    "extract_parameters_for_action_alias_db",
    "get_matching_alias",
    "list_format_strings_from_aliases",
    "match_command_to_alias",
    "normalise_alias_format_string",
]


class ParseException(ValueError):
    """The command does not fit the format string (st2's ``ParseException``)."""


class InvalidAliasFormat(ValueError):
    """The format string itself is not a usable pattern (a bug in the alias, not the command)."""


class ActionAliasAmbiguityException(ValueError):
    """No format, or more than one, matched the command; ``matches`` holds the candidates."""

    def __init__(self, message: str, matches: list[AliasFormat], command: str) -> None:
        super().__init__(message)
        self.matches = matches
        self.command = command


# --------------------------------------------------------------------------------------
# Format strings -> regular expressions.
#
# The pieces below are st2's, kept equivalent so that a format means the same thing on both
# systems (st2 users write formats against st2's quirks, e.g. that a value in quotes may
# contain spaces, or that a `{...}` value ends at the first `}` that lets the rest match).
# --------------------------------------------------------------------------------------

# A parameter name inside {{ }}: anything without spaces.
_KEY = r"\s*(\S+?)\s*"
# A key=value value: empty quotes, quoted text, an object, or one word.
_VALUE = r"\"\"|''|\"(.+?)\"|'(.+?)'|({.+?})|(\S+)"
# A default inside {{ name=default }}: the same, but unquoted text may contain spaces.
_DEFAULT_VALUE = r"\"\"|''|\"(.+?)\"|'(.+?)'|({.+?})|(.+?)"
_PAIR = rf"(?:^|\s+){_KEY}=({_VALUE})"
_TRAILING_PAIRS = re.compile(rf".*?(({_PAIR}\s*)*)$", re.DOTALL)
_PAIR_RE = re.compile(_PAIR, re.DOTALL)
_OPTIONAL = "{{" + _KEY + rf"\s*=\s*(?:{_DEFAULT_VALUE})\s*" + "}}"
_OPTIONAL_RE = re.compile(_OPTIONAL, re.DOTALL)
_REQUIRED = "{{" + _KEY + "}}"
# What a parameter becomes: the whitespace before it (group 1), optional quotes around the
# value, and the value as a named group; a quoted value runs to the closing quote, an
# object to a closing brace, anything else as little as lets the rest of the format match.
_PARAMETER = r"""\1["']?(?P<\2>(?:(?<=').+?(?=')|(?<=").+?(?=")|{.+?}|.+?))["']?"""


def _has_anchor(pattern: str, anchors: tuple[str, ...]) -> bool:
    """True when ``pattern`` holds one of ``anchors`` (``^``, ``\\A``, ``$``, ``\\Z``) as an
    anchor: not escaped and not inside a character class. st2 walks sre_parse's tokens for
    this; a scan of the text is equivalent for these four and needs no private module."""
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            if not in_class and pattern[i : i + 2] in anchors:
                return True
            i += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
        elif char == "[":
            in_class = True
            # A ']' right after '[' or '[^' is a literal member of the class.
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                i += 1
        elif char in anchors:
            return True
        i += 1
    return False


class ActionAliasFormatParser:
    """Extract the parameters of one command against one format string.

    >>> ActionAliasFormatParser("say {{ phrase }}", 'say "hello world" color=red').get_extracted_param_value()
    {'phrase': 'hello world', 'color': 'red'}
    """

    def __init__(self, alias_format: str | None = None, param_stream: str | None = None) -> None:
        self._format = alias_format or ""
        self._original_param_stream = param_stream or ""
        self._kv_pairs, self._param_stream = self._cut_trailing_pairs(self._original_param_stream)
        self._defaults = {
            groups[0]: "".join(g or "" for g in groups[1:]) for groups in _OPTIONAL_RE.findall(self._format)
        }
        self._regex = self._compile()

    @staticmethod
    def _cut_trailing_pairs(stream: str) -> tuple[dict[str, str], str]:
        tail = _TRAILING_PAIRS.match(stream)
        pairs: dict[str, str] = {}
        if tail and tail.group(1):
            for groups in _PAIR_RE.findall(tail.group(1)):
                pairs[groups[0]] = "".join(groups[2:])
            # st2 replaces every occurrence of the tail text; only the tail itself is cut here.
            stream = stream[: tail.start(1)]
        # st2 pads the command with one space each side (so that a format's edge space
        # matches) but does not strip it: "mode {{m}} {{why}}" then took the trailing blanks
        # of "mode auto  " as why=" ". Stripping first makes surrounding whitespace not count.
        return pairs, f" {stream.strip()} "

    def _compile(self) -> re.Pattern[str]:
        pattern = re.sub(r"(\s*)" + _OPTIONAL, "(?:" + _PARAMETER + ")?", self._format)
        pattern = re.sub(r"(\s*)" + _REQUIRED, _PARAMETER, pattern)
        if not _has_anchor(pattern, ("^", "\\A")):
            pattern = r"^\s*" + pattern
        if not _has_anchor(pattern, ("$", "\\Z")):
            pattern = pattern + r"\s*$"
        try:
            return re.compile(pattern, re.DOTALL)
        except re.error as exc:
            # e.g. a parameter name that is not an identifier, or one used twice.
            raise InvalidAliasFormat(f'format string "{self._format}" is not a valid pattern: {exc}') from exc

    def _params_of(self, matched: re.Match[str]) -> dict[str, Any]:
        result: dict[str, Any] = dict(matched.groupdict())
        for name, default in self._defaults.items():
            result[name] = result.get(name) or default
        result.update(self._kv_pairs)
        if self._format and not (self._param_stream.strip() or any(result.values())):
            raise ParseException("No value supplied and no default value found.")
        # A parameter inside a part of the format the command left out (a user's `(...)?`) has
        # no value; it is left out so that the action's default applies (st2 passes None).
        return {k: v for k, v in result.items() if v is not None}

    def _no_match(self) -> ParseException:
        return ParseException(
            f'Command "{self._original_param_stream}" doesn\'t match format string "{self._format}"'
        )

    def get_extracted_param_value(self) -> dict[str, Any]:
        """The parameters of the command; ``ParseException`` when it does not fit the format."""
        matched = self._regex.search(self._param_stream)
        if not matched:
            raise self._no_match()
        return self._params_of(matched)

    def get_multiple_extracted_param_value(self) -> list[dict[str, Any]]:
        """One parameter set per non-overlapping match (formats with ``match_multiple``)."""
        results = [self._params_of(m) for m in self._regex.finditer(self._param_stream)]
        if not results:
            raise self._no_match()
        return results


def extract_parameters(format_str: str, param_stream: str, match_multiple: bool = False) -> Any:
    """``dict`` of parameters, or a ``list`` of them when ``match_multiple``."""
    parser = ActionAliasFormatParser(alias_format=format_str, param_stream=param_stream)
    return (
        parser.get_multiple_extracted_param_value() if match_multiple else parser.get_extracted_param_value()
    )


# --------------------------------------------------------------------------------------
# Aliases and their formats.
# --------------------------------------------------------------------------------------


def _field(alias: Any, name: str, default: Any = None) -> Any:
    if isinstance(alias, Mapping):
        return alias.get(name, default)
    return getattr(alias, name, default)


@dataclass
class AliasDefinition:
    """An alias as st2 registers it (the shape of ``ActionAliasDB``), from its YAML.

    >>> alias = AliasDefinition.from_meta({"name": "get_mode", "action_ref": "aegis.get_mode",
    ...                                    "formats": ["aegis mode", "aegis status"]}, pack="aegis")
    >>> alias.ref, alias.get_format_strings()
    ('aegis.get_mode', ['aegis mode', 'aegis status'])
    """

    name: str
    pack: str
    action_ref: str
    formats: list[Any] = field(default_factory=list)
    description: str = ""
    enabled: bool = True
    ack: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    immutable_parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.pack}.{self.name}"

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], pack: str | None = None) -> AliasDefinition:
        return cls(
            name=meta["name"],
            pack=pack or meta["pack"],
            action_ref=meta["action_ref"],
            formats=list(meta.get("formats") or []),
            description=meta.get("description") or "",
            enabled=meta.get("enabled", True) is not False,
            ack=dict(meta.get("ack") or {}),
            result=dict(meta.get("result") or {}),
            extra=dict(meta.get("extra") or {}),
            immutable_parameters=dict(meta.get("immutable_parameters") or {}),
        )

    def get_format_strings(self) -> list[str]:
        """Every string a command is matched against: the representations, or the plain formats."""
        strings: list[str] = []
        for format_ in self.formats:
            display, representations, _ = normalise_alias_format_string(format_)
            strings.extend(representations or ([display] if display else []))
        return strings


class AliasFormat(NamedTuple):
    """One representation of one alias format: what a command is matched against."""

    alias: Any
    display: str | None
    representation: str
    match_multiple: bool = False


def normalise_alias_format_string(alias_format: Any) -> tuple[str | None, list[str], bool]:
    """``(display, representations, match_multiple)`` of a string or a display/representation object.

    >>> normalise_alias_format_string("aegis mode")
    ('aegis mode', ['aegis mode'], False)
    >>> normalise_alias_format_string({"display": "mode <m>", "representation": "mode {{m}}", "match_multiple": True})
    ('mode <m>', ['mode {{m}}'], True)
    """
    if isinstance(alias_format, str):
        return alias_format, [alias_format], False
    if isinstance(alias_format, Mapping):
        representation = alias_format.get("representation") or []
        if isinstance(representation, str):
            representation = [representation]
        return (
            alias_format.get("display"),
            list(representation),
            bool(alias_format.get("match_multiple", False)),
        )
    raise TypeError(f"alias_format {alias_format!r} is neither a dictionary or string type.")


def list_format_strings_from_aliases(aliases: Iterable[Any]) -> list[AliasFormat]:
    """Every (alias, display, representation) of ``aliases``, in the order they are written."""
    patterns: list[AliasFormat] = []
    for alias in aliases:
        for format_ in _field(alias, "formats") or []:
            display, representations, match_multiple = normalise_alias_format_string(format_)
            if not representations:
                # st2 lists a display-only format (help text) with an empty representation.
                patterns.append(AliasFormat(alias, display, "", match_multiple))
            patterns.extend(AliasFormat(alias, display, r, match_multiple) for r in representations)
    return patterns


def match_command_to_alias(
    command: str, aliases: Iterable[Any], match_multiple: bool | None = None
) -> list[AliasFormat]:
    """Every representation of ``aliases`` the command fits (st2's function: no filtering of
    disabled aliases and no ambiguity check; see :func:`get_matching_alias` for those).

    ``match_multiple`` limits the search to formats with (True) or without (False) that flag.
    """
    results = []
    for candidate in list_format_strings_from_aliases(aliases):
        if match_multiple is not None and candidate.match_multiple != match_multiple:
            continue
        if not candidate.representation:
            continue  # help text only
        try:
            extract_parameters(candidate.representation, command)
        except ParseException:
            continue
        results.append(candidate)
    return results


def get_matching_alias(command: str, aliases: Iterable[Any]) -> AliasFormat:
    """The one format of the enabled ``aliases`` that ``command`` fits, as st2's
    ``POST /aliasexecution/match_and_execute`` picks it: formats without ``match_multiple``
    first, then those with it; no match or more than one raises
    :class:`ActionAliasAmbiguityException` with st2's message.

    Note that two representations of the *same* alias that both fit are ambiguous too
    (st2 #4511): write ``{{ reason=... }}`` rather than a second, shorter representation.
    """
    enabled = [a for a in aliases if _field(a, "enabled", True) is not False]
    matches = match_command_to_alias(command, enabled, match_multiple=False)
    if len(matches) > 1:
        raise ActionAliasAmbiguityException(
            f"Command '{command}' matched more than 1 pattern", matches, command
        )
    if not matches:
        matches = match_command_to_alias(command, enabled, match_multiple=True)
        if len(matches) > 1:
            raise ActionAliasAmbiguityException(
                f"Command '{command}' matched more than 1 (multi) pattern", matches, command
            )
        if not matches:
            raise ActionAliasAmbiguityException(f"Command '{command}' matched no patterns", [], command)
    return matches[0]


def extract_parameters_for_action_alias_db(
    action_alias_db: AliasDefinition, format_str: str, param_stream: str, match_multiple: bool = False
) -> Any:
    """:func:`extract_parameters`, after checking that ``format_str`` is one of the alias's."""
    if format_str not in action_alias_db.get_format_strings():
        raise ValueError(
            f'Format string "{format_str}" is not available on the alias "{action_alias_db.name}"'
        )
    return extract_parameters(format_str, param_stream, match_multiple=match_multiple)
