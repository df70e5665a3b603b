"""Incidents for humans: the list, and one incident's timeline (``aegis incident list|show``).

    print(format_list(incident_rows(datastore)))
    print(format_show(incident_view(datastore, "inc-0123456789abcdef")))

A view joins the incident record (``lib/incidents.py``), its lifecycle and timeline
(``lib/lifecycle.py``) and the actions the guards counted (``lib/safety.py``).
"""

from __future__ import annotations

from typing import Any

from incidents import IncidentStore
from lifecycle import Lifecycle
from safety import Guards
from timestamps import epoch_seconds


def incident_view(datastore: Any, incident_id: str) -> dict[str, Any]:
    incident = IncidentStore(datastore).load(incident_id)
    life = Lifecycle(datastore)
    state = life.state(incident_id, detected_at=incident.get("starts_at"))
    return {"incident": incident, **state, "timeline": life.timeline(incident_id),
            "actions": Guards(datastore, {}).incident_actions(incident_id)}


def incident_rows(datastore: Any, status: str | None = None) -> list[dict[str, Any]]:
    life = Lifecycle(datastore)
    rows = []
    for inc in IncidentStore(datastore).list(status=status):
        state = life.state(inc["id"], detected_at=inc.get("starts_at"))
        rows.append({"id": inc["id"], "alertname": inc.get("alertname", ""), "status": inc["status"], "state": state["state"],
                     "opened_at": inc.get("opened_at"), "mttr_seconds": state["mttr_seconds"],
                     "target": next((inc.get("labels", {}).get(k) for k in ("service", "deployment", "app", "instance")
                                     if inc.get("labels", {}).get(k)), "")})
    return rows


def _clock(iso: str | None) -> str:
    return (iso or "")[11:23] or "—"


def format_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no incidents"
    lines = [f"{'id':<21} {'alert':<28} {'target':<20} {'state':<21} {'opened (UTC)':<20} mttr"]
    for r in rows:
        mttr = f"{r['mttr_seconds']:.0f}s" if r["mttr_seconds"] is not None else "—"
        lines.append(f"{r['id']:<21} {r['alertname'][:28]:<28} {str(r['target'])[:20]:<20} {r['state']:<21} "
                     f"{(r['opened_at'] or '')[:19]:<20} {mttr}")
    return "\n".join(lines)


def format_show(view: dict[str, Any]) -> str:
    inc = view["incident"]
    labels = inc.get("labels") or {}
    annotations = inc.get("annotations") or {}
    mttr = f"  MTTR {view['mttr_seconds']:.1f}s" if view["mttr_seconds"] is not None else ""
    out = [f"{inc['id']}  {inc.get('alertname', '')}  [{view['state'].upper()}]{mttr}",
           f"  alert      {', '.join(f'{k}={v}' for k, v in sorted(labels.items()) if k != 'alertname')}",
           f"  summary    {annotations.get('summary') or annotations.get('description') or '—'}",
           f"  started    {inc.get('starts_at') or '—'}   alert {inc['status']}" + (f", closed {inc.get('closed_at')}" if inc.get("closed_at") else ""),
           f"  actions    {', '.join(view['actions']) or 'none'}"]
    if inc.get("generator_url"):
        out.append(f"  source     {inc['generator_url']}")
    out.append("")
    out.append("Timeline (UTC)")
    start = epoch_seconds(inc.get("starts_at") or "")
    out.append(f"  {_clock(inc.get('starts_at'))}  {'detected':<21} alert started")
    for e in view["timeline"]:
        offset = ""
        if start is not None and e.get("ts"):
            offset = f"+{e['ts'] - start:.1f}s"
        out.append(f"  {_clock(e.get('at'))}  {(e.get('state') or ''):<21} {e.get('event', '')}  {offset}".rstrip())
    return "\n".join(out)
