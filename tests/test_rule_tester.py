"""st2-rule-tester: rule files against trigger instance files, with a real datastore."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from st2lite.pack_env.pack_runtime.datastore import KeyValueStore
from st2lite.rule_tester import RuleTesterError, check_rule, main

FIXTURES = Path(__file__).parent / "fixtures" / "rule_tester"
RULE = str(FIXTURES / "rule_page_critical.yaml")


@pytest.fixture()
def store(tmp_path):
    kv = KeyValueStore(str(tmp_path / "datastore.sqlite"))
    kv.set("aegis.environment", "prod")
    kv.set("aegis.threshold", "90")
    return kv


def test_match(store):
    assert check_rule(RULE, str(FIXTURES / "ti_critical.json"), store) == (
        True,
        "Rule aegis.page_critical matches trigger instance",
    )


def test_criterion_failure_names_key_operator_pattern_and_value(store):
    matched, message = check_rule(RULE, str(FIXTURES / "ti_warning.json"), store)
    assert not matched
    for part in (
        "aegis.page_critical",
        "trigger.labels.severity",
        "inside",
        '["critical", "page"]',
        "'warning'",
    ):
        assert part in message


def test_datastore_values_drive_the_patterns(store):
    store.set("aegis.threshold", "99")
    matched, message = check_rule(RULE, str(FIXTURES / "ti_critical.json"), store)
    assert not matched
    assert "trigger.value" in message and "greaterthan" in message and "99" in message and "97" in message
    store.set("aegis.threshold", "90")
    store.set("aegis.environment", "staging")
    matched, message = check_rule(RULE, str(FIXTURES / "ti_critical.json"), store)
    assert not matched and "'*.staging'" in message and "'web-1.prod'" in message


def test_wrong_trigger_type(store):
    matched, message = check_rule(RULE, str(FIXTURES / "ti_webhook.json"), store)
    assert not matched
    assert "'aegis.alert'" in message and "'core.st2.webhook'" in message and "trigger type" in message


def test_disabled_rule(store):
    matched, message = check_rule(
        str(FIXTURES / "rule_disabled.yaml"), str(FIXTURES / "ti_critical.json"), store
    )
    assert not matched
    assert "aegis.disabled_rule" in message and "disabled" in message


def test_yaml_trigger_instance(store, tmp_path):
    instance = tmp_path / "ti.yaml"
    instance.write_text(
        "trigger: aegis.alert\npayload:\n  status: firing\n  value: 95\n"
        "  labels: {severity: page, instance: db-2.prod}\n"
    )
    assert check_rule(RULE, str(instance), store)[0] is True


@pytest.mark.parametrize(
    ("rule", "instance", "fragment"),
    [
        ("rule_bad_yaml.yaml", "ti_critical.json", "cannot parse rule"),
        ("missing.yaml", "ti_critical.json", "cannot read rule"),
        ("rule_page_critical.yaml", "ti_no_trigger.json", "no trigger ref"),
        ("rule_page_critical.yaml", "missing.json", "cannot read trigger instance"),
    ],
)
def test_load_errors(store, rule, instance, fragment):
    with pytest.raises(RuleTesterError, match=fragment):
        check_rule(str(FIXTURES / rule), str(FIXTURES / instance), store)


def test_main_exit_codes(store, capsys):
    assert main(["--rule", RULE, "--trigger-instance", str(FIXTURES / "ti_critical.json")], store=store) == 0
    assert "matches trigger instance" in capsys.readouterr().out
    assert main(["--rule", RULE, "--trigger-instance", str(FIXTURES / "ti_warning.json")], store=store) == 1
    assert "does not match" in capsys.readouterr().out
    bad = [
        "--rule",
        str(FIXTURES / "rule_bad_yaml.yaml"),
        "--trigger-instance",
        str(FIXTURES / "ti_critical.json"),
    ]
    assert main(bad, store=store) == 2
    assert "error: cannot parse rule" in capsys.readouterr().err
    assert main(["--rule", RULE], store=store) == 2


def test_command_line_with_datastore_file(tmp_path, store):
    # A real process, reading the datastore file the fixture wrote.
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "AEGIS_HOME": str(tmp_path / "home")}
    args = [
        sys.executable,
        "-m",
        "st2lite.rule_tester",
        "--rule",
        RULE,
        "--trigger-instance",
        str(FIXTURES / "ti_critical.json"),
        "--datastore",
        store.path,
    ]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Rule aegis.page_critical matches trigger instance"

    # Without --datastore it reads $AEGIS_HOME/datastore.sqlite, which has no threshold.
    done = subprocess.run(args[:-2], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1
    assert "trigger.labels.instance" in done.stdout


def test_fixture_files_are_valid_json():
    for path in FIXTURES.glob("ti_*.json"):
        json.loads(path.read_text())
