"""Shared helpers for the knowledge/diagnosis tests (import them; conftest.py is not ours).

    from _diag_fixtures import REPO, RUNBOOKS, shared_index_config, alert, context

``shared_index_config()`` builds, once per test process, an index of the repository's
runbooks in a temporary directory and returns a pack config pointing at it (the service
is switched off so a knowledge service running on this machine cannot interfere).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
PACK = TESTS.parent
REPO = PACK.parent.parent
RUNBOOKS = REPO / "knowledge" / "runbooks"
DEV_SET = REPO / "tests" / "data" / "diagnosis_dev.jsonl"
HOLDOUT_SET = REPO / "tests" / "data" / "diagnosis_holdout.jsonl"


@functools.lru_cache(maxsize=1)
def shared_index_config() -> dict[str, Any]:
    from knowledge import KnowledgeIndex, KnowledgeSettings

    index_dir = tempfile.mkdtemp(prefix="aegis-test-index-")
    atexit.register(shutil.rmtree, index_dir, True)
    config = {
        "knowledge": {"runbooks_dir": str(RUNBOOKS), "index_dir": index_dir, "use_service": False},
        "anthropic": {"api_key": ""},
        "diagnosis": {"min_confidence": 0.5, "deploy_window_minutes": 120},
    }
    KnowledgeIndex(KnowledgeSettings.from_config(config)).update()
    return config


def fresh_index_config() -> dict[str, Any]:
    """Like shared_index_config but with its own index dir (for tests that write incidents)."""
    base = shared_index_config()
    index_dir = tempfile.mkdtemp(prefix="aegis-test-index-")
    atexit.register(shutil.rmtree, index_dir, True)
    shutil.rmtree(index_dir)
    shutil.copytree(base["knowledge"]["index_dir"], index_dir)
    return {**base, "knowledge": {**base["knowledge"], "index_dir": index_dir}}


def alert(alertname: str, *, severity: str = "warning", starts_at: str = "2025-06-02T10:30:00Z",
          annotations: dict[str, str] | None = None, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": alertname, "severity": severity, **labels},
        "annotations": annotations or {},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": "f" * 16,
    }


def context(a: dict[str, Any], logs: list[str] | None = None, deploys: list[dict[str, Any]] | None = None,
            metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"alert": a, "logs": logs or [], "deploys": deploys or [], "metrics": metrics or {}}
