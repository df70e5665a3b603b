"""A runtime for the ChatOps tests: the aegis pack, a remediation that waits on ``core.ask``,
st2's API and stream on free ports, and a Slack stand-in.

    env = ChatOpsEnv(tmp_path, make_runtime, interactivity=True)
    incident_id = env.post_alert(0)                 # through the Alertmanager webhook sensor
    inquiry = env.wait_inquiry(incident_id)         # the workflow waits; Slack got the request
    ...
    env.close()

The approval path is the ``chatopstest`` fixture pack's workflow (``core.ask`` -> act |
aegis.escalate), because the remediate workflow's own approval step is another branch's
work; ``aegis.remediate``'s rule is disabled here so that only it runs for an alert.
Only the sensors a test needs run (the knowledge service's model would load for nothing).
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import requests
import yaml
from conftest import FIXTURE_PACKS, REPO, free_port, wait_for

sys.path.insert(0, str(REPO / "packs" / "aegis" / "tests"))
from servers.standins import SlackStandIn  # noqa: E402

NOTIFICATION = json.loads((REPO / "tests" / "fixtures" / "alertmanager" / "two_firing.json").read_text())
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APPROVERS = ["alice", "U0ALICE01"]
SLACK_CHANNEL = "C0INCIDENTS"


def incident_id(alert: dict[str, Any]) -> str:
    return "inc-" + hashlib.sha256(f"{alert['fingerprint'].lower()}|{alert['startsAt']}".encode()).hexdigest()[:16]


class ChatOpsEnv:
    def __init__(self, tmp_path: Path, make_runtime: Any, interactivity: bool = False) -> None:
        from st2lite.api import AuthStore, start_api

        packs = tmp_path / "packs"
        packs.mkdir()
        (packs / "aegis").symlink_to(REPO / "packs" / "aegis")
        (packs / "chatopstest").symlink_to(FIXTURE_PACKS / "chatopstest")
        self.home = tmp_path / "home"
        (self.home / "configs").mkdir(parents=True)
        self.auth = AuthStore(self.home)
        self.auth.add_user("errbot", "errbot-password")
        self.api_key = self.auth.create_api_key("aegis")["key"]
        self.slack = SlackStandIn().__enter__()
        ports = {name: free_port() for name in ("webhook", "api", "auth", "stream", "slack", "knowledge")}
        self.webhook_url = f"http://127.0.0.1:{ports['webhook']}/alertmanager"
        self.interactivity_url = f"http://127.0.0.1:{ports['slack']}/slack/interactivity"
        config = {
            "mode": "auto",
            "alertmanager": {"host": "127.0.0.1", "port": ports["webhook"], "path": "/alertmanager"},
            "knowledge": {"service_port": ports["knowledge"], "index_dir": str(tmp_path / "index")},
            "slack": {"token": self.slack.token, "channel": SLACK_CHANNEL, "base_url": self.slack.url + "/api/"},
            "chatops": {
                "approvers": APPROVERS, "st2_api_url": f"http://127.0.0.1:{ports['api']}/v1", "st2_api_key": self.api_key,
                "slack_signing_secret": SIGNING_SECRET,
                "interactivity": {"enabled": interactivity, "host": "127.0.0.1", "port": ports["slack"], "path": "/slack/interactivity"},
            },
        }  # fmt: skip
        (self.home / "configs" / "aegis.yaml").write_text(yaml.safe_dump(config))
        self.runtime = make_runtime(packs, home=self.home)
        wanted = {"aegis.AlertmanagerWebhookSensor"} | ({"aegis.SlackInteractivitySensor"} if interactivity else set())
        for sensor in self.runtime.packs["aegis"].pack.sensors:
            sensor.enabled = sensor.ref in wanted
        for rule in self.runtime.rules:
            if rule.ref == "aegis.remediate_firing_alert":
                # The rules engine matches the rules' metadata (as st2 matches its DB records).
                rule.enabled = rule.meta["enabled"] = False
        self.runtime.inquiries.interval = 0  # inquiries expire when a test says so
        self.servers = start_api(self.runtime, self.home, api_listen=("127.0.0.1", ports["api"]),
                                 auth_listen=("127.0.0.1", ports["auth"]), stream_listen=("127.0.0.1", ports["stream"]))  # fmt: skip
        self.runtime.start()
        self._wait_listening(self.webhook_url)
        if interactivity:
            self._wait_listening(self.interactivity_url)

    @staticmethod
    def _wait_listening(url: str) -> None:
        def up() -> bool:
            try:
                requests.get(url, timeout=1)
                return True
            except requests.ConnectionError:
                return False

        wait_for(up, timeout=120, what=f"{url} to listen")

    def close(self) -> None:
        self.servers.stop()

    def assert_only_the_approval_flow_ran(self) -> None:
        """No aegis.remediate beside the test's approval flow (it would compete for workers)."""
        assert self.runtime.records.list_executions(action="aegis.remediate") == []
        self.slack.__exit__(None, None, None)

    # -- alerts, incidents, inquiries -----------------------------------------------------

    def post_alert(self, index: int) -> str:
        notification = copy.deepcopy(NOTIFICATION)
        notification["alerts"] = [notification["alerts"][index]]
        response = requests.post(self.webhook_url, json=notification, timeout=10)
        assert response.status_code == 200, response.text
        return incident_id(notification["alerts"][0])

    def workflow_of(self, inc_id: str) -> dict[str, Any] | None:
        for record in self.runtime.records.list_executions(limit=500):
            if record["action"] == "chatopstest.approval_flow" and (record["parameters"] or {}).get("incident_id") == inc_id:
                return record
        return None

    def wait_inquiry(self, inc_id: str) -> dict[str, Any]:
        """The pending inquiry of the incident's workflow, once its Slack request was posted."""

        def pending() -> dict[str, Any] | None:
            workflow = self.workflow_of(inc_id)
            if workflow is None:
                return None
            for inquiry in self.runtime.inquiries.list():
                if inquiry["parent"] == workflow["id"] and self.approval_request(inquiry["id"]):
                    return inquiry
            return None

        return wait_for(pending, timeout=120, what=f"the approval request of {inc_id}")

    def approval_request(self, inquiry_id: str) -> dict[str, Any] | None:
        raw = self.runtime.store.get(f"aegis.approval.{inquiry_id}")
        return json.loads(raw) if raw else None

    def wait_workflow(self, inc_id: str, statuses: tuple[str, ...] = ("succeeded", "failed")) -> dict[str, Any]:
        return wait_for(lambda: (w := self.workflow_of(inc_id)) and w["status"] in statuses and w,
                        timeout=120, what=f"the workflow of {inc_id} to end")  # fmt: skip

    def tasks(self, workflow_id: str) -> dict[str, dict[str, Any]]:
        return {r["task_name"]: r for r in self.runtime.records.list_executions(limit=500) if r["parent"] == workflow_id}

    def timeline(self, inc_id: str) -> list[dict[str, Any]]:
        prefix = f"aegis.timeline.{inc_id}."
        return [json.loads(p.value) for p in sorted(self.runtime.store.list(prefix=prefix), key=lambda p: p.name)]

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(p.value) for p in sorted(self.runtime.store.list(prefix="aegis.chatops.audit."), key=lambda p: p.name)]
