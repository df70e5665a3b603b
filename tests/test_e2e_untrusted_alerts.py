"""Alert text is data, end to end: what an attacker can put in a webhook never runs.

Orquesta evaluates every workflow input value as a Jinja or YAQL expression, so labels
and annotations must never become one. These tests post hostile alerts to the real
runtime (sensor process, rules engine, orquesta conductor, python actions) and check that
nothing ran, the incident holds the literal text, and the alert is still handled.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import requests
import yaml
from conftest import REPO, run_cli, wait_for

PREFIX = {"alertname": "KubePodCrashLooping", "namespace": "shop", "severity": "warning"}


def alert(fingerprint: str, labels: dict, annotations: dict, starts_at: str = "2026-11-23T03:12:30.123Z") -> dict:
    return {
        "status": "firing", "labels": {**PREFIX, **labels}, "annotations": annotations,
        "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com:9090/graph", "fingerprint": fingerprint,
    }  # fmt: skip


def notification(*alerts: dict) -> dict:
    return {
        "version": "4", "groupKey": '{}:{alertname="KubePodCrashLooping"}', "truncatedAlerts": 0,
        "status": "firing", "receiver": "aegis", "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://alertmanager.example.com:9093", "alerts": list(alerts),
    }  # fmt: skip


def hostile_alerts(marker_dir: Path) -> dict[str, dict]:
    """Three attacks, by fingerprint: Jinja in a label, Jinja in an annotation, YAQL in a label;
    and an honest mistake: an annotation with an unexpanded Prometheus template."""
    by_label = marker_dir / "rce-label"
    by_annotation = marker_dir / "rce-annotation"
    return {
        "a0a0a0a0a0a0a0a1": alert("a0a0a0a0a0a0a0a1", {
            "pod": "checkout-1", "deployment": f"{{{{ lipsum.__globals__.os.popen('touch {by_label}').read() }}}}",
        }, {"summary": "checkout crash looping"}),
        "a0a0a0a0a0a0a0a2": alert("a0a0a0a0a0a0a0a2", {"pod": "cart-1", "deployment": "cart"}, {
            "summary": (f"{{{{ lipsum.__globals__['__builtins__']['open']('{by_annotation}', 'w').write('x') }}}}"),
        }),
        "a0a0a0a0a0a0a0a3": alert("a0a0a0a0a0a0a0a3", {"pod": "search-1", "deployment": "<% 'payments-api' %>"},
                                  {"summary": "search crash looping"}),
        "a0a0a0a0a0a0a0a4": alert("a0a0a0a0a0a0a0a4", {"pod": "web-1", "deployment": "web", "instance": "web-1:8080"},
                                  {"summary": "value {{ $value }} on {{ $labels.instance }}",
                                   "description": "{{ printf \"%.2f\" $value }}% errors"}),
    }  # fmt: skip


def _json(env, *args):
    result = run_cli(list(args), env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_hostile_labels_and_annotations_are_stored_literally_and_never_run(aegis_service, tmp_path):
    url, env = aegis_service
    alerts = hostile_alerts(tmp_path)
    response = requests.post(url, json=notification(*alerts.values()), timeout=10)
    assert response.status_code == 200, response.text

    def all_done():
        done = [w for w in _json(env, "execution", "list", "--json", "--action", "aegis.remediate")
                if w["status"] not in ("requested", "scheduled", "running", "delayed")]
        return done if len(done) == len(alerts) else None

    done = wait_for(all_done, timeout=180, what="every aegis.remediate workflow to finish")
    # Every one finished: each workflow's inputs were rendered at its start, so a template
    # that ran would have run by now.
    assert not (tmp_path / "rce-label").exists(), "a label's Jinja ran as code"
    assert not (tmp_path / "rce-annotation").exists(), "an annotation's Jinja ran as code"
    assert all(w["status"] == "succeeded" for w in done), [(w["parameters"], w["result"]) for w in done]
    by_fingerprint = {}
    for workflow in done:
        assert set(workflow["parameters"]) == {"incident_id"}, workflow["parameters"]
        incident = workflow["result"]["output"]["incident"]
        by_fingerprint[incident["fingerprint"]] = workflow["result"]["output"]
    assert set(by_fingerprint) == set(alerts)
    for fingerprint, sent in alerts.items():
        output = by_fingerprint[fingerprint]
        assert output["incident"]["labels"] == sent["labels"], "the incident holds the alert's literal labels"
        assert output["incident"]["annotations"] == sent["annotations"]
        assert output["diagnosis"]["action"] in {"restart", "scale_up", "rollback", "cleanup_disk", "cancel_query",
                                                 "clear_cache", "noop", "escalate"}

    # YAQL in a label does not pick the target.
    assert by_fingerprint["a0a0a0a0a0a0a0a3"]["diagnosis"]["target"] != "payments-api"
    # The unexpanded Prometheus template became an incident and was diagnosed.
    stored = _json(env, "key", "get", "aegis.incident." + by_fingerprint["a0a0a0a0a0a0a0a4"]["incident"]["id"])
    assert json.loads(stored["value"])["annotations"]["summary"] == "value {{ $value }} on {{ $labels.instance }}"
    assert by_fingerprint["a0a0a0a0a0a0a0a4"]["diagnosis"]["confidence"] >= 0


def _pack_with_st2_webhook_rule(tmp_path: Path) -> Path:
    """A copy of the aegis pack with the core.st2.webhook rule enabled."""
    packs = tmp_path / "packs"
    shutil.copytree(REPO / "packs" / "aegis", packs / "aegis", ignore=shutil.ignore_patterns("__pycache__", "tests"))
    rule_file = packs / "aegis" / "rules" / "st2_webhook_alertmanager.yaml"
    rule = yaml.safe_load(rule_file.read_text())
    rule_file.write_text(yaml.safe_dump({**rule, "enabled": True}))
    return packs


def test_st2_webhook_path_renders_the_body_inert_and_fans_out_incident_ids(make_runtime, tmp_path):
    home = tmp_path / "home"
    (home / "configs").mkdir(parents=True)
    (home / "configs" / "aegis.yaml").write_text(
        yaml.safe_dump({"knowledge": {"use_service": False, "index_dir": str(tmp_path / "ix")}})
    )
    runtime = make_runtime(_pack_with_st2_webhook_rule(tmp_path), home=home)
    alerts = hostile_alerts(tmp_path)
    body = notification(*alerts.values())
    ti_id = runtime.records.record_trigger_instance("core.st2.webhook", {"headers": {}, "body": body})
    [group_id] = runtime.process_trigger_instance(runtime.records.get_trigger_instance(ti_id))
    group = runtime.wait(group_id, timeout=300)
    assert group["status"] == "succeeded", group["result"]
    # The rule rendered the body percent-encoded: nothing in it can open an expression.
    encoded = group["parameters"]["body"]
    assert re.fullmatch(r"[A-Za-z0-9_.~/%-]*", encoded) and json.loads(unquote(encoded)) == body
    assert group["result"]["output"]["remediated"] == len(alerts)
    workflows = [runtime.wait(w["id"], timeout=300) for w in runtime.records.list_executions(action="aegis.remediate", limit=10)]
    assert not (tmp_path / "rce-label").exists() and not (tmp_path / "rce-annotation").exists()
    assert all(w["status"] == "succeeded" for w in workflows), [w["result"] for w in workflows]
    for workflow in workflows:
        assert set(workflow["parameters"]) == {"incident_id"}
        incident = workflow["result"]["output"]["incident"]
        assert incident["labels"] == alerts[incident["fingerprint"]]["labels"]
        assert incident["annotations"] == alerts[incident["fingerprint"]]["annotations"]
