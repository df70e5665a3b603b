"""End to end: `aegis run` serves the aegis pack and st2's API; the real st2 CLI audits an alert's handling."""

from __future__ import annotations

import json
from pathlib import Path

import requests
from conftest import REPO, run_cli, run_st2, wait_for, write_st2_config

NOTIFICATION = json.loads((REPO / "tests" / "fixtures" / "alertmanager" / "two_firing.json").read_text())


def test_st2_cli_sees_the_alerts_workflows_and_their_tasks(aegis_service, tmp_path: Path) -> None:
    url, env = aegis_service
    api, auth = f"http://{env['AEGIS_ST2_API_LISTEN']}", f"http://{env['AEGIS_ST2_AUTH_LISTEN']}"
    added = run_cli(["user", "add", "alice", "--password", "in wonderland"], env)
    assert added.returncode == 0, added.stderr
    key = run_cli(["apikey", "create", "--user", "ops"], env)
    assert key.returncode == 0, key.stderr
    home = tmp_path / "alice"
    write_st2_config(home, "alice", "in wonderland")

    def st2(*args: str, as_home: Path = home, **kwargs) -> str:
        result = run_st2(list(args), api, auth, as_home, **kwargs)
        assert result.returncode == 0, f"st2 {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    assert requests.post(url, json=NOTIFICATION, timeout=10).status_code == 200

    def two_done():
        rows = json.loads(st2("execution", "list", "--action", "aegis.remediate", "-j"))
        done = [r for r in rows if r["status"] in ("succeeded", "failed")]
        return rows if len(done) == 2 else None

    workflows = wait_for(two_done, timeout=180, what="two aegis.remediate workflows to complete")
    assert [w["status"] for w in workflows] == ["succeeded", "succeeded"], workflows
    table = st2("execution", "list", "--action", "aegis.remediate")
    assert table.count("aegis.remediate") == 2 and table.count("succeeded") >= 2 and "stanley" in table
    for workflow in workflows:
        wf_id = workflow["id"].removeprefix("+ ")
        tasks = st2("execution", "get", wf_id)
        assert "aegis.record_incident" in tasks and "aegis.diagnose" in tasks and "succeeded" in tasks, tasks
        children = json.loads(st2("execution", "list", "--showall", "-n", "-1", "--attr", "id", "parent", "status", "-j"))
        mine = [c for c in children if c.get("parent") == wf_id]
        assert mine and all(c["status"] == "succeeded" for c in mine), mine
        result = json.loads(st2("execution", "get", wf_id, "-d", "-j"))
        assert result["result"]["output"]["incident"]["status"] == "open"
    instances = st2("trigger-instance", "list", "--trigger", "aegis.alert")
    assert instances.count("aegis.alert") == 2 and "processed" in instances
    incidents = st2("key", "list", "--prefix", "aegis.incident")
    assert all(a["fingerprint"] in incidents for a in NOTIFICATION["alerts"])
    assert "aegis.remediate_firing_alert" in st2("rule", "list", "--pack", "aegis")
    mode = st2("run", "aegis.get_mode")
    assert "succeeded" in mode, mode
    # The same with the API key; nothing without credentials.
    nobody = tmp_path / "nobody"  # no ~/.st2/config
    assert "aegis.remediate" in st2("execution", "list", as_home=nobody, env={"ST2_API_KEY": key.stdout.strip()})
    refused = run_st2(["execution", "list"], api, auth, nobody)
    assert refused.returncode != 0 and "401" in refused.stdout + refused.stderr
