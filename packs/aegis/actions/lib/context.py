"""Context gathering for the diagnosis: logs, deploys and metrics of the alerting workload.

    context = gather(incident, config, datastore)
    # {"alert": {...}, "logs": [...], "deploys": [...], "metrics": {...}, "sources": {...}}

The shape is the contract with the diagnoser (see the brief / ``lib/diagnosis.py``). Every
source runs with a timeout (config ``context.timeout_seconds``) in its own thread; one that
fails or times out is noted in ``sources`` (``error``) and never fails the gathering; a
source with nothing configured is ``missing``. Logs are untrusted text, bounded to
``max_lines`` lines and ``max_bytes`` bytes in all (newest kept).

| kind    | sources (each optional)                                                         |
|---------|---------------------------------------------------------------------------------|
| logs    | lines the log-pattern sensor matched for the service; ``context.log_files``;     |
|         | Kubernetes pod logs (``context.kubernetes_logs``); Loki ``query_range``         |
| deploys | ``aegis.record_deploy`` records; Kubernetes rollout history                     |
| metrics | runbook front matter ``queries:`` (runbooks whose signals name the alert) and    |
|         | ``context.metrics``, as Prometheus instant queries                              |
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
from incidents import alert_of
from lifecycle import epoch_seconds
from matched_lines import matched_lines
from promql import Prometheus, fill
from runbook_meta import runbook_front_matter
from safety import target_key

DEPLOY_PREFIX = "aegis.deploy."
SERVICE_LABELS = ("service", "app", "deployment", "statefulset", "container", "job", "program")
# Two pools: a group waits on its sources, so they must never compete for the same workers.
_GROUPS = ThreadPoolExecutor(max_workers=3, thread_name_prefix="aegis-context-group")
_SOURCES = ThreadPoolExecutor(max_workers=12, thread_name_prefix="aegis-context-source")


class Missing(Exception):
    """Nothing configured for this source (``missing``, not ``error``)."""


def service_of(labels: dict[str, str]) -> str:
    return next((str(labels[k]) for k in SERVICE_LABELS if labels.get(k)), "")


# -- logs ----------------------------------------------------------------------------------

def _tail(path: str, max_bytes: int) -> list[str]:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - max_bytes))
        data = fh.read(max_bytes)
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[1:] if size > max_bytes and lines else lines  # the first may be cut


def logs_matched(ctx: dict[str, Any]) -> list[str]:
    if not ctx["service"]:
        raise Missing("no service label")
    entries = matched_lines(ctx["datastore"], ctx["service"])
    if not entries:
        raise Missing(f"the log-pattern sensor matched nothing for {ctx['service']} in the last hour")
    return [f"{e.get('at', '')} {e.get('line', '')}" for e in entries]


def logs_files(ctx: dict[str, Any]) -> list[str]:
    patterns = (ctx["section"].get("log_files") or {}).get(ctx["service"]) or []
    if not patterns:
        raise Missing("no context.log_files for this service")
    lines: list[str] = []
    for path in sorted({p for pat in patterns for p in glob.glob(pat) if os.path.isfile(p)}):
        lines += _tail(path, ctx["max_bytes"])
    return lines


def logs_kubernetes(ctx: dict[str, Any]) -> list[str]:
    if not ctx["section"].get("kubernetes_logs") or not ctx["service"]:
        raise Missing("context.kubernetes_logs is off")
    from backends.kubernetes_backend import Kube
    kube = Kube.from_config(ctx["config"].get("kubernetes") or {})
    kube.timeout = ctx["timeout"]
    namespace = ctx["labels"].get("namespace")
    return kube.pod_logs(kube.resolve(ctx["service"], namespace), ctx["max_lines"], ctx["max_bytes"])


def logs_loki(ctx: dict[str, Any]) -> list[str]:
    loki = ctx["section"].get("loki") or {}
    if not loki.get("url") or not loki.get("query"):
        raise Missing("context.loki not configured")
    end = time.time()
    params = {"query": fill(loki["query"], ctx["labels"]), "start": str(int((end - float(loki.get("minutes", 30)) * 60) * 1e9)),
              "end": str(int(end * 1e9)), "limit": str(ctx["max_lines"]), "direction": "backward"}
    headers = {"Authorization": f"Bearer {loki['token']}"} if loki.get("token") else {}
    resp = requests.get(loki["url"].rstrip("/") + "/loki/api/v1/query_range", params=params, headers=headers, timeout=ctx["timeout"])
    resp.raise_for_status()
    entries = [(ts, line) for stream in resp.json()["data"]["result"] for ts, line in stream.get("values", [])]
    return [line for _ts, line in sorted(entries)]


LOG_SOURCES: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "matched": logs_matched, "files": logs_files, "kubernetes": logs_kubernetes, "loki": logs_loki,
}


# -- deploys -------------------------------------------------------------------------------

def deploys_recorded(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    if not ctx["service"]:
        raise Missing("no service label")
    pairs = ctx["datastore"].list_values(local=False, prefix=DEPLOY_PREFIX + target_key(ctx["service"]) + ".") or []
    if not pairs:
        raise Missing(f"no deploy of {ctx['service']} recorded")
    return [json.loads(p.value) for p in sorted(pairs, key=lambda p: p.name, reverse=True)]


def deploys_kubernetes(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    if not (ctx["config"].get("kubernetes") or {}).get("host") or not ctx["service"]:
        raise Missing("kubernetes.host not configured")
    from backends.kubernetes_backend import Kube
    kube = Kube.from_config(ctx["config"]["kubernetes"])
    kube.timeout = ctx["timeout"]
    return kube.history(kube.resolve(ctx["service"], ctx["labels"].get("namespace")))


DEPLOY_SOURCES = {"recorded": deploys_recorded, "kubernetes": deploys_kubernetes}


# -- metrics -------------------------------------------------------------------------------

_RUNBOOK_QUERIES: dict[tuple[str, float], dict[str, list[str]]] = {}


def runbooks_naming(runbooks_dir: Path | None, alertname: str) -> list[dict[str, Any]]:
    """Front matter of the runbooks whose ``signals`` name this alert (cached per directory mtime)."""
    if not runbooks_dir or not alertname or not Path(runbooks_dir).is_dir():
        return []
    key = (str(runbooks_dir), os.stat(runbooks_dir).st_mtime)
    if key not in _RUNBOOK_QUERIES:
        table: dict[str, list[str]] = {}
        for path in sorted(Path(runbooks_dir).glob("*.md")):
            meta = runbook_front_matter(runbooks_dir, path.stem)
            for signal in meta.get("signals") or []:
                table.setdefault(str(signal), []).append(path.stem)
        _RUNBOOK_QUERIES.clear()
        _RUNBOOK_QUERIES[key] = table
    return [runbook_front_matter(runbooks_dir, rb) for rb in _RUNBOOK_QUERIES[key].get(alertname, [])]


def metric_queries(ctx: dict[str, Any]) -> dict[str, str]:
    queries: dict[str, str] = {}
    for meta in runbooks_naming(ctx["runbooks_dir"], ctx["labels"].get("alertname", "")):
        if isinstance(meta.get("queries"), dict):
            queries.update({str(k): str(v) for k, v in meta["queries"].items()})
    queries.update({str(k): str(v) for k, v in (ctx["section"].get("metrics") or {}).items()})
    return queries


def gather_metrics(ctx: dict[str, Any]) -> dict[str, dict[str, Any]]:
    queries = metric_queries(ctx)
    if not queries:
        raise Missing("no queries for this alert (runbook queries: or context.metrics)")
    if not (ctx["config"].get("prometheus") or {}).get("url"):
        raise Missing("prometheus.url not configured")
    prom = Prometheus.from_config(ctx["config"])
    prom.timeout = ctx["timeout"]
    out: dict[str, dict[str, Any]] = {}
    for name, query in queries.items():
        try:
            samples = prom.query(query, ctx["labels"])
            out[name] = {"query": query, "value": samples[0]["value"] if samples else None}
        except Exception as exc:  # noqa: BLE001 (one bad query is noted, the rest still count)
            out[name] = {"query": query, "value": None, "error": str(exc)[:200]}
    return out


# -- the whole gathering ---------------------------------------------------------------------

def _run_group(ctx: dict[str, Any], sources: dict[str, Callable], deadline: float) -> tuple[dict[str, Any], dict[str, str]]:
    futures = {name: _SOURCES.submit(fn, ctx) for name, fn in sources.items()}
    results, status = {}, {}
    for name, fut in futures.items():
        try:
            results[name] = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            status[name] = "ok"
        except Missing as exc:
            status[name] = f"missing ({exc})"
        except FutureTimeout:
            status[name] = f"error (timed out after {ctx['timeout']}s)"
        except Exception as exc:  # noqa: BLE001 (a failing source never fails the gathering)
            status[name] = f"error ({type(exc).__name__}: {str(exc)[:200]})"
    return results, status


def _summary(status: dict[str, str], results: dict[str, Any]) -> dict[str, str]:
    detail = "; ".join(f"{k}: {v}" for k, v in status.items())
    if any(v == "ok" for v in status.values()):
        return {"status": "ok", "detail": detail}
    if any(v.startswith("error") for v in status.values()):
        return {"status": "error", "detail": detail}
    return {"status": "missing", "detail": detail}


def bound_lines(lines: list[str], max_lines: int, max_bytes: int, max_line_chars: int = 1000) -> list[str]:
    """The newest lines that fit both bounds, each clipped."""
    out, size = [], 0
    for line in reversed(lines):
        line = line if len(line) <= max_line_chars else line[: max_line_chars - 1] + "…"
        size += len(line.encode("utf-8", "replace")) + 1
        if len(out) >= max_lines or size > max_bytes:
            break
        out.append(line)
    return out[::-1]


def gather(incident: dict[str, Any], config: dict[str, Any], datastore: Any, runbooks_dir: Path | None = None) -> dict[str, Any]:
    section = config.get("context") if isinstance(config.get("context"), dict) else {}
    labels = incident.get("labels") or {}
    timeout = float(section.get("timeout_seconds", 5))
    ctx = {"config": config, "section": section, "labels": labels, "service": service_of(labels), "datastore": datastore,
           "timeout": timeout, "max_lines": int(section.get("max_lines", 200)), "max_bytes": int(section.get("max_bytes", 65536)),
           "runbooks_dir": runbooks_dir}
    if section.get("kubernetes_logs") or (config.get("kubernetes") or {}).get("host"):
        # The client library's import (1-3 s, more on a busy runner; each st2 action is a
        # new process) must not eat the cluster's time budget: a slow import is not a slow API.
        importlib.import_module("backends.kubernetes_backend")
    deadline = time.monotonic() + timeout
    groups = {"logs": LOG_SOURCES, "deploys": DEPLOY_SOURCES, "metrics": {"prometheus": gather_metrics}}
    submitted = {kind: _GROUPS.submit(_run_group, ctx, sources, deadline) for kind, sources in groups.items()}
    gathered = {kind: fut.result() for kind, fut in submitted.items()}
    logs = [line for name in LOG_SOURCES for line in gathered["logs"][0].get(name, [])]
    seen, deploys = set(), []
    cutoff = datetime.now(timezone.utc).timestamp() - float(section.get("deploy_window_hours", 24)) * 3600
    for name in DEPLOY_SOURCES:
        for d in gathered["deploys"][0].get(name, []):
            key = (d.get("service"), d.get("version"), d.get("at"))
            when = epoch_seconds(d.get("at") or "")
            if key in seen or (when is not None and when < cutoff):
                continue
            seen.add(key)
            deploys.append(d)
    return {
        "alert": alert_of(incident),
        "logs": bound_lines(logs, ctx["max_lines"], ctx["max_bytes"]),
        "deploys": deploys[:20],
        "metrics": gathered["metrics"][0].get("prometheus", {}),
        "sources": {kind: _summary(status, results) for kind, (results, status) in gathered.items()},
    }
