"""``aegis validate`` warns when a rule feeds trigger text into an Orquesta workflow's inputs."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from conftest import REPO

from st2lite.untrusted import inert_pattern, inert_schema, trigger_references, untrusted_inputs
from st2lite.validation import check_pack


@pytest.mark.parametrize(
    ("pattern", "inert"),
    [
        ("^inc-[0-9a-f]{16}$", True),
        (r"\Ainc-[0-9a-f]{16}\Z", True),
        ("^[A-Za-z0-9_.~/%-]*$", True),
        (r"^\w+$", True),
        ("^(ab|cd)+$", True),
        ("[0-9a-f]{16}", False),  # unanchored: jsonschema searches, the rest is free
        ("^inc-.*$", False),
        ("^[^x]+$", False),
        (r"^\S+$", False),
        ("^(a|b{)$", False),
        ("^a$|^{", False),
        ("^[!-~]+$", False),  # a range spanning '<' and '{'
        ("(", False),  # not a regex
        (None, False),
    ],
)
def test_inert_pattern(pattern, inert):
    assert inert_pattern(pattern) is inert


@pytest.mark.parametrize(
    ("schema", "inert"),
    [
        ({"type": "boolean"}, True),
        ({"type": ["integer", "null"]}, True),
        ({"enum": ["firing", "resolved"]}, True),
        ({"enum": ["ok", "{{ x }}"]}, False),
        ({"type": "string"}, False),
        ({"type": "string", "format": "date-time"}, False),  # formats are not enforced
        ({"type": "object"}, False),
        ({"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}]}, True),
        (None, False),
    ],
)
def test_inert_schema(schema, inert):
    assert inert_schema(schema) is inert


def test_trigger_references_follow_attribute_and_item_chains():
    refs = trigger_references("{{ trigger.labels.pod }} {{ trigger['body'] | tojson }} {{ trigger }} {{ trigger.a[k] }}")
    assert refs == [("labels", "pod"), ("body",), (), ("a",)]
    assert trigger_references("{{ st2kv.system.x }} {{ action_context.trigger_instance.id }}") == []
    assert trigger_references("{{ trigger.x }") == [()]  # unparseable: assume everything


def test_untrusted_inputs_judges_the_field_then_the_parameter():
    payload = {"properties": {"id": {"type": "string", "pattern": "^inc-[0-9a-f]{16}$"}, "labels": {"type": "object"},
                              "body": {"type": "object"}}}  # fmt: skip
    params = {"incident_id": "{{ trigger.id }}", "labels": "{{ trigger.labels }}", "note": "literal text",
              "nested": {"pod": "{{ trigger.labels.pod }}"}, "body": "{{ trigger.body | tojson | urlencode }}"}  # fmt: skip
    action = {"body": {"type": "string", "pattern": "^[A-Za-z0-9_.~/%-]*$"}}
    assert untrusted_inputs(params, payload, action) == [("labels", "trigger.labels"), ("nested", "trigger.labels.pod")]


def _pack_copy(tmp_path):
    dest = tmp_path / "aegis"
    shutil.copytree(REPO / "packs" / "aegis", dest, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    # The runbooks and diagnosis rules live outside the pack; the pack finds them upward.
    shutil.copytree(REPO / "knowledge", tmp_path / "knowledge")
    return dest


def test_the_aegis_pack_has_no_warning_and_the_old_rule_gets_one_per_text_field(tmp_path):
    assert check_pack(REPO / "packs" / "aegis").warnings == []
    pack = _pack_copy(tmp_path)
    rule_file = pack / "rules" / "remediate_firing_alert.yaml"
    rule = yaml.safe_load(rule_file.read_text())
    # What the rule passed before: the alert's text, straight into the workflow's inputs.
    rule["action"]["parameters"].update(labels="{{ trigger.labels }}", annotations="{{ trigger.annotations }}")
    rule_file.write_text(yaml.safe_dump(rule))
    action_file = pack / "actions" / "remediate.yaml"
    action = yaml.safe_load(action_file.read_text())
    action["parameters"].update(labels={"type": "object"}, annotations={"type": "object"})
    action_file.write_text(yaml.safe_dump(action))
    report = check_pack(pack)
    assert report.ok, report.problems  # valid on st2: a warning, not a problem
    fields = sorted(w.field for w in report.warnings)
    assert fields == ["action.parameters.annotations", "action.parameters.labels"]
    assert all("trigger.labels" in w.message or "trigger.annotations" in w.message for w in report.warnings)
    out = subprocess.run([str(REPO / ".venv" / "bin" / "aegis"), "validate", str(pack)], capture_output=True, text=True)
    assert out.returncode == 0 and "warning: " in out.stdout and "trigger.labels" in out.stdout


def test_an_identifier_field_without_a_pattern_is_warned_about(tmp_path):
    pack = _pack_copy(tmp_path)
    sensor_file = pack / "sensors" / "alertmanager_webhook_sensor.yaml"
    sensor = yaml.safe_load(sensor_file.read_text())
    del sensor["trigger_types"][0]["payload_schema"]["properties"]["incident_id"]["pattern"]
    sensor_file.write_text(yaml.safe_dump(sensor))
    action_file = pack / "actions" / "remediate.yaml"
    action = yaml.safe_load(action_file.read_text())
    del action["parameters"]["incident_id"]["pattern"]
    action_file.write_text(yaml.safe_dump(action))
    [warning] = check_pack(pack).warnings
    assert warning.field == "action.parameters.incident_id" and "trigger.incident_id" in warning.message
