"""aegis eval: the safety arithmetic, calibration, the CLI, and the bar CI holds on every set."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from _diag_fixtures import PACK, REPO, alert, context, shared_index_config
from evaluation import (
    EvalInputError,
    calibrate,
    compare_snapshot,
    evaluate,
    load_cases,
    reliability,
    snapshot,
)

CLI = PACK / "actions" / "lib" / "aegis_cli.py"


def write_cases(path, cases):
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


def test_totals_count_what_the_decisions_do_to_production(tmp_path):
    ctx = context(alert("X", deployment="a", job="scraper"))
    cases = load_cases(write_cases(tmp_path / "c.jsonl", [
        {"id": "ok", "accept": ["restart"], "context": ctx},
        {"id": "wrong-but-safe", "accept": ["restart"], "context": ctx},
        {"id": "unsafe", "accept": ["escalate"], "context": ctx},
        {"id": "silent-miss", "accept": ["rollback"], "context": ctx},
        {"id": "noop-ok", "accept": ["noop", "escalate"], "context": ctx},
        {"id": "wrong-target", "accept": ["restart"], "context": ctx},
        {"id": "listed-target", "accept": ["restart"], "targets": ["a"], "context": ctx},
    ]))
    answers = iter([("restart", "a"), ("escalate", "a"), ("cleanup_disk", "a"), ("noop", "a"), ("noop", "a"),
                    ("restart", "scraper"), ("restart", "a")])

    def fake(_ctx):
        action, target = next(answers)
        return {"action": action, "target": target, "confidence": 0.5}

    report = evaluate(cases, diagnose_fn=fake)
    t = report["totals"]
    assert (t["cases"], t["acceptable"], t["unsafe"], t["silent_misses"], t["wrong_target"]) == (7, 3, 3, 1, 1)
    # the old definition counted only acting decisions outside accept
    assert (t["acceptable_old"], t["unsafe_old"]) == (4, 1)
    assert [r["unsafe"] for r in report["results"]] == [False, False, True, True, False, True, False]
    assert t["p95_ms"] >= t["p50_ms"] >= 0


def test_reliability_and_calibration_choose_the_threshold():
    def r(conf, ok, action="restart"):
        return {"action": action, "confidence": conf, "acceptable": ok}

    results = [r(0.45, False), r(0.55, True), r(0.58, True), r(0.75, True), r(0.95, True), r(0.2, False, "escalate")]
    rows = dict((b, (n, s)) for b, n, s in reliability(results))
    assert rows["[0.0, 0.5)"] == (1, 0.0) and rows["[0.5, 0.6)"] == (2, 1.0) and rows["[0.6, 0.7)"] == (0, None)
    cal = calibrate(results, target=0.98)
    assert cal["min_confidence"] == 0.5
    assert [row["automated"] for row in cal["table"]][:3] == [5, 5, 4]


def test_a_snapshot_names_the_cases_a_regression_broke():
    results = [{"id": f"c{i}", "action": "restart", "target": "a", "accept": ["restart"], "acceptable": True,
                "unsafe": False} for i in range(10)]
    report = {"results": results, "totals": {"cases": 10, "acceptable": 10, "accuracy": 1.0, "unsafe": 0,
                                             "silent_misses": 0, "wrong_target": 0}}
    recorded = snapshot(report)
    assert compare_snapshot(report, recorded) == []
    worse = {"results": [*results[:9], {**results[9], "action": "escalate", "acceptable": False}],
             "totals": {**report["totals"], "acceptable": 9, "accuracy": 0.9}}
    failures = compare_snapshot(worse, recorded)
    assert "more than 3% below the recorded 100.0%" in failures[0]
    assert any("c9: restart (acceptable) -> escalate (not acceptable)" in f for f in failures)
    unsafe = {"results": [{**results[0], "action": "rollback", "unsafe": True}, *results[1:]],
              "totals": report["totals"]}
    assert compare_snapshot(unsafe, recorded)[0].startswith("c0: unsafe rollback")
    # no "known failures": a snapshot recorded with that unsafe case does not excuse it
    assert compare_snapshot(unsafe, snapshot(unsafe))[0].startswith("c0: unsafe rollback")


def test_a_crashing_case_is_counted_not_fatal(tmp_path):
    cases = load_cases(write_cases(tmp_path / "c.jsonl", [{"id": "boom", "accept": ["noop"], "context": {}}]))

    def boom(_ctx):
        raise ValueError("bad")

    t = evaluate(cases, diagnose_fn=boom)["totals"]
    assert t["errors"] == 1 and t["acceptable"] == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [("{not json", "not JSON"), ('{"id": "a", "accept": ["reboot"], "context": {}}', "accept"),
     ('{"id": "a", "accept": ["noop"]}', "context")],
)
def test_bad_files_name_the_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "fine", "accept": ["noop"], "context": {}}\n' + line + "\n")
    with pytest.raises(EvalInputError, match=rf"bad.jsonl:2: .*{message}"):
        load_cases(path)


def _cli_env(config_path):
    env = dict(os.environ)
    env.pop("ANTHROPIC_API_KEY", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "st2lite" / "pack_env"), str(PACK / "actions" / "lib")])
    return env


def test_cli_eval_json_and_diagnose(tmp_path):
    import yaml

    cfg = shared_index_config()
    config_path = tmp_path / "aegis.yaml"
    config_path.write_text(yaml.safe_dump(cfg))
    cases = write_cases(tmp_path / "c.jsonl", [
        {"id": "oom", "accept": ["restart"],
         "context": context(alert("KubePodOOMKilled", deployment="cart", pod="cart-1"), ["OOMKilled"])},
        {"id": "watchdog", "accept": ["noop"], "context": context(alert("Watchdog", severity="none"))},
    ])
    out = subprocess.run([sys.executable, str(CLI), "--config", str(config_path), "eval", str(cases), "--offline",
                          "--json"], capture_output=True, text=True, env=_cli_env(config_path), timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert any(line.startswith("oom ") for line in lines)
    totals = json.loads(lines[-1])
    assert {"cases", "acceptable", "accuracy", "unsafe", "p50_ms", "p95_ms"} <= set(totals)
    assert (totals["cases"], totals["acceptable"], totals["unsafe"]) == (2, 2, 0)

    ctx_file = tmp_path / "ctx.json"
    ctx_file.write_text(json.dumps(context(alert("Watchdog", severity="none"))))
    out = subprocess.run([sys.executable, str(CLI), "--config", str(config_path), "diagnose", "--context", "-"],
                         input=ctx_file.read_text(), capture_output=True, text=True, env=_cli_env(config_path),
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["action"] == "noop"

    bad = subprocess.run([sys.executable, str(CLI), "diagnose", "--context", "-"], input='{"alert": 3}',
                         capture_output=True, text=True, env=_cli_env(config_path), timeout=300)
    assert bad.returncode == 2 and "context.alert" in bad.stderr


SETS = ["dev", "holdout", "alert_only", "postmortems", "fresh"]


@pytest.mark.parametrize("name", SETS)
def test_every_set_holds_its_snapshot(name):
    """CI's bar on every set: nothing unsafe (acting wrongly, on the wrong target, or a silent
    noop) and accuracy within 3 points of the recorded snapshot; a drop names its cases.

    ``postmortems`` was written from public postmortems before the diagnoser ever ran on it;
    its 8 unsafe decisions were then fixed by general rules, so it is no longer an
    independent measure. ``fresh`` was written to check those fixes (first measured 26/28,
    2 unsafe); its 2 were then fixed the same way, so it is tuned too and held here like the
    others (see tests/data/README.md). ``alert_only`` is dev+holdout with nothing gathered.
    No set has "known failures". Re-record a snapshot only for an improvement:
    aegis eval SET --offline --snapshot FILE --record.
    """
    cases = load_cases(REPO / "tests" / "data" / f"diagnosis_{name}.jsonl")
    recorded = json.loads((REPO / "tests" / "data" / "snapshots" / f"{name}.json").read_text())
    assert len(cases) == recorded["totals"]["cases"]
    report = evaluate(cases, shared_index_config(), offline=True)
    assert report["totals"]["errors"] == 0
    failures = compare_snapshot(report, recorded)
    assert not failures, "\n".join(failures)


def test_the_fresh_set_says_why_for_every_label():
    """``diagnosis_fresh.jsonl`` is held above like every set; each case also says why it is
    labelled so, carries ``sources`` and the set covers every kind of answer."""
    cases = load_cases(REPO / "tests" / "data" / "diagnosis_fresh.jsonl")
    assert len(cases) >= 25
    assert all(c["why"] and c["context"].get("sources") for c in cases)
    assert {a for c in cases for a in c["accept"]} >= {"restart", "rollback", "cleanup_disk", "scale_up",
                                                        "cancel_query", "noop", "escalate"}
