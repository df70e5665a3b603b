"""Action aliases (ChatOps): st2's format parser and matching, and commands run end to end
through a real runtime on the aegis pack and on a copy of the wftest fixture pack."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from st2lite.aliases import AliasExecutionError, AliasExecutor, main
from st2lite.pack_env.pack_runtime.aliases import (
    ActionAliasAmbiguityException,
    InvalidAliasFormat,
    ParseException,
    extract_parameters,
    get_matching_alias,
    match_command_to_alias,
    normalise_alias_format_string,
)

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------

PARSER_CASES = [
    # (format, command, expected parameters)
    ("run {{cmd}} on {{hosts}}", "run date on localhost", {"cmd": "date", "hosts": "localhost"}),
    ("run {{ cmd }} on {{ hosts }}", "run uname -a on web1", {"cmd": "uname -a", "hosts": "web1"}),
    # defaults: given, left out (inside an optional regex group), JSON default
    ("run {{cmd}} on {{hosts=localhost}}", "run date on web1", {"cmd": "date", "hosts": "web1"}),
    ("run {{cmd}}( on {{hosts=localhost}})?", "run date", {"cmd": "date", "hosts": "localhost"}),
    ("run {{cmd}} {{ hosts = 'a b' }}", "run date", {"cmd": "date", "hosts": "a b"}),
    ('set {{key}} {{value={"a": 1}}}', "set limits", {"key": "limits", "value": '{"a": 1}'}),
    # quoted values keep their spaces, lose their quotes
    (
        "say {{phrase}} to {{who}}",
        "say \"hello world\" to 'the team'",
        {"phrase": "hello world", "who": "the team"},
    ),
    # a {...} value is one value, spaces and nesting included (a string; the action's type casts it)
    ("post {{payload}}", 'post {"a": {"b": [1, 2]}}', {"payload": '{"a": {"b": [1, 2]}}'}),
    # trailing key=value pairs become extra parameters: word, quoted, object
    (
        "run {{cmd}}",
        'run date timeout=120 env="a b" who=\'x y\' obj={"k": 1}',
        {"cmd": "date", "timeout": "120", "env": "a b", "who": "x y", "obj": '{"k": 1}'},
    ),
    ("run {{cmd}}( on {{hosts=localhost}})?", "run date hosts=db1", {"cmd": "date", "hosts": "db1"}),
    # surrounding whitespace is ignored
    ("run {{cmd}}", "\t  run date \n", {"cmd": "date"}),
    # the format is a regular expression
    ("(run|execute) {{cmd}}[!.]?", "execute uptime!", {"cmd": "uptime"}),
    # anchored: the last parameter takes the rest of the command
    ("run {{cmd}}", "run date now", {"cmd": "date now"}),
    ("aegis mode", "aegis mode", {}),
]


@pytest.mark.parametrize(("format_string", "command", "expected"), PARSER_CASES)
def test_extracts_parameters(format_string: str, command: str, expected: dict) -> None:
    assert extract_parameters(format_string, command) == expected


@pytest.mark.parametrize(
    ("format_string", "command"),
    [
        ("run {{cmd}}", "please run date"),  # anchored at the start
        ("run {{cmd}} on {{hosts}}", "run date"),  # a required parameter is missing
        ("aegis mode", "aegis mode auto"),  # anchored at the end
        ("aegis mode {{ mode }}", "aegis mode"),
        # trailing blanks are not a value (st2 would take them as why=" ")
        ("mode {{m}} {{why}}", "mode auto   "),
    ],
)
def test_command_that_does_not_fit_raises_parse_exception(format_string: str, command: str) -> None:
    with pytest.raises(ParseException) as info:
        extract_parameters(format_string, command)
    assert str(info.value) == f'Command "{command}" doesn\'t match format string "{format_string}"'


def test_nothing_given_and_no_default_is_an_error() -> None:
    with pytest.raises(ParseException, match="No value supplied and no default value found"):
        extract_parameters('{{ reason="" }}', "   ")


def test_format_that_is_not_a_pattern_is_reported_as_such() -> None:
    with pytest.raises(InvalidAliasFormat, match="not a valid pattern"):
        extract_parameters("run {{the-cmd}}", "run date")
    with pytest.raises(InvalidAliasFormat):
        extract_parameters("{{x}} and {{x}}", "a and b")


def test_match_multiple_gives_one_parameter_set_per_match() -> None:
    # Anchors written in the format are kept, so each `google ...` is a match of its own.
    format_string = r"(?:^|,)\s*google {{query}}(?=\s*(?:,|$))"
    command = "google disk full, google oom killer,google 'high load'"
    assert extract_parameters(format_string, command, match_multiple=True) == [
        {"query": "disk full"},
        {"query": "oom killer"},
        {"query": "high load"},
    ]
    assert extract_parameters(format_string, command) == {"query": "disk full"}


def test_normalise_alias_format_string() -> None:
    assert normalise_alias_format_string("a {{b}}") == ("a {{b}}", ["a {{b}}"], False)
    assert normalise_alias_format_string({"display": "a <b>", "representation": ["a {{b}}", "x {{b}}"]}) == (
        "a <b>",
        ["a {{b}}", "x {{b}}"],
        False,
    )
    assert normalise_alias_format_string({"representation": "a {{b}}", "match_multiple": True}) == (
        None,
        ["a {{b}}"],
        True,
    )
    with pytest.raises(TypeError, match="neither a dictionary or string"):
        normalise_alias_format_string(["a"])


# --------------------------------------------------------------------------------------
# Matching a command against aliases
# --------------------------------------------------------------------------------------

GET = {"name": "get", "formats": ["kv get {{ key }}"]}
SET = {
    "name": "set",
    "formats": [{"display": "kv set <key> <value>", "representation": ["kv set {{ key }} {{ value }}"]}],
}
LIST = {"name": "list", "formats": ["kv list"], "enabled": False}
SEARCH = {"name": "search", "formats": ["search {{ q }}"]}
MULTI = {
    "name": "multi",
    "formats": [{"representation": [r"(?:^|;)\s*ping {{ host }}(?=\s*(?:;|$))"], "match_multiple": True}],
}


def test_one_alias_matches() -> None:
    found = get_matching_alias("kv set a 1", [GET, SET, LIST])
    assert (found.alias["name"], found.display, found.representation) == (
        "set",
        "kv set <key> <value>",
        "kv set {{ key }} {{ value }}",
    )
    assert [m.alias["name"] for m in match_command_to_alias("kv get a", [GET, SET])] == ["get"]


def test_no_match_uses_st2s_message() -> None:
    with pytest.raises(ActionAliasAmbiguityException) as info:
        get_matching_alias("hello donny", [GET, SET])
    assert str(info.value) == "Command 'hello donny' matched no patterns"
    assert info.value.matches == []


def test_disabled_alias_is_not_matched() -> None:
    assert match_command_to_alias("kv list", [LIST])  # st2's listing does not filter...
    with pytest.raises(ActionAliasAmbiguityException, match="matched no patterns"):
        get_matching_alias("kv list", [GET, LIST])  # ...but execution only takes enabled aliases


def test_two_aliases_matching_is_ambiguous() -> None:
    other = {"name": "other", "formats": ["kv {{ verb }} {{ key }}"]}
    with pytest.raises(ActionAliasAmbiguityException) as info:
        get_matching_alias("kv get a", [GET, other])
    assert str(info.value) == "Command 'kv get a' matched more than 1 pattern"
    assert sorted(m.alias["name"] for m in info.value.matches) == ["get", "other"]


def test_two_representations_of_one_alias_matching_is_ambiguous() -> None:
    # st2 #4511: a longer and a shorter representation both fit a long command.
    alias = {
        "name": "mode",
        "formats": [{"display": "mode <m> [why]", "representation": ["mode {{m}} {{why}}", "mode {{m}}"]}],
    }
    with pytest.raises(ActionAliasAmbiguityException, match="matched more than 1 pattern"):
        get_matching_alias("mode auto because", [alias])
    # An optional parameter with a default is the unambiguous way to write it.
    fixed = {"name": "mode", "formats": ['mode {{m}} {{why=""}}']}
    assert extract_parameters(
        get_matching_alias("mode auto because", [fixed]).representation, "mode auto because"
    ) == {
        "m": "auto",
        "why": "because",
    }


def test_match_multiple_formats_come_after_the_others() -> None:
    catch_all = {"name": "catch_all", "formats": ["ping {{ anything }}"]}
    # The plain alias fits, so the match_multiple one is not considered.
    assert get_matching_alias("ping a; ping b", [MULTI, catch_all]).alias["name"] == "catch_all"
    found = get_matching_alias("ping a; ping b", [MULTI, SEARCH])
    assert found.alias["name"] == "multi" and found.match_multiple
    twin = {**MULTI, "name": "twin"}
    with pytest.raises(ActionAliasAmbiguityException, match=r"matched more than 1 \(multi\) pattern"):
        get_matching_alias("ping a; ping b", [MULTI, twin])


# --------------------------------------------------------------------------------------
# End to end: the aegis pack's aliases on a real runtime
# --------------------------------------------------------------------------------------


@pytest.fixture
def aegis_runtime(make_runtime, tmp_path: Path):
    home = tmp_path / "home"
    (home / "configs").mkdir(parents=True)
    (home / "configs" / "aegis.yaml").write_text(yaml.safe_dump({"mode": "advisory", "chatops": {"approvers": ["alice", "bob"]}}))
    return make_runtime(REPO / "packs" / "aegis", home=home)


def test_aegis_mode_aliases_end_to_end(aegis_runtime) -> None:
    executor = AliasExecutor(aegis_runtime)
    assert aegis_runtime.store.get("aegis.mode") is None

    reply = executor.execute(
        "aegis mode monitor maintenance window", user="alice", channel="#ops", timeout=120
    )
    assert reply["alias"] == "aegis.set_mode"
    assert reply["status"] == "succeeded"
    assert reply["ack"] == "Setting Aegis mode to monitor…"
    assert reply["result"] == "Aegis mode is now *monitor* (was advisory, from datastore), set by alice — maintenance window"
    assert aegis_runtime.store.get("aegis.mode") == "monitor"
    record = aegis_runtime.records.get_execution(reply["execution_id"])
    assert record["action"] == "aegis.set_mode"
    # chat_user and channel: the alias's immutable parameters, rendered from the context.
    assert record["parameters"] == {"mode": "monitor", "reason": "maintenance window", "chat_user": "alice", "channel": "#ops"}
    assert record["context"] == {
        "action_alias_ref": "aegis.set_mode", "api_user": "alice", "user": "stanley", "source_channel": "#ops",
    }  # fmt: skip

    status = executor.execute("aegis mode", timeout=120)
    assert status["alias"] == "aegis.get_mode"
    assert status["ack"] is None  # ack disabled
    assert status["result"] == "Aegis mode: *monitor* (from datastore)."

    cleared = executor.execute("  aegis mode clear  ", user="bob", timeout=120)
    assert cleared["result"] == "Aegis mode is now *advisory* (was monitor, from config), set by bob"
    assert aegis_runtime.store.get("aegis.mode") is None


def test_aegis_bad_commands_start_nothing(aegis_runtime) -> None:
    executor = AliasExecutor(aegis_runtime)
    with pytest.raises(AliasExecutionError) as info:
        executor.execute("reboot everything")  # "aegis ..." would be the pack's catch-all alias
    assert str(info.value).startswith("Command 'reboot everything' matched no patterns; the commands are:\n")
    assert "\n  aegis mode <monitor|advisory|auto|clear> [reason]" in str(info.value), "it lists what it knows"
    # `turbo` is not in the action's enum: refused before anything runs.
    with pytest.raises(AliasExecutionError, match="turbo"):
        executor.execute("aegis mode turbo")
    assert aegis_runtime.records.list_executions() == []
    assert aegis_runtime.store.get("aegis.mode") is None


def test_cli_match_and_execute(aegis_runtime, capsys) -> None:
    assert main(["match", "aegis", "mode", "auto"], lambda: aegis_runtime) == 0
    out = capsys.readouterr().out
    assert "aegis.set_mode" in out and '"mode": "auto"' in out

    assert main(["execute", "aegis mode auto", "-u", "bob"], lambda: aegis_runtime) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "Setting Aegis mode to auto…",
        "Aegis mode is now *auto* (was advisory, from datastore), set by bob",
    ]

    assert main(["execute", "fly"], lambda: aegis_runtime) == 2
    assert "Command 'fly' matched no patterns" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# End to end: immutable parameters, casts, match_multiple, disabled and default messages
# --------------------------------------------------------------------------------------

CHAT_ALIASES = {
    "add_ten": {
        "name": "add_ten", "pack": "wftest", "action_ref": "wftest.add",
        "formats": ["add ten to {{ a }}"],
        "immutable_parameters": {"b": "{{ st2kv.system.ten }}"},
        "ack": {"format": "Adding for {{ execution.context.api_user }} with {{ actionalias.ref }}"},
        "result": {"format": "{{ execution.parameters.a }} + {{ execution.parameters.b }} = {{ execution.result.result }}"},
    },
    "echo_each": {
        "name": "echo_each", "pack": "wftest", "action_ref": "wftest.echo",
        "formats": [{"display": "echo <v>; echo <v>...", "match_multiple": True,
                     "representation": [r"(?:^|;)\s*echo {{ value }}(?=\s*(?:;|$))"]}],
        "ack": {"enabled": False},
    },
    "tags": {
        "name": "tags", "pack": "wftest", "action_ref": "wftest.with_items",
        "formats": ["tag {{ tags }}"],
        "immutable_parameters": {"seconds": 0},
        "result": {"format": "{{ execution.result.nope.deeper }}"},
    },
}  # fmt: skip


@pytest.fixture
def chat_runtime(make_runtime, tmp_path: Path):
    pack = tmp_path / "wftest"
    shutil.copytree(REPO / "tests" / "fixtures" / "packs" / "wftest", pack)
    (pack / "aliases").mkdir()
    for name, alias in CHAT_ALIASES.items():
        (pack / "aliases" / f"{name}.yaml").write_text(yaml.safe_dump(alias))
    runtime = make_runtime(pack)
    runtime.store.set("ten", "10")
    return runtime


def test_immutable_parameters_are_rendered_cast_and_protected(chat_runtime) -> None:
    executor = AliasExecutor(chat_runtime)
    reply = executor.execute("add ten to 2.5", user="carol", timeout=120)
    assert reply["parameters"] == {"a": 2.5, "b": 10}  # cast by the action's `number` type
    assert reply["ack"] == "Adding for carol with wftest.add_ten"
    assert reply["result"] == "2.5 + 10.0 = 12.5"  # a `number` is a float, as in st2
    with pytest.raises(AliasExecutionError, match="Immutable arguments cannot be overriden: b"):
        executor.execute("add ten to 1 b=5")


def test_match_multiple_runs_one_execution_per_match(chat_runtime) -> None:
    reply = AliasExecutor(chat_runtime).execute("echo one; echo 'two words' ;echo three", timeout=120)
    assert [e["parameters"] for e in reply["executions"]] == [
        {"value": "one"},
        {"value": "two words"},
        {"value": "three"},
    ]
    assert all(e["ack"] is None for e in reply["executions"])  # ack disabled
    # No result.format: the chatops default layout.
    first = reply["executions"][0]
    assert first["result"].splitlines()[:3] == [
        "Action wftest.echo completed.", "status : succeeded", f"execution: {first['execution_id']}",
    ]  # fmt: skip
    assert "result : one" in first["result"]


def test_array_cast_and_unrenderable_result(chat_runtime) -> None:
    reply = AliasExecutor(chat_runtime).execute("tag web, db ,cache", timeout=120)
    assert reply["status"] == "succeeded"
    assert chat_runtime.records.get_execution(reply["execution_id"])["parameters"] == {
        "tags": ["web", "db", "cache"], "seconds": 0,
    }  # fmt: skip
    assert reply["result"].startswith('Cannot render "format" in field "result" for alias. ')
    assert "nope" in reply["result"]
