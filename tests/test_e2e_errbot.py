"""End to end: StackStorm's own ChatOps bridge (err-stackstorm 2.3.2 on Errbot 6.2.1) against the runtime.

Errbot and err-stackstorm run unchanged in their own virtualenv (``scripts/setup.sh``
builds ``.venvs/errbot``), with Errbot's Test backend standing in for Slack. err-stackstorm
authenticates with st2's auth service (a user of the runtime's htpasswd), matches and
executes commands through ``/v1/actionalias/match`` and
``/v1/aliasexecution/match_and_execute``, and receives the results as
``st2.announcement__errbot`` events on st2stream's ``/v1/stream``, exactly as against st2.

The approval path is the real one (see chatops_env.py): alerts on Redis caches hold
``aegis.remediate`` on its ``core.ask`` in mode ``auto``; the workflow clears the cache on the
real Redis once approved from the chat, and hands the incident to the humans once denied.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from chatops_env import ChatOpsEnv
from conftest import REPO, wait_for
from remediation_world import World, missing

if missing():
    pytest.skip(missing(), allow_module_level=True)

ERRBOT_VENV = Path(os.environ.get("ERRBOT_VENV", REPO / ".venvs" / "errbot"))
DRIVER = REPO / "tests" / "errbot_driver.py"


class Chat:
    """The Errbot driver process: say something as a user, read what the bot sends."""

    def __init__(self, env: ChatOpsEnv, log: Path) -> None:
        python = ERRBOT_VENV / "bin" / "python"
        if not python.exists():
            pytest.fail(f"errbot is not installed at {ERRBOT_VENV}: run scripts/setup.sh (it builds .venvs/errbot)")
        stackstorm = {
            "auth_url": env.servers.auth.url, "api_url": f"{env.servers.api.url}/v1",
            "stream_url": f"{env.servers.stream.url}/v1", "route_key": "errbot", "plugin_prefix": "st2",
            "verify_cert": False, "secrets_store": "cleartext", "timer_update": 900,
            "api_auth": {"user": {"name": "errbot", "password": "errbot-password"}}, "rbac_auth": {"standalone": {}},
        }  # fmt: skip
        self.log = log.open("w")
        self.proc = subprocess.Popen([str(python), str(DRIVER), json.dumps(stackstorm)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=REPO)  # fmt: skip
        first = self.proc.stdout.readline()
        assert first and json.loads(first) == {"ready": True}, f"errbot did not start: {log.read_text()[-3000:]}"

    def _ask(self, command: dict) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the errbot driver exited"
        return json.loads(line)

    def say(self, user: str, text: str) -> None:
        assert self._ask({"op": "say", "user": user, "text": text}) == {"ok": True}

    def pop(self, timeout: float = 60) -> str:
        answer = self._ask({"op": "pop", "timeout": timeout})
        assert "message" in answer, f"no message from the bot within {timeout}s"
        return answer["message"]

    def exchange(self, user: str, text: str, ack: str | None) -> str:
        """Say ``text`` as ``user``; return the result after checking the acknowledgement.

        err-stackstorm sends the ack when the API answers and the result when it arrives on
        the stream: for a quick action the result can come first, so neither order is assumed."""
        self.say(user, text)
        messages = [self.pop(), self.pop()] if ack is not None else [self.pop()]
        if ack is not None:
            assert ack in messages, f"no ack {ack!r} in {messages}"
            messages.remove(ack)
        return messages[0]

    def close(self) -> None:
        self.proc.kill()  # Errbot's stop waits for its stream listener's next event
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with World(tmp_path_factory.mktemp("world")) as w:
        yield w


@pytest.fixture
def chat_env(tmp_path, make_runtime, world):
    env = ChatOpsEnv(tmp_path, make_runtime, world)
    chat = Chat(env, tmp_path / "errbot.log")
    # err-stackstorm re-authenticates its bot user when its stream listener starts (and
    # holds no token meanwhile): commands are for after it is listening.
    wait_for(lambda: env.servers.bus.subscribers >= 1, timeout=60, what="err-stackstorm to listen on /v1/stream")
    yield env, chat
    chat.close()
    env.close()


def test_errbot_talks_to_aegis_through_err_stackstorm(chat_env) -> None:
    env, chat = chat_env

    # The status, acknowledged at once, the result from the stream.
    status = chat.exchange("alice", "!st2 aegis status", "Checking Aegis…")
    assert "Aegis is in auto mode" in status and "Open incidents: 0" in status, status
    execution = env.runtime.records.list_executions(action="aegis.chat_status")[0]
    # As st2's aliasexecution controller sets it: the bridge's st2 user, the chat user, the channel.
    assert execution["context"] == {"action_alias_ref": "aegis.status", "api_user": "alice", "user": "errbot",
                                    "source_channel": "alice"}  # fmt: skip

    # An alert becomes an incident whose remediation waits for approval.
    first = env.post_alert("cache-chat-yes")
    inquiry = env.wait_inquiry(first)
    workflow = env.workflow_of(first)
    assert workflow["status"] in ("paused", "pausing", "running"), workflow

    # Someone not on the approvers list is refused; nothing changes.
    refusal = chat.exchange("mallory", f"!st2 aegis approve {first}", f"Approving {first}…")
    assert "mallory, you may not approve remediations" in refusal, refusal
    assert env.runtime.records.get_execution(inquiry["id"])["status"] == "pending"
    assert any("approve refused: mallory is not an approver" in e["event"] for e in env.timeline(first))

    # An approver approves from the chat: the workflow proceeds and acts.
    approved = chat.exchange("alice", f"!st2 aegis approve {first}", f"Approving {first}…")
    assert f"Approved {first} by alice" in approved, approved
    done = env.wait_workflow(first)
    assert done["status"] == "succeeded"
    tasks = env.tasks(done["id"])
    assert tasks["approve"]["result"]["response"] == {"approved": True}
    assert tasks["act"]["status"] == "succeeded" and done["result"]["output"]["outcome"] == "resolved"
    assert env.cache_keys("cache-chat-yes") == (0, 0, b"keep")
    assert env.approval_request(inquiry["id"])["state"] == "approved"  # and the Slack message says so
    assert len(env.slack_calls("chat.update", first)) == 1

    # A second incident is denied, with a reason: it ends in escalation.
    second = env.post_alert("cache-chat-no")
    env.wait_inquiry(second)
    denied = chat.exchange("alice", f"!st2 aegis deny {second} not during the sale", f"Denying {second}…")
    assert f"Denied {second} by alice" in denied, denied
    done = env.wait_workflow(second)
    tasks = env.tasks(done["id"])
    assert tasks["approve"]["result"]["response"] == {"approved": False, "reason": "not during the sale"}
    assert "act" not in tasks and env.cache_keys("cache-chat-no") == (1, 1, b"keep")
    assert tasks["notify_declined"]["result"]["result"]["state"] == "escalated"  # the Slack stand-in got it
    assert any(e.get("state") == "escalated" for e in env.timeline(second))

    # The incident's timeline, as the channel shows it.
    timeline = chat.exchange("alice", f"!st2 aegis incident {second}", f"Fetching {second}…")
    assert second in timeline and "denied by alice via chat" in timeline and "escalated" in timeline, timeline

    # Mode changes: refused for mallory, done for alice, who and why recorded.
    assert "you may not change Aegis's mode" in chat.exchange("mallory", "!st2 aegis pause", "Pausing Aegis (monitor mode)…")
    assert env.runtime.store.get("aegis.mode") is None  # still the configured auto
    assert "Aegis mode is now monitor" in chat.exchange("alice", "!st2 aegis pause db failover drill", "Pausing Aegis (monitor mode)…")
    assert env.runtime.store.get("aegis.mode") == "monitor"
    change = json.loads(env.runtime.store.get("aegis.mode.last_change"))
    assert (change["by"], change["reason"], change["channel"]) == ("alice", "db failover drill", "alice")

    # An unknown aegis command gets the closest commands; a command for nobody, err-stackstorm's answer.
    suggestion = chat.exchange("alice", "!st2 aegis incidnets", None)  # the catch-all has no ack
    assert "I don't know" in suggestion and "aegis incidents [open|all]" in suggestion, suggestion
    chat.say("alice", "!st2 reboot everything")
    assert "st2 command 'reboot everything' not found" in chat.pop()

    # !st2help lists the pack's commands from /v1/actionalias/help.
    chat.say("alice", "!st2help")
    helptext = chat.pop()
    assert "[aegis]" in helptext and "aegis approve <incident>" in helptext and "aegis silence <incident>" in helptext
