"""Knowledge as data: the rule files validate, a malformed one is rejected with its path and
field, the matcher table behaves, and the catalogue drives the LLM schema and diagnose.yaml."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from _diag_fixtures import PACK, REPO, RUNBOOKS, alert, context
from alert_context import normalize_context
from catalogue import ACTIONS, KEYS, decision_schema
from matchers import MATCHERS, MatchError, compile_match, evaluate
from rules import RulesError, load_rules, validate_rules

RULES = REPO / "knowledge" / "rules"
CLI = PACK / "actions" / "lib" / "aegis_cli.py"


def test_the_shipped_rules_are_valid_and_every_rule_says_why_and_for_which_runbook():
    assert validate_rules(RULES, RUNBOOKS) == []
    book = load_rules(RULES)
    rules = [r for rs in book.sets.values() for r in rs]
    assert len(rules) > 50
    runbooks = {p.stem for p in RUNBOOKS.glob("*.md")}
    for rule in rules:
        assert len(rule.why) >= 10 and rule.runbook in runbooks, rule.id


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (lambda d: d["signatures"][1].pop("why"), "signatures[1]", "'why' is a required property"),
        (lambda d: d["signatures"][2].update(action="reboot"), "signatures[2].action", "is not one of"),
        (lambda d: d["signatures"][0]["match"]["regex"].update(pattern="(unclosed"),
         "signatures[0].match.regex.pattern", "not a valid regular expression"),
        (lambda d: d["signatures"][0].update(match={"smells_like": "oom"}), "signatures[0].match",
         "unknown matcher 'smells_like'"),
        (lambda d: d["signatures"][0].update(runbook="no-such-runbook"), "signatures[0].runbook",
         "no runbook with id 'no-such-runbook'"),
        (lambda d: d.update(sgnatures=[]), "(root)", "Additional properties are not allowed"),
    ],
    ids=["missing-why", "bad-action", "bad-regex", "unknown-matcher", "unknown-runbook", "unknown-set"],
)
def test_a_malformed_rule_file_is_rejected_with_its_path_and_field(tmp_path, mutate, field, message):
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    data = yaml.safe_load((rules / "signatures.yaml").read_text())
    mutate(data)
    (rules / "signatures.yaml").write_text(yaml.safe_dump(data))
    problems = validate_rules(rules, RUNBOOKS)
    assert problems, "accepted a malformed rule file"
    assert problems[0].path == str(rules / "signatures.yaml")
    assert problems[0].field == field and message in problems[0].message
    if "runbook" not in field:  # a missing runbook is only known against a runbooks directory
        with pytest.raises(RulesError, match="signatures.yaml"):
            load_rules(rules)


def test_aegis_validate_rejects_a_malformed_rule_file(tmp_path):
    """The pack CLI's validate, which ``aegis validate`` runs after the runtime's own checks."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    text = (rules / "vetoes.yaml").read_text().replace("action: scale_up", "action: scale_sideways", 1)
    (rules / "vetoes.yaml").write_text(text)
    config = tmp_path / "aegis.yaml"
    config.write_text(yaml.safe_dump({"knowledge": {"rules_dir": str(rules), "runbooks_dir": str(RUNBOOKS)}}))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "st2lite" / "pack_env"), str(PACK / "actions" / "lib")])
    out = subprocess.run([sys.executable, str(CLI), "--config", str(config), "validate"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"{rules / 'vetoes.yaml'}: vetoes[0].action: 'scale_sideways' is not one of" in out.stdout
    ok = subprocess.run([sys.executable, str(CLI), "validate"], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0 and "valid" in ok.stdout


def ctx_of(**kw):
    return normalize_context(context(alert("DiskFull", **kw.pop("labels", {}), annotations=kw.pop("annotations", {})),
                                     **kw))


def test_the_matcher_table():
    assert {"regex", "label_present", "label_equals", "label_tokens", "metric_at_least", "metric_reaches",
            "count_at_least", "share_at_most", "status", "all", "any", "not"} == set(MATCHERS)
    c = ctx_of(labels={"mountpoint": "/var/lib/postgresql", "instance": "db-1"}, logs=["restarted 4 times"],
               metrics={"hpa_current": 5, "hpa_max": {"query": "q", "value": 5}})
    assert evaluate(compile_match({"regex": {"pattern": "postgres", "in": ["mount"]}}), c) == "postgres"
    assert evaluate(compile_match({"count_at_least": {"pattern": r"(\d+) times", "in": ["logs"], "value": 3}}), c)
    assert not evaluate(compile_match({"count_at_least": {"pattern": r"(\d+) times", "in": ["logs"], "value": 5}}), c)
    assert evaluate(compile_match({"metric_reaches": {"metric": ["hpa", "current"], "of": ["hpa", "max"]}}), c)
    assert evaluate(compile_match({"not": {"label_present": ["pod"]}}), c) == "not"
    assert evaluate(compile_match({"all": [{"label_present": ["instance"]},
                                           {"label_equals": {"label": "instance", "values": ["DB-1"]}}]}), c)
    with pytest.raises(MatchError, match=r"match.regex.in: unknown field 'body'"):
        compile_match({"regex": {"pattern": "x", "in": ["body"]}})


@pytest.mark.parametrize(("text", "share"), [
    ("uses 20% of its CPU limit", "20% of its CPU limit"),
    ("at 7 percent of the quota", "7 percent of the quota"),
    ("0.3 of its 2 CPU limit", "0.3 of its 2 CPU limit"),
    ("consuming 300m of a 2000m limit", "300m of a 2000m limit"),
    ("usage 0.25 cores / 2 cores limit", "0.25 cores / 2 cores limit"),
    ("Usage 0.4 CPU, limit 2 CPU", "Usage 0.4 CPU, limit 2 CPU"),
    ("usage at 80% of its limit", ""),       # above the share
    ("0.9 of its 1 CPU limit", ""),
    ("3 of 6 pods", ""),                     # not a share of a limit
    ("62% throttling of CPU", ""),
])
def test_share_at_most_reads_a_share_of_a_limit(text, share):
    clause = compile_match({"share_at_most": {"of": ["limit", "quota"], "value": 0.5, "in": ["annotations"]}})
    assert evaluate(clause, ctx_of(annotations={"description": text})) == share
    with pytest.raises(MatchError, match=r"match.share_at_most.of: must be a non-empty list of words"):
        compile_match({"share_at_most": {"of": ["lim(it"], "value": 0.5, "in": ["annotations"]}})


def test_one_catalogue_drives_the_llm_schema_and_the_action_output_schema():
    from llm import DIAGNOSIS_SCHEMA

    assert DIAGNOSIS_SCHEMA == decision_schema()
    assert DIAGNOSIS_SCHEMA["required"] == list(KEYS)
    meta = yaml.safe_load((PACK / "actions" / "diagnose.yaml").read_text())
    assert meta["output_schema"] == decision_schema(strict=False), (
        "actions/diagnose.yaml output_schema must be catalogue.decision_schema(strict=False):\n"
        + yaml.safe_dump(decision_schema(strict=False)))
    assert meta["output_schema"]["properties"]["action"]["enum"] == list(ACTIONS)


def test_the_diagnosis_modules_import_no_cycle():
    """Each module imports only modules below it (catalogue < alert_context < matchers < rules
    < facts < scoring < guardrails < llm < decision < diagnosis)."""
    order = ["catalogue", "alert_context", "matchers", "rules", "facts", "scoring", "guardrails", "llm", "decision",
             "diagnosis"]
    lib = PACK / "actions" / "lib"
    for i, name in enumerate(order):
        text = (lib / f"{name}.py").read_text()
        for later in order[i + 1:]:
            assert f"from {later} import" not in text and f"import {later}\n" not in text, f"{name} imports {later}"
    assert json.dumps(decision_schema())  # serialisable for the tool definition
