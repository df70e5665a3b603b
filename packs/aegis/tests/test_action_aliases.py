"""The pack's ChatOps aliases: what each command extracts, and that no command is ambiguous.

Every alias of ``aliases/`` has its commands below; each command must, among *all* the
pack's enabled aliases and with st2's matching (formats without ``match_multiple`` first,
then those with it; more than one fit is an error), select its own alias.

st2 runs `st2 action-alias execute "<command>"` only when exactly one format of all enabled
aliases fits the command (two representations of the same alias fitting is ambiguous too),
so every command below must fit exactly one format string of its alias and none of the
other alias.
"""

from __future__ import annotations

import os
import unittest

import yaml
from pack_runtime.aliases import AliasDefinition, ParseException, extract_parameters, get_matching_alias
from st2tests.base import BaseActionAliasTestCase

ALIASES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "aliases")

INC = "inc-0123456789abcdef"
# alias name -> (command, parameters it gives); every format string of each alias is used.
# The parameters are what st2 extracts from the command; immutable_parameters come on top
# at execution time (tested in tests/test_chatops_replies.py).
COMMANDS: dict[str, list[tuple[str, dict]]] = {
    "set_mode": [
        ("aegis mode monitor", {"mode": "monitor", "reason": ""}),
        ("aegis mode advisory", {"mode": "advisory", "reason": ""}),
        ("  aegis mode auto  ", {"mode": "auto", "reason": ""}),
        ("aegis mode clear", {"mode": "clear", "reason": ""}),
        ("aegis mode monitor maintenance window", {"mode": "monitor", "reason": "maintenance window"}),
        ('aegis mode monitor "db failover drill, back at 14:00"', {"mode": "monitor", "reason": "db failover drill, back at 14:00"}),
        ("aegis mode auto reason='incident closed'", {"mode": "auto", "reason": "incident closed"}),
    ],
    "get_mode": [("aegis mode", {}), (" aegis mode ", {})],
    "status": [("aegis status", {}), (" aegis status ", {})],
    "incidents": [
        ("aegis incidents", {"which": "open"}),
        ("aegis incidents open", {"which": "open"}),
        ("aegis incidents all", {"which": "all"}),
    ],
    # st2 keeps the second space of "incident  <id>" in the value (its parser's quirk); the
    # actions strip ids.
    "incident": [(f"aegis incident {INC}", {"incident_id": INC}), (f"aegis incident  {INC} ", {"incident_id": " " + INC})],
    "approve": [(f"aegis approve {INC}", {"incident_id": INC})],
    "deny": [
        (f"aegis deny {INC}", {"incident_id": INC, "reason": ""}),
        (f"aegis deny {INC} not during the sale", {"incident_id": INC, "reason": "not during the sale"}),
        (f'aegis deny {INC} "wait for the DBA"', {"incident_id": INC, "reason": "wait for the DBA"}),
    ],
    "pause": [("aegis pause", {"reason": ""}), ("aegis pause db failover drill", {"reason": "db failover drill"})],
    "resume": [("aegis resume", {"reason": ""}), ("aegis resume drill over", {"reason": "drill over"})],
    "runbook": [
        ("aegis runbook disk full on db host", {"query": "disk full on db host"}),
        ('aegis runbook "pods OOMKilled"', {"query": "pods OOMKilled"}),
    ],
    "diagnose": [(f"aegis diagnose {INC}", {"incident_id": INC})],
    "silence": [
        (f"aegis silence {INC}", {"incident_id": INC, "duration": "1h"}),
        (f"aegis silence {INC} 2h", {"incident_id": INC, "duration": "2h"}),
    ],
    "unsilence": [(f"aegis unsilence {INC}", {"incident_id": INC})],
    # The catch-all (match_multiple): only what no other format fits.
    "help": [
        ("aegis", {"text": "help"}),
        ("aegis help", {"text": "help"}),
        ("aegis incidnets", {"text": "incidnets"}),
        ("aegis approve", {"text": "approve"}),
        ("aegis reboot everything", {"text": "reboot everything"}),
    ],
}
SET_MODE_COMMANDS = COMMANDS["set_mode"]
GET_MODE_COMMANDS = COMMANDS["get_mode"]


class _AliasCommandsMixin:
    commands: list[tuple[str, dict]] = []
    other_alias_formats: list[str] = []

    def _format_for(self, command: str) -> str:
        format_strings = self.action_alias_db.get_format_strings()
        self.assertCommandMatchesExactlyOneFormatString(format_strings, command)
        for format_string in format_strings:
            try:
                extract_parameters(format_string, command)
            except ParseException:
                continue
            return format_string
        raise AssertionError(command)  # unreachable: the assertion above found one

    def test_commands_extract_their_parameters(self) -> None:
        for command, parameters in self.commands:
            with self.subTest(command=command):
                self.assertExtractedParametersMatch(self._format_for(command), command, parameters)

    def test_every_format_string_is_exercised(self) -> None:
        used = {self._format_for(command) for command, _ in self.commands}
        self.assertEqual(set(self.action_alias_db.get_format_strings()), used)

    def test_commands_do_not_fit_the_other_alias(self) -> None:
        for command, _ in self.commands:
            for format_string in self.other_alias_formats:
                with self.subTest(command=command, format=format_string):
                    with self.assertRaises(ParseException):
                        extract_parameters(format_string, command)


def _formats_of(name: str) -> list[str]:
    class _Loader(BaseActionAliasTestCase):
        action_alias_name = name

        def runTest(self) -> None:  # noqa: N802 - unittest's name
            pass

    loader = _Loader()
    loader.setUp()
    return loader.action_alias_db.get_format_strings()


class SetModeAliasTest(_AliasCommandsMixin, BaseActionAliasTestCase):
    action_alias_name = "set_mode"
    commands = SET_MODE_COMMANDS

    def setUp(self) -> None:
        super().setUp()
        self.other_alias_formats = _formats_of("get_mode")

    def test_alias_runs_set_mode(self) -> None:
        self.assertEqual(self.action_alias_db.action_ref, "aegis.set_mode")
        self.assertEqual(self.action_alias_db.ref, "aegis.set_mode")

    def test_commands_that_are_not_set_mode(self) -> None:
        for command in ("aegis mode", "aegis modes auto", "please aegis mode auto", "aegis mode "):
            with self.subTest(command=command):
                for format_string in self.action_alias_db.get_format_strings():
                    with self.assertRaises(ParseException):
                        extract_parameters(format_string, command)


class GetModeAliasTest(_AliasCommandsMixin, BaseActionAliasTestCase):
    action_alias_name = "get_mode"
    commands = GET_MODE_COMMANDS

    def setUp(self) -> None:
        super().setUp()
        self.other_alias_formats = _formats_of("set_mode")

    def test_alias_runs_get_mode(self) -> None:
        self.assertEqual(self.action_alias_db.action_ref, "aegis.get_mode")
        self.assertEqual(self.action_alias_db.name, "get_mode")


def _all_aliases() -> list[AliasDefinition]:
    aliases = []
    for name in sorted(os.listdir(ALIASES_DIR)):
        if name.endswith(".yaml"):
            with open(os.path.join(ALIASES_DIR, name)) as fh:
                aliases.append(AliasDefinition.from_meta(yaml.safe_load(fh)))
    return aliases


# One st2 alias test case per alias that SetMode/GetMode do not already cover.
for _name in COMMANDS:
    if _name in ("set_mode", "get_mode"):
        continue
    _cls = type(f"{_name.title().replace('_', '')}AliasTest", (_AliasCommandsMixin, BaseActionAliasTestCase),
                {"action_alias_name": _name, "commands": COMMANDS[_name]})  # fmt: skip
    globals()[_cls.__name__] = _cls
del _name, _cls


class AllAliasesMatchingTest(unittest.TestCase):
    """st2's server-side matching over every alias of the pack, as match_and_execute does it."""

    def setUp(self) -> None:
        self.aliases = _all_aliases()

    def test_every_alias_has_commands(self) -> None:
        self.assertEqual({a.name for a in self.aliases}, set(COMMANDS))

    def test_each_command_selects_its_alias_and_only_it(self) -> None:
        for name, commands in COMMANDS.items():
            for command, parameters in commands:
                with self.subTest(command=command):
                    found = get_matching_alias(command, self.aliases)  # raises when none or several fit
                    self.assertEqual(found.alias.name, name)
                    extracted = extract_parameters(found.representation, command, match_multiple=found.match_multiple)
                    self.assertEqual(extracted, [parameters] if found.match_multiple else parameters)

    def test_commands_of_nobody(self) -> None:
        for command in ("reboot everything", "aegi status", "please aegis status"):
            with self.subTest(command=command):
                with self.assertRaisesRegex(ValueError, "matched no patterns"):
                    get_matching_alias(command, self.aliases)

    def test_every_alias_has_an_ack_and_a_result_for_the_phone(self) -> None:
        for alias in self.aliases:
            with self.subTest(alias=alias.name):
                self.assertIn("format", alias.result)
                self.assertTrue("format" in alias.ack or alias.ack.get("enabled") is False)

    def test_who_asked_comes_from_the_context_and_cannot_be_given(self) -> None:
        guarded = {a.name: a for a in self.aliases if a.action_ref in ("aegis.decide", "aegis.set_mode", "aegis.chat_silence")}
        self.assertEqual(set(guarded), {"approve", "deny", "set_mode", "pause", "resume", "silence", "unsilence"})
        for alias in guarded.values():
            with self.subTest(alias=alias.name):
                self.assertEqual(alias.immutable_parameters["chat_user"], "{{ api_user }}")


class BaseActionAliasTestCaseTest(BaseActionAliasTestCase):
    """The helpers themselves: they must fail when they should."""

    action_alias_name = "set_mode"

    def test_unknown_format_string_is_refused(self) -> None:
        with self.assertRaisesRegex(ValueError, 'is not available on the alias "set_mode"'):
            self.assertExtractedParametersMatch("aegis {{ x }}", "aegis x", {"x": "x"})

    def test_wrong_parameters_fail(self) -> None:
        format_string = self.action_alias_db.get_format_strings()[0]
        with self.assertRaisesRegex(AssertionError, "didn't match the provided parameters"):
            self.assertExtractedParametersMatch(format_string, "aegis mode auto now", {"mode": "monitor"})

    def test_exactly_one_format_string(self) -> None:
        with self.assertRaisesRegex(AssertionError, "didn't match any of the provided format strings"):
            self.assertCommandMatchesExactlyOneFormatString(["a {{b}}"], "c d")
        with self.assertRaisesRegex(AssertionError, "matched multiple format strings"):
            self.assertCommandMatchesExactlyOneFormatString(["a {{b}}", "a {{b}} {{c}}"], "a b c")

    def test_missing_alias_name(self) -> None:
        class Missing(BaseActionAliasTestCase):
            action_alias_name = "no_such_alias"

            def runTest(self) -> None:  # noqa: N802 - unittest's name
                pass

        with self.assertRaisesRegex(ValueError, 'Alias with name "no_such_alias" not found'):
            Missing().setUp()
