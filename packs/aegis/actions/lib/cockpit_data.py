"""What the incident cockpit shows, read from the st2 datastore and st2's API.

    data = CockpitData(sensor_service, config)
    data.incident_rows(state="escalated", service="checkout")   # the list, newest first
    data.incident_detail("inc-0123456789abcdef", api)           # timeline, diagnosis, executions, report
    data.pending_approvals(api)                                 # inquiries with their incident
    data.impact()                                               # per day, share without a human, MTTR, cost
    mttr_svg(data.impact()["mttr_buckets"])                     # the chart, an SVG document

Everything returned is plain data (JSON); nothing here formats HTML. Alert and log text is
untrusted: the browser code puts it into the page with ``textContent`` only.

Where it comes from: incidents (``lib/incidents.py``) and their lifecycle
(``lib/lifecycle.py``) from the datastore; the executions behind them from st2's API
(``/executions?parent=null``, then ``/executions/ID/children``): each top-level execution
whose ``incident_id`` parameter names the incident, and its tasks.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from incidents import KEY_PREFIX, IncidentStore, is_incident_id
from lifecycle import PREFIX as TIMELINE_PREFIX
from lifecycle import TERMINAL, Lifecycle
from matched_lines import matched_lines
from mode import MODES, effective_mode
from safety import INCIDENT_PREFIX as ACTIONS_TAKEN_PREFIX
from st2_api import St2API, St2Error
from timestamps import epoch_seconds

LAST_CHANGE_KEY = "aegis.mode.last_change"
SERVICE_LABELS = ("service", "job", "app", "instance")
#: The acting actions (``remedies.py``): an execution of one is the "acted" step.
ACTING = ("restart", "scale_up", "rollback", "cleanup_disk", "cancel_query", "clear_cache")
#: The stages of the incident page's timeline, in order, and how each is found (first match).
STAGES = ("detected", "diagnosed", "approval", "acted", "verified", "outcome")
#: MTTR histogram buckets (upper bounds in minutes; the last is open).
MTTR_BUCKETS = (1, 5, 15, 30, 60, 240)


def service_of(incident: dict[str, Any]) -> str:
    labels = incident.get("labels") or {}
    return next((str(labels[k]) for k in SERVICE_LABELS if labels.get(k)), "")


def _result(execution: dict[str, Any]) -> Any:
    """A python-script action's return value (st2 wraps it in ``{"result": ...}``)."""
    result = execution.get("result")
    if isinstance(result, dict) and "result" in result and ("exit_code" in result or "stdout" in result):
        return result["result"]
    return result


def _ref(execution: dict[str, Any]) -> str:
    return str((execution.get("action") or {}).get("ref") or "")


class CockpitData:
    def __init__(self, datastore: Any, config: dict[str, Any] | None, clock: Any = time.time) -> None:
        self._ds = datastore
        self.config = config or {}
        self.incidents = IncidentStore(datastore)
        self.lifecycle = Lifecycle(datastore)
        self._clock = clock

    def read_key(self, name: str) -> Any:
        return self._ds.get_value(name, local=False)

    # -- the list ------------------------------------------------------------------------

    def change_stamp(self) -> str:
        """Changes whenever an incident or a timeline entry is added or rewritten (for the live list)."""
        digest = hashlib.sha256()
        for prefix in (KEY_PREFIX, TIMELINE_PREFIX, "aegis.mode"):
            for pair in self._ds.list_values(local=False, prefix=prefix) or []:
                digest.update(pair.name.encode())
                digest.update(str(pair.value).encode())
        return digest.hexdigest()[:16]

    def _actions_taken(self, incident_id: str) -> list[str]:
        raw = self.read_key(ACTIONS_TAKEN_PREFIX + incident_id)
        try:
            taken = json.loads(raw) if raw else []
        except ValueError:
            return []
        return [str(t[0] if isinstance(t, list) else t.get("action") if isinstance(t, dict) else t) for t in taken]

    def row(self, incident: dict[str, Any]) -> dict[str, Any]:
        state = self.lifecycle.state(incident["id"], detected_at=incident.get("opened_at"))
        proposed = [e["event"] for e in self.lifecycle.timeline(incident["id"]) if str(e.get("event", "")).startswith("proposed ")]
        taken = self._actions_taken(incident["id"])
        opened = epoch_seconds(incident.get("opened_at") or "")
        return {
            "id": incident["id"], "state": state["state"], "status": incident.get("status"),
            "service": service_of(incident), "alert": incident.get("alertname") or "",
            "summary": (incident.get("annotations") or {}).get("summary") or "",
            "action": ", ".join(taken) if taken else (proposed[-1][len("proposed "):] if proposed else ""),
            "mttr_seconds": state["mttr_seconds"], "opened_at": incident.get("opened_at"),
            "age_seconds": None if opened is None else max(0, round(self._clock() - opened)),
            "since": state["since"], "repeats": incident.get("repeats", 0),
        }  # fmt: skip

    def incident_rows(self, state: str = "", service: str = "") -> list[dict[str, Any]]:
        rows = [self.row(inc) for inc in self.incidents.list()]
        rows = [r for r in rows if (not state or r["state"] == state) and (not service or r["service"] == service)]
        return sorted(rows, key=lambda r: r["opened_at"] or "", reverse=True)

    # -- one incident --------------------------------------------------------------------

    def executions_of(self, api: St2API | None, incident_id: str) -> tuple[list[dict[str, Any]], str]:
        """The top-level executions for the incident with their tasks, and an error (or "")."""
        if api is None:
            return [], "no st2 API configured (cockpit.st2_api_url)"
        try:
            tops = [e for e in api.executions(parent="null", limit=200, exclude_attributes="result")
                    if (e.get("parameters") or {}).get("incident_id") == incident_id]  # fmt: skip
            out = []
            for top in sorted(tops, key=lambda e: e.get("start_timestamp") or ""):
                out.append({**self._execution(top), "tasks": [self._execution(c) for c in api.children(top["id"])]})
            return out, ""
        except St2Error as exc:
            return [], str(exc)

    @staticmethod
    def _execution(e: dict[str, Any]) -> dict[str, Any]:
        return {"id": e.get("id"), "action": _ref(e), "status": e.get("status"), "start": e.get("start_timestamp"),
                "end": e.get("end_timestamp"), "task": ((e.get("context") or {}).get("orquesta") or {}).get("task_name", ""),
                "result": _result(e)}  # fmt: skip

    def incident_detail(self, incident_id: str, api: St2API | None) -> dict[str, Any] | None:
        if not is_incident_id(incident_id):
            return None
        incident = self.incidents.get(incident_id)
        if incident is None:
            return None
        timeline = self.lifecycle.timeline(incident_id)
        state = self.lifecycle.state(incident_id, detected_at=incident.get("opened_at"))
        executions, api_error = self.executions_of(api, incident_id)
        tasks = [t for top in executions for t in top["tasks"]]
        diagnosis = next((t["result"] for t in reversed(tasks) if t["action"] == "aegis.diagnose" and isinstance(t["result"], dict)), None)
        report = next((t["result"].get("report") for t in reversed(tasks)
                       if t["action"] in ("aegis.escalate", "aegis.notify") and isinstance(t["result"], dict)
                       and (t["result"].get("report") or {}).get("kind") == "escalation"), None)  # fmt: skip
        silences = [{"execution": t["id"], "status": t["status"], "at": t["end"], "result": t["result"]}
                    for t in tasks if t["action"] == "aegis.silence"]  # fmt: skip
        silence_events = [e for e in timeline if "silence" in str(e.get("event", "")).lower()]
        return {
            "incident": incident, "service": service_of(incident), "state": state, "timeline": timeline,
            "stages": self.stages(incident, state, timeline, tasks), "diagnosis": diagnosis,
            "runbooks": self._cited_runbooks(diagnosis), "report": report,
            "silences": silences, "silence_events": silence_events, "executions": executions, "api_error": api_error,
            "logs": [line for line in matched_lines(self._ds, service_of(incident))] if service_of(incident) else [],
        }  # fmt: skip

    @staticmethod
    def _cited_runbooks(diagnosis: dict[str, Any] | None) -> list[str]:
        if not diagnosis:
            return []
        cited = [str(e.get("id")) for e in diagnosis.get("evidence") or [] if isinstance(e, dict) and e.get("kind") == "runbook"]
        if diagnosis.get("runbook"):
            cited.insert(0, str(diagnosis["runbook"]))
        return list(dict.fromkeys(c for c in cited if c))

    def stages(self, incident: dict[str, Any], state: dict[str, Any], timeline: list[dict[str, Any]],
               tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """detected → diagnosed → approved/refused → acted → verified → resolved/escalated, each with
        its time (None: not reached) and the executions behind it."""

        def first(pred: Any) -> dict[str, Any] | None:
            return next((t for t in tasks if pred(t)), None)

        def events(word: str) -> list[dict[str, Any]]:
            return [e for e in timeline if word in str(e.get("event", "")).lower()]

        out = [{"stage": "detected", "label": "detected", "at": incident.get("opened_at"), "detail": incident.get("alertname") or "",
                "executions": [t["id"] for t in tasks if t["action"] == "aegis.record_incident"]}]  # fmt: skip
        diag = first(lambda t: t["action"] == "aegis.diagnose")
        proposal = (diag or {}).get("result") if diag and isinstance(diag.get("result"), dict) else {}
        out.append({"stage": "diagnosed", "label": "diagnosed",
                    "at": (diag or {}).get("end") or state["transitions"].get("identified"),
                    "detail": f"{proposal.get('action', '')} {proposal.get('target', '') or ''}".strip() if proposal else "",
                    "executions": [diag["id"]] if diag else []})  # fmt: skip
        ask = first(lambda t: t["action"] == "core.ask")
        decided = [e for e in timeline if str(e.get("event", "")).startswith(("approved by", "denied by"))]
        label, at, detail = "approval", None, ""
        if ask is not None:
            response = (ask.get("result") or {}).get("response") if isinstance(ask.get("result"), dict) else None
            if ask["status"] == "pending":
                label, detail = "awaiting approval", "waiting for a human"
            elif isinstance(response, dict):
                approved = next((v for k, v in response.items() if isinstance(v, bool)), None)
                label = "approved" if approved else "refused"
                at = ask.get("end")
                detail = str(response.get("approver") or response.get("reason") or "")
            else:
                label, at, detail = "approval timed out", ask.get("end"), ask["status"]
        if decided:
            at = at or decided[-1]["at"]
            detail = decided[-1]["event"]
        out.append({"stage": "approval", "label": label, "at": at, "detail": detail,
                    "executions": [ask["id"]] if ask else []})  # fmt: skip
        acts = [t for t in tasks if t["action"].split(".", 1)[-1] in ACTING]
        act_detail = ""
        if acts and isinstance(acts[-1].get("result"), dict):
            r = acts[-1]["result"]
            act_detail = f"{r.get('action')} {r.get('target')}: {r.get('outcome')}" + (f" ({r['reason']})" if r.get("reason") else "")
        out.append({"stage": "acted", "label": "acted", "at": acts[-1]["end"] if acts else state["transitions"].get("resolving"),
                    "detail": act_detail, "executions": [t["id"] for t in acts]})  # fmt: skip
        verify = [t for t in tasks if t["action"] == "aegis.verify"]
        verified = events("verification")
        out.append({"stage": "verified", "label": "verified", "at": verify[-1]["end"] if verify else (verified[-1]["at"] if verified else None),
                    "detail": verified[-1]["event"] if verified else "", "executions": [t["id"] for t in verify]})  # fmt: skip
        terminal = state["state"] if state["state"] in TERMINAL else ""
        ends = [t for t in tasks if t["action"] in ("aegis.escalate", "aegis.close_incident")]
        out.append({"stage": "outcome", "label": terminal or "open", "at": state["since"] if terminal else None,
                    "detail": f"MTTR {round(state['mttr_seconds'] / 60, 1)} min" if state["mttr_seconds"] is not None else "",
                    "executions": [t["id"] for t in ends]})  # fmt: skip
        return out

    # -- approvals and mode ----------------------------------------------------------------

    def pending_approvals(self, api: St2API | None) -> tuple[list[dict[str, Any]], str]:
        from approvals import incident_of

        if api is None:
            return [], "no st2 API configured (cockpit.st2_api_url)"
        try:
            inquiries = api.inquiries()
        except St2Error as exc:
            return [], str(exc)
        out = []
        for inquiry in inquiries:
            try:
                inc_id = incident_of(api, inquiry["id"])
            except St2Error:
                inc_id = None
            incident = self.incidents.get(inc_id) if inc_id else None
            out.append({"inquiry": inquiry.get("id"), "incident_id": inc_id, "ttl": inquiry.get("ttl"),
                        "users": inquiry.get("users") or [], "schema": inquiry.get("schema") or {},
                        "alert": (incident or {}).get("alertname") or "", "service": service_of(incident or {}),
                        "summary": ((incident or {}).get("annotations") or {}).get("summary") or ""})  # fmt: skip
        return out, ""

    def mode(self) -> dict[str, Any]:
        mode, source = effective_mode(self.config, self.read_key)
        raw = self.read_key(LAST_CHANGE_KEY)
        try:
            last = json.loads(raw) if raw else None
        except ValueError:
            last = None
        return {"mode": mode, "source": source, "modes": list(MODES), "last_change": last}

    # -- impact ----------------------------------------------------------------------------

    def impact(self, days: int = 14) -> dict[str, Any]:
        """Incidents per day, the share resolved without a human, MTTR distribution, cost avoided.

        "Resolved without a human" is the lifecycle state ``resolved`` (Aegis acted and verified;
        an incident a human took over ends ``escalated``). Cost avoided per such incident is
        ``max(0, manual_mttr_minutes - its MTTR) * cost_per_minute`` (config ``cockpit``).
        """
        section = self.config.get("cockpit") or {}
        cost = float(section.get("cost_per_minute", 100))
        manual = float(section.get("manual_mttr_minutes", 45))
        now = self._clock()
        per_day: Counter[str] = Counter()
        ended = by_aegis = 0
        mttrs: list[float] = []
        for incident in self.incidents.list():
            opened = epoch_seconds(incident.get("opened_at") or "")
            if opened is not None and now - opened < days * 86400:
                per_day[datetime.fromtimestamp(opened, timezone.utc).strftime("%Y-%m-%d")] += 1
            state = self.lifecycle.state(incident["id"], detected_at=incident.get("opened_at"))
            if state["state"] in TERMINAL:
                ended += 1
            if state["state"] == "resolved" and state["mttr_seconds"] is not None:
                by_aegis += 1
                mttrs.append(state["mttr_seconds"] / 60)
        day_list = [datetime.fromtimestamp(now - i * 86400, timezone.utc).strftime("%Y-%m-%d") for i in range(days - 1, -1, -1)]
        buckets = []
        lower = 0.0
        for upper in (*MTTR_BUCKETS, float("inf")):
            label = f"<{upper:g} min" if upper != float("inf") else f"≥{MTTR_BUCKETS[-1]:g} min"
            buckets.append({"label": label, "count": sum(1 for m in mttrs if lower <= m < upper)})
            lower = upper
        avoided = sum(max(0.0, manual - m) * cost for m in mttrs)
        return {
            "per_day": [{"day": d, "count": per_day.get(d, 0)} for d in day_list],
            "ended": ended, "resolved_without_human": by_aegis,
            "share_without_human": round(by_aegis / ended, 3) if ended else None,
            "mttr_minutes_median": round(sorted(mttrs)[len(mttrs) // 2], 2) if mttrs else None,
            "mttr_buckets": buckets, "cost_per_minute": cost, "manual_mttr_minutes": manual,
            "cost_avoided": round(avoided, 2),
        }  # fmt: skip


def mttr_svg(buckets: list[dict[str, Any]], width: int = 560, height: int = 220) -> str:
    """The MTTR distribution as a bar chart, an SVG document drawn here (labels are ours, not alert text).

    >>> "<svg" in mttr_svg([{"label": "<1 min", "count": 2}])
    True
    """
    pad, bar_gap = 30, 8
    top = max([b["count"] for b in buckets] + [1])
    bar_w = (width - 2 * pad) / max(len(buckets), 1) - bar_gap
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             'font-family="sans-serif" font-size="11" role="img" aria-label="MTTR distribution">',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#888"/>']  # fmt: skip
    for i, b in enumerate(buckets):
        h = (height - 2 * pad - 14) * b["count"] / top
        x = pad + i * (bar_w + bar_gap) + bar_gap / 2
        y = height - pad - h
        label = str(b["label"]).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="#2f6fb3"/>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{int(b["count"])}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - pad + 14}" text-anchor="middle">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)
