"""The real ``st2`` CLI (st2client 3.9.0, in its own virtualenv) against st2lite's st2 API.

The runtime runs in the test's process over the ``apitest`` fixture pack (so that the
inquiry garbage collector can be driven with a clock, and a restart is a new Runtime on
the same home); the CLI runs as a subprocess, configured as a user would (~/.st2/config).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from conftest import FIXTURE_PACKS, VIRTUALENVS, run_st2, wait_for, write_st2_config


class Env:
    def __init__(self, tmp_path: Path, make_runtime) -> None:
        from st2lite.api import AuthStore

        self.tmp_path = tmp_path
        self.make_runtime = make_runtime
        self.home = tmp_path / "home"
        self.user_home = tmp_path / "user"
        self.servers = None
        self.start()
        self.auth = AuthStore(self.home)
        self.auth.add_user("alice", "wonderland")
        self.api_key = self.auth.create_api_key("bob")["key"]
        self.write_config("alice", "wonderland")

    def start(self) -> None:
        from st2lite.api import start_api

        self.runtime = self.make_runtime(FIXTURE_PACKS / "apitest", home=self.home)
        self.runtime.inquiries.interval = 0  # swept by the test, with its own clock
        self.runtime.start(sensors=False)
        self.servers = start_api(self.runtime, self.home, api_listen=("127.0.0.1", 0), auth_listen=("127.0.0.1", 0),
                                stream_listen=("127.0.0.1", 0))

    def restart(self) -> None:
        self.servers.stop()
        self.runtime.stop()
        self.start()

    def write_config(self, username: str, password: str) -> None:
        write_st2_config(self.user_home, username, password)

    def st2(self, *args: str, creds: bool = True, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = dict(extra_env or {})
        if not creds:
            empty = self.tmp_path / "empty-config"
            empty.write_text("")
            env["ST2_CONFIG_FILE"] = str(empty)
        return run_st2(list(args), self.servers.api.url, self.servers.auth.url, self.user_home, env)

    def ok(self, *args: str, **kwargs) -> str:
        result = self.st2(*args, **kwargs)
        assert result.returncode == 0, f"st2 {' '.join(args)}: {result.stdout}\n{result.stderr}"
        return result.stdout

    def json(self, *args: str) -> object:
        return json.loads(self.ok(*args, "-j"))

    def status(self, ex_id: str) -> str:
        return self.runtime.records.get_execution(ex_id)["status"]

    def wait_status(self, ex_id: str, *wanted: str) -> dict:
        return wait_for(lambda: self.runtime.records.get_execution(ex_id)["status"] in wanted
                        and self.runtime.records.get_execution(ex_id), timeout=60, what=f"{ex_id} to be {wanted}")  # fmt: skip


@pytest.fixture
def st2env(tmp_path: Path, make_runtime, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AEGIS_VIRTUALENVS", str(VIRTUALENVS))
    env = Env(tmp_path, make_runtime)
    yield env
    env.servers.stop()


def test_run_and_the_execution_history(st2env: Env) -> None:
    out = st2env.ok("run", "apitest.add", "a=2", "b=40")
    assert "succeeded" in out and "42" in out, out
    executions = st2env.json("execution", "list", "-n", "5")
    assert [e["action"]["ref"] for e in executions] == ["apitest.add"]
    ex_id = executions[0]["id"]
    assert executions[0]["status"] == "succeeded" and executions[0]["context"]["user"] == "alice"
    table = st2env.ok("execution", "list", "--status", "succeeded", "-a", "id", "status", "action.ref")
    assert ex_id in table and "apitest.add" in table and "succeeded" in table
    assert st2env.json("execution", "list", "--status", "failed") == []
    detail = st2env.json("execution", "get", ex_id)
    assert detail["result"]["result"] == 42 and detail["parameters"] == {"a": 2, "b": 40}
    rerun = st2env.ok("execution", "re-run", ex_id, "b=1")
    assert "succeeded" in rerun and "\n  result: 3\n" in rerun, rerun
    # A workflow and its children (tasks), with their statuses.
    st2env.runtime.store.set("gate.one", "open")
    out = st2env.ok("run", "apitest.gated", "key=gate.one")
    assert "succeeded" in out and "first" in out and "second" in out, out
    workflow = st2env.json("execution", "list", "--action", "apitest.gated", "--attr", "id", "status", "children")[0]
    assert workflow["status"] == "succeeded" and len(workflow["children"]) == 2
    workflow["id"] = workflow["id"].removeprefix("+ ")  # the CLI marks workflows in lists, as with st2
    children = st2env.ok("execution", "get", workflow["id"])
    assert children.count("succeeded") >= 2 and "apitest.wait_for_key" in children and "apitest.add" in children
    yaml_out = st2env.ok("execution", "get", workflow["id"], "-y")
    assert "status: succeeded" in yaml_out
    everything = st2env.json("execution", "list", "--showall", "-n", "-1")
    assert {e["action"]["ref"] for e in everything} >= {"apitest.wait_for_key", "apitest.add", "apitest.gated"}
    # A parameter the action does not take is refused as st2 refuses it.
    bad = st2env.st2("run", "apitest.add", "a=1")
    assert bad.returncode != 0 and "b" in (bad.stdout + bad.stderr)


def test_actions_rules_packs_trigger_instances(st2env: Env) -> None:
    actions = st2env.json("action", "list", "--pack", "apitest")
    assert {a["ref"] for a in actions} == {"apitest.add", "apitest.wait_for_key", "apitest.approval", "apitest.gated",
                                           "apitest.nested_approval"}
    assert "First addend." in st2env.ok("action", "get", "apitest.add")
    assert st2env.json("action", "get", "core.ask")["runner_type"] == "inquirer"
    rules = st2env.json("rule", "list")
    assert [r["ref"] for r in rules] == ["apitest.notify_inquiry", "apitest.on_webhook"]
    assert all(r["enabled"] for r in rules)
    st2env.ok("rule", "disable", "apitest.on_webhook")
    assert st2env.json("rule", "get", "apitest.on_webhook")["enabled"] is False
    assert next(r for r in st2env.runtime.rules if r.ref == "apitest.on_webhook").enabled is False
    st2env.ok("rule", "enable", "apitest.on_webhook")
    assert st2env.json("rule", "get", "apitest.on_webhook")["enabled"] is True
    assert "apitest" in st2env.ok("pack", "list")
    assert st2env.json("pack", "get", "apitest")["version"] == "0.1.0"
    ti = st2env.runtime.records.record_trigger_instance("core.st2.webhook", {"url": "apitest", "body": {}})
    listed = st2env.ok("trigger-instance", "list")
    assert ti in listed and "core.st2.webhook" in listed
    assert st2env.json("trigger-instance", "get", ti)["payload"]["url"] == "apitest"
    missing = st2env.st2("execution", "get", "000000000000000000000000")
    assert "not found" in (missing.stdout + missing.stderr).lower()


def test_keys_round_trip_and_secrets_stay_masked(st2env: Env) -> None:
    st2env.ok("key", "set", "aegis.mode", "monitor")
    assert st2env.json("key", "get", "aegis.mode")["value"] == "monitor"
    st2env.ok("key", "set", "api.token", "s3cr3t-value", "--encrypt")
    shown = st2env.ok("key", "get", "api.token")
    assert "s3cr3t-value" not in shown and "True" in shown
    assert "s3cr3t-value" not in st2env.ok("key", "list")
    assert st2env.json("key", "get", "api.token", "--decrypt")["value"] == "s3cr3t-value"
    stored = st2env.runtime.store.get("api.token")
    assert stored != "s3cr3t-value" and st2env.json("key", "get", "api.token")["value"] == stored  # the ciphertext, as st2
    assert st2env.runtime.store.get("api.token", decrypt=True) == "s3cr3t-value"  # what decrypt_kv reads
    st2env.ok("key", "set", "short.lived", "x", "--ttl", "3600")
    assert "expire_timestamp" in st2env.json("key", "get", "short.lived")
    st2env.ok("key", "delete", "aegis.mode")
    gone = st2env.st2("key", "get", "aegis.mode")
    assert gone.returncode != 0 and "not found" in (gone.stdout + gone.stderr)


def test_authentication_is_required_and_checked(st2env: Env) -> None:
    for args in (["execution", "list"], ["key", "list"], ["action", "list"]):
        result = st2env.st2(*args, creds=False)
        assert result.returncode != 0 and "401" in (result.stdout + result.stderr), result
    key_ok = st2env.st2("key", "list", creds=False, extra_env={"ST2_API_KEY": st2env.api_key})
    assert key_ok.returncode == 0, key_ok.stderr
    wrong = st2env.st2("key", "list", creds=False, extra_env={"ST2_API_KEY": "not-a-key"})
    assert wrong.returncode != 0 and "401" in (wrong.stdout + wrong.stderr)
    expired = st2env.auth.issue_token("alice", ttl=60, issued_at=time.time() - 120)["token"]
    refused = st2env.st2("key", "list", creds=False, extra_env={"ST2_AUTH_TOKEN": expired})
    assert refused.returncode != 0 and "401" in (refused.stdout + refused.stderr)
    live = st2env.auth.issue_token("alice", ttl=60)["token"]
    assert st2env.st2("key", "list", creds=False, extra_env={"ST2_AUTH_TOKEN": live}).returncode == 0
    st2env.write_config("alice", "wrong password")
    bad_login = st2env.st2("key", "list")
    assert bad_login.returncode != 0 and "401" in (bad_login.stdout + bad_login.stderr)
    st2env.write_config("alice", "wonderland")
    created = st2env.json("apikey", "create")
    assert created["user"] == "alice" and created["key"]
    assert st2env.st2("key", "list", creds=False, extra_env={"ST2_API_KEY": created["key"]}).returncode == 0
    assert created["id"] in st2env.ok("apikey", "list")


def _start_approval(st2env: Env, ttl: int = 60) -> tuple[str, str]:
    out = st2env.ok("run", "apitest.approval", f"ttl={ttl}", "-a")
    wf_id = next(line.split()[-1] for line in out.splitlines() if "execution get" in line)
    st2env.wait_status(wf_id, "paused")
    inquiry = next(c for c in st2env.runtime.records.get_execution(wf_id)["children"]
                   if st2env.runtime.records.get_execution(c)["action"] == "core.ask")  # fmt: skip
    assert st2env.status(inquiry) == "pending"
    return wf_id, inquiry


def test_an_inquiry_is_answered_and_another_expires(st2env: Env) -> None:
    wf_id, inquiry = _start_approval(st2env)
    listed = st2env.ok("inquiry", "list")
    assert inquiry in listed and "approvals" in listed
    got = st2env.json("inquiry", "get", inquiry)
    assert got["ttl"] == 60 and got["schema"]["properties"]["approved"]["type"] == "boolean"
    tasks = st2env.ok("execution", "get", wf_id)
    assert "paused" in tasks and "pending" in tasks and "core.ask" in tasks
    bad = st2env.st2("inquiry", "respond", inquiry, "-r", '{"approved": "yes"}')
    assert bad.returncode != 0 and "did not pass schema validation" in (bad.stdout + bad.stderr)
    assert st2env.status(wf_id) == "paused"
    out = st2env.ok("inquiry", "respond", inquiry, "-r", '{"approved": true, "reason": "looks safe"}')
    assert inquiry in out
    done = st2env.wait_status(wf_id, "succeeded", "failed")
    assert done["status"] == "succeeded" and done["result"]["output"] == {"outcome": "approved", "reason": "looks safe"}
    answered = st2env.runtime.records.get_execution(inquiry)
    assert answered["status"] == "succeeded" and answered["result"]["response"]["approved"] is True
    # Answered: no longer an inquiry to the API (st2 answers 400; its CLI says it does not exist).
    again = st2env.st2("inquiry", "respond", inquiry, "-r", '{"approved": false}')
    assert again.returncode != 0 and "exist" in (again.stdout + again.stderr)
    assert st2env.runtime.records.get_execution(inquiry)["result"]["response"]["approved"] is True

    # The second is left to expire: the garbage collector's sweep, an hour and more later.
    wf2, inquiry2 = _start_approval(st2env)
    assert st2env.runtime.inquiries.expire(now=time.time() + 30 * 60) == []
    assert st2env.runtime.inquiries.expire(now=time.time() + 62 * 60) == [inquiry2]
    done = st2env.wait_status(wf2, "succeeded", "failed")
    assert done["result"]["output"]["outcome"] == "expired"
    assert st2env.status(inquiry2) == "timeout"
    tasks = {st2env.runtime.records.get_execution(c)["task_name"]: st2env.runtime.records.get_execution(c)["status"]
             for c in done["children"]}  # fmt: skip
    assert tasks == {"prepare": "succeeded", "ask": "timeout", "escalate": "succeeded"}
    late = st2env.st2("inquiry", "respond", inquiry2, "-r", '{"approved": true}')
    assert late.returncode != 0 and st2env.status(inquiry2) == "timeout"


def test_pause_resume_and_cancel(st2env: Env) -> None:
    out = st2env.ok("run", "apitest.gated", "key=gate.pause", "-a")
    wf_id = next(line.split()[-1] for line in out.splitlines() if "execution get" in line)
    first = wait_for(lambda: st2env.runtime.records.get_execution(wf_id)["children"], what="the first task")[0]
    st2env.wait_status(first, "running")
    assert "pausing" in st2env.ok("execution", "pause", wf_id)
    st2env.runtime.store.set("gate.pause", "open")  # the running task finishes; nothing new starts
    st2env.wait_status(wf_id, "paused")
    assert len(st2env.runtime.records.get_execution(wf_id)["children"]) == 1
    refused = st2env.st2("execution", "pause", wf_id)
    assert refused.returncode != 0 and "not in a running state" in (refused.stdout + refused.stderr)
    assert "resuming" in st2env.ok("execution", "resume", wf_id) or True
    done = st2env.wait_status(wf_id, "succeeded", "failed")
    assert done["status"] == "succeeded" and done["result"]["output"] == {"got": "open", "sum": 3}

    out = st2env.ok("run", "apitest.gated", "key=gate.cancel", "-a")
    wf2 = next(line.split()[-1] for line in out.splitlines() if "execution get" in line)
    task = wait_for(lambda: st2env.runtime.records.get_execution(wf2)["children"], what="the first task")[0]
    st2env.wait_status(task, "running")
    assert "cancel" in st2env.ok("execution", "cancel", wf2)
    st2env.runtime.store.set("gate.cancel", "open")
    assert st2env.wait_status(wf2, "canceled")["status"] == "canceled"
    # A paused workflow waiting on an inquiry is canceled with it.
    wf3, inquiry = _start_approval(st2env)
    st2env.ok("execution", "cancel", wf3)
    assert st2env.wait_status(wf3, "canceled")["status"] == "canceled"
    assert st2env.status(inquiry) == "canceled"


def test_a_paused_workflow_survives_a_restart_and_is_answered_after_it(st2env: Env) -> None:
    wf_id, inquiry = _start_approval(st2env)
    st2env.restart()
    assert st2env.status(wf_id) == "paused" and st2env.status(inquiry) == "pending"
    assert inquiry in st2env.ok("inquiry", "list")
    st2env.ok("inquiry", "respond", inquiry, "-r", '{"approved": false}')
    done = st2env.wait_status(wf_id, "succeeded", "failed")
    assert done["status"] == "succeeded" and done["result"]["output"]["outcome"] == "rejected"


def test_aegis_inquiry_commands_for_people_without_the_st2_cli(st2env: Env) -> None:
    from conftest import run_cli

    wf_id, inquiry = _start_approval(st2env)
    env = dict(os.environ, AEGIS_HOME=str(st2env.home), AEGIS_ST2_API_LISTEN=st2env.servers.api.url.removeprefix("http://"))
    listed = run_cli(["inquiry", "list"], env)
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["id"] == inquiry
    bad = run_cli(["inquiry", "respond", inquiry, "-r", '{"approved": 1}'], env)
    assert bad.returncode == 1 and "schema validation" in bad.stderr
    good = run_cli(["inquiry", "respond", inquiry, "-r", '{"approved": true}', "--user", "carol"], env)
    assert good.returncode == 0, good.stderr
    assert st2env.wait_status(wf_id, "succeeded", "failed")["result"]["output"]["outcome"] == "approved"
