"""The core.st2.webhook path: st2's API webhook delivers a whole notification as one trigger.

The rule is disabled by default (the sensor is the default path); enabled, it runs
aegis.remediate_group, which must handle the group as the sensor does: one remediation
per new firing alert, none for a re-sent one.
"""

from __future__ import annotations

import copy
import json
from urllib.parse import quote

import yaml
from conftest import REPO

NOTIFICATION = json.loads((REPO / "tests" / "fixtures" / "alertmanager" / "two_firing.json").read_text())


def encoded(body: dict) -> str:
    """What the rule renders with ``{{ trigger.body | tojson | urlencode }}``."""
    return quote(json.dumps(body))


def test_rule_is_disabled_by_default_and_matches_st2_webhook_triggers():
    from st2lite.criteria import rule_matches

    rule = yaml.safe_load((REPO / "packs/aegis/rules/st2_webhook_alertmanager.yaml").read_text())
    assert rule["enabled"] is False
    payload = {"headers": {"Content-Type": "application/json"}, "body": NOTIFICATION}
    assert rule_matches({**rule, "enabled": True}, payload, {}).matched
    assert not rule_matches({**rule, "enabled": True}, {"headers": {}, "body": {"version": "3"}}, {}).matched


def test_remediate_group_fans_out_once_per_new_firing_alert(make_runtime, tmp_path):
    home = tmp_path / "home"
    (home / "configs").mkdir(parents=True)
    (home / "configs" / "aegis.yaml").write_text(yaml.safe_dump({"knowledge": {"use_service": False, "index_dir": str(tmp_path / "ix")}}))
    runtime = make_runtime(REPO / "packs" / "aegis", home=home)

    first = runtime.wait(runtime.execute("aegis.remediate_group", {"body": encoded(NOTIFICATION)}), timeout=300)
    assert first["status"] == "succeeded", first["result"]
    assert first["result"]["output"]["remediated"] == 2
    workflows = runtime.records.list_executions(action="aegis.remediate", limit=10)
    assert len(workflows) == 2 and all(w["status"] == "succeeded" for w in workflows)
    assert all(set(w["parameters"]) == {"incident_id"} for w in workflows)
    assert {w["result"]["output"]["incident"]["fingerprint"] for w in workflows} == {a["fingerprint"] for a in NOTIFICATION["alerts"]}

    # Alertmanager re-sends the group at repeat_interval: no second remediation.
    again = runtime.wait(runtime.execute("aegis.remediate_group", {"body": encoded(copy.deepcopy(NOTIFICATION))}), timeout=300)
    assert again["status"] == "succeeded" and again["result"]["output"]["remediated"] == 0
    assert len(runtime.records.list_executions(action="aegis.remediate", limit=10)) == 2
