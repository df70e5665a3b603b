"""A runtime for the ChatOps tests: the aegis pack on the remediation world, st2's API and
stream on free ports, the Slack stand-in, and alerts that hold ``aegis.remediate`` for approval.

    world = World(tmp_dir).__enter__()              # remediation_world: Alertmanager, Redis, Prometheus...
    env = ChatOpsEnv(tmp_path, make_runtime, world, interactivity=True)
    incident_id = env.post_alert("cache-click")     # Alertmanager has it; its notification reaches the sensor
    inquiry = env.wait_inquiry(incident_id)         # aegis.remediate waits on core.ask; Slack has the request
    ...
    env.close()

The path is the production one: an alert on a Redis cache (``RedisOutOfMemory``) is
diagnosed ``clear_cache``, a ``caution``-class runbook, so in mode ``auto`` the real
``aegis.remediate`` dry-runs it, posts the plan and waits on ``core.ask``; the rule on
``core.st2.generic.inquiry`` runs ``aegis.request_approval``, which posts the one approval
message (plan and buttons) to the Slack stand-in through slack_sdk. Approved, the workflow
silences the alert in Alertmanager, clears the cache prefix in the real Redis and verifies
on Prometheus. Only the sensors a test needs run (the knowledge service's model would load
for nothing); the diagnoser reads the knowledge index in its action.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import requests
import yaml
from conftest import REPO, free_port, wait_for
from remediation_world import CACHE_SUMMARY, RedisCli, World, fire

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
APPROVERS = ["alice", "U0ALICE01"]
SLACK_CHANNEL = "C0INCIDENTS"
#: Redis caches the tests' alerts are about (one per test: cooldowns and learning stay apart).
CACHES = ("cache-click", "cache-cli", "cache-forged", "cache-expire", "cache-chat-yes", "cache-chat-no")


def incident_id(alert: dict[str, Any]) -> str:
    return "inc-" + hashlib.sha256(f"{alert['fingerprint'].lower()}|{alert['startsAt']}".encode()).hexdigest()[:16]


class ChatOpsEnv:
    def __init__(self, tmp_path: Path, make_runtime: Any, world: World, interactivity: bool = False) -> None:
        from st2lite.api import AuthStore, start_api

        self.world = world
        self.slack = world.slack
        self.redis = RedisCli(world.redis.port)
        packs = tmp_path / "packs"
        packs.mkdir()
        (packs / "aegis").symlink_to(REPO / "packs" / "aegis")
        self.home = tmp_path / "home"
        (self.home / "configs").mkdir(parents=True)
        self.auth = AuthStore(self.home)
        self.auth.add_user("errbot", "errbot-password")
        self.api_key = self.auth.create_api_key("aegis")["key"]
        ports = {name: free_port() for name in ("webhook", "api", "auth", "stream", "slack", "knowledge")}
        self.webhook_url = f"http://127.0.0.1:{ports['webhook']}/alertmanager"
        self.interactivity_url = f"http://127.0.0.1:{ports['slack']}/slack/interactivity"
        config = world.config(tmp_path / "index")
        config["redis"]["instances"].update(
            {name: {"url": world.redis.url, "cache": True, "prefixes": [f"{name}:"]} for name in CACHES})
        config.update({
            "mode": "auto",
            "alertmanager": {"host": "127.0.0.1", "port": ports["webhook"], "path": "/alertmanager"},
            "slack": {"token": self.slack.token, "channel": SLACK_CHANNEL, "base_url": self.slack.url + "/api/"},
            "chatops": {
                "approvers": APPROVERS, "st2_api_url": f"http://127.0.0.1:{ports['api']}/v1", "st2_api_key": self.api_key,
                "slack_signing_secret": SIGNING_SECRET,
                "interactivity": {"enabled": interactivity, "host": "127.0.0.1", "port": ports["slack"], "path": "/slack/interactivity"},
            },
        })  # fmt: skip
        (self.home / "configs" / "aegis.yaml").write_text(yaml.safe_dump(config))
        self.runtime = make_runtime(packs, home=self.home)
        wanted = {"aegis.AlertmanagerWebhookSensor"} | ({"aegis.SlackInteractivitySensor"} if interactivity else set())
        for sensor in self.runtime.packs["aegis"].pack.sensors:
            sensor.enabled = sensor.ref in wanted
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

    # -- alerts, incidents, inquiries -----------------------------------------------------

    def post_alert(self, cache: str) -> str:
        """A Redis cache out of memory: keys under its prefix (and one outside it) in the real
        Redis, the alert in Alertmanager (as Prometheus posts it), and Alertmanager's webhook
        notification of it posted to the webhook sensor. Returns the incident id."""
        for key, value in ((f"{cache}:a", "1"), (f"{cache}:b", "2"), (f"session:{cache}", "keep")):
            self.redis.set(key, value)
        am_alert = fire(self.world, cache, alertname="RedisOutOfMemory", summary=CACHE_SUMMARY)
        alert = {"status": "firing", "labels": am_alert["labels"], "annotations": am_alert["annotations"],
                 "startsAt": am_alert["startsAt"], "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": am_alert.get("generatorURL", ""), "fingerprint": am_alert["fingerprint"]}  # fmt: skip
        notification = {
            "version": "4", "groupKey": '{}:{alertname="RedisOutOfMemory"}', "truncatedAlerts": 0, "status": "firing",
            "receiver": "aegis", "groupLabels": {"alertname": "RedisOutOfMemory"}, "commonLabels": am_alert["labels"],
            "commonAnnotations": am_alert["annotations"], "externalURL": self.world.am.url, "alerts": [alert],
        }  # fmt: skip
        response = requests.post(self.webhook_url, json=notification, timeout=10)
        assert response.status_code == 200, response.text
        return incident_id(alert)

    def cache_keys(self, cache: str) -> tuple[int, int, bytes]:
        """(exists prefix:a, exists prefix:b, the session key outside the prefix)."""
        return self.redis.exists(f"{cache}:a"), self.redis.exists(f"{cache}:b"), self.redis.get(f"session:{cache}")

    def workflow_of(self, inc_id: str) -> dict[str, Any] | None:
        for record in self.runtime.records.list_executions(action="aegis.remediate", limit=500):
            if (record["parameters"] or {}).get("incident_id") == inc_id:
                return record
        return None

    def wait_inquiry(self, inc_id: str) -> dict[str, Any]:
        """The pending inquiry of the incident's remediation, once its Slack request was posted."""

        def pending() -> dict[str, Any] | None:
            workflow = self.workflow_of(inc_id)
            if workflow is None:
                return None
            for inquiry in self.runtime.inquiries.list():
                if inquiry["parent"] == workflow["id"] and self.approval_request(inquiry["id"]):
                    return inquiry
            return None

        # An upper bound, not a wait: a cold diagnosis loads the embedding model first.
        return wait_for(pending, timeout=300, what=f"the approval request of {inc_id}")

    def approval_request(self, inquiry_id: str) -> dict[str, Any] | None:
        raw = self.runtime.store.get(f"aegis.approval.{inquiry_id}")
        return json.loads(raw) if raw else None

    def wait_workflow(self, inc_id: str, statuses: tuple[str, ...] = ("succeeded", "failed")) -> dict[str, Any]:
        return wait_for(lambda: (w := self.workflow_of(inc_id)) and w["status"] in statuses and w,
                        timeout=240, what=f"the workflow of {inc_id} to end")  # fmt: skip

    def tasks(self, workflow_id: str) -> dict[str, dict[str, Any]]:
        """The workflow's task executions by task name (the last one of a name)."""
        records = self.runtime.records.list_executions(parent=workflow_id, newest_first=False, limit=200)
        return {r["task_name"]: r for r in records}

    def timeline(self, inc_id: str) -> list[dict[str, Any]]:
        prefix = f"aegis.timeline.{inc_id}."
        return [json.loads(p.value) for p in sorted(self.runtime.store.list(prefix=prefix), key=lambda p: p.name)]

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(p.value) for p in sorted(self.runtime.store.list(prefix="aegis.chatops.audit."), key=lambda p: p.name)]

    # -- the Slack channel ------------------------------------------------------------------

    def slack_calls(self, method: str, inc_id: str) -> list[dict[str, Any]]:
        """Web API calls (``chat.postMessage``, ``chat.update``) about the incident, in order."""
        return [c["body"] for c in self.slack.calls("POST", rf"/api/{method.replace('.', chr(92) + '.')}$")
                if inc_id in json.dumps(c["body"])]  # fmt: skip

    def message(self, request: dict[str, Any]) -> dict[str, Any]:
        """The approval message as the channel shows it now."""
        return self.slack.messages[(request["channel"], request["ts"])]
