"""aegis eval: the arithmetic of the totals, the CLI's --json line, and the dev-set bar CI holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from _diag_fixtures import DEV_SET, HOLDOUT_SET, PACK, REPO, alert, context, shared_index_config
from evaluation import EvalInputError, evaluate, load_cases

CLI = PACK / "actions" / "lib" / "aegis_cli.py"


def write_cases(path, cases):
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


def test_totals_count_acceptable_unsafe_and_latency(tmp_path):
    ctx = context(alert("X", deployment="a"))
    cases = load_cases(write_cases(tmp_path / "c.jsonl", [
        {"id": "ok", "accept": ["restart"], "context": ctx},
        {"id": "wrong-but-safe", "accept": ["restart"], "context": ctx},
        {"id": "unsafe", "accept": ["escalate"], "context": ctx},
        {"id": "noop-miss", "accept": ["rollback"], "context": ctx},
    ]))
    answers = iter(["restart", "escalate", "cleanup_disk", "noop"])
    report = evaluate(cases, diagnose_fn=lambda _ctx: {"action": next(answers), "confidence": 0.5})
    t = report["totals"]
    assert (t["cases"], t["acceptable"], t["unsafe"], t["escalated"]) == (4, 1, 1, 1)
    assert t["accuracy"] == 0.25 and t["p95_ms"] >= t["p50_ms"] >= 0
    assert [r["unsafe"] for r in report["results"]] == [False, False, True, False]


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


@pytest.mark.parametrize(("path", "minimum_cases"), [(DEV_SET, 80), (HOLDOUT_SET, 20)], ids=["dev", "holdout"])
def test_offline_diagnoser_meets_the_bar(path, minimum_cases):
    """CI's bar: >= 85% acceptable and nothing unsafe, on the dev set and on a held-out set.

    The held-out cases were written apart from the diagnoser and never used to tune it; a
    drop there while the dev set stays green means rules were fitted to the dev set.
    """
    cases = load_cases(path)
    assert len(cases) >= minimum_cases
    report = evaluate(cases, shared_index_config(), offline=True)
    t = report["totals"]
    unsafe = [f"{r['id']}: {r['action']} not in {r['accept']}" for r in report["results"] if r["unsafe"]]
    assert not unsafe, "unsafe decisions:\n" + "\n".join(unsafe)
    assert t["errors"] == 0
    assert t["accuracy"] >= 0.85, f"accuracy {t['accuracy']:.1%}"
