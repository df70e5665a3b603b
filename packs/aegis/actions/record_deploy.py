"""aegis.record_deploy: CI/CD reports a deploy, so a diagnosis can point at it (rollback).

    st2 run aegis.record_deploy service=checkout version=v42 previous_version=v41
    curl -X POST https://st2/api/v1/webhooks/aegis_deploys -H 'St2-Api-Key: ...' \\
         -d '{"service": "checkout", "version": "v42", "previous_version": "v41"}'   # rule aegis.record_deploy_webhook

Kept a week under ``aegis.deploy.<service key>.<time>`` (one key per deploy: concurrent
reports never overwrite each other). Values are data: validated, clipped, never rendered.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any

from base import AegisAction
from context import DEPLOY_PREFIX
from safety import target_key
from timestamps import epoch_seconds

WEEK = 7 * 24 * 3600


class RecordDeploy(AegisAction):
    def run(self, service: str = "", version: str = "", previous_version: str = "", at: str = "", source: str = "ci",
            body: dict[str, Any] | None = None) -> tuple[bool, dict[str, Any]]:
        if isinstance(body, dict):  # from the webhook rule: the whole JSON body
            service, version = str(body.get("service") or ""), str(body.get("version") or "")
            previous_version, at = str(body.get("previous_version") or ""), str(body.get("at") or "")
            source = str(body.get("source") or "webhook")
        if not service or not version:
            return False, {"error": "a deploy needs service and version"}
        if at and epoch_seconds(at) is None:
            return False, {"error": f"at must be RFC 3339, got {at[:40]!r}"}
        now = time.time()
        deploy = {"service": service[:200], "version": version[:200], "at": at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "source": re.sub(r"[^\w .:/-]", "_", source)[:100]}
        if previous_version:
            deploy["previous_version"] = previous_version[:200]
        key = f"{DEPLOY_PREFIX}{target_key(service)}.{int(now * 1e6):017d}"
        self.action_service.set_value(key, json.dumps(deploy), ttl=WEEK, local=False)
        return True, deploy
