"""The pack's ChatOps aliases: what each command extracts, and that no command is ambiguous.

st2 runs `st2 action-alias execute "<command>"` only when exactly one format of all enabled
aliases fits the command (two representations of the same alias fitting is ambiguous too),
so every command below must fit exactly one format string of its alias and none of the
other alias.
"""

from __future__ import annotations

from pack_runtime.aliases import ParseException, extract_parameters
from st2tests.base import BaseActionAliasTestCase

# (command, parameters it gives); every format string of the alias must be used at least once.
SET_MODE_COMMANDS = [
    ("aegis mode monitor", {"mode": "monitor", "reason": ""}),
    ("aegis mode advisory", {"mode": "advisory", "reason": ""}),
    ("  aegis mode auto  ", {"mode": "auto", "reason": ""}),
    ("aegis mode clear", {"mode": "clear", "reason": ""}),
    ("aegis mode monitor maintenance window", {"mode": "monitor", "reason": "maintenance window"}),
    (
        'aegis mode monitor "db failover drill, back at 14:00"',
        {"mode": "monitor", "reason": "db failover drill, back at 14:00"},
    ),
    ("aegis mode auto reason='incident closed'", {"mode": "auto", "reason": "incident closed"}),
]
GET_MODE_COMMANDS = [
    ("aegis mode", {}),
    ("aegis status", {}),
    (" aegis status ", {}),
]


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
