"""Telling humans: the report, and its delivery to Slack and PagerDuty.

    report = build_report("escalation", incident, diagnosis, attempts, verification, timeline)
    delivery = deliver(config, report)      # {"slack": {...}, "pagerduty": {...}, "routed": True}

Kinds: ``advisory`` (what Aegis would do), ``resolved`` (what it did, verified),
``escalation`` (a human must act; everything tried), ``noop`` (nothing to do, incident
stays open). An escalation report has: summary, impact, a timeline of what was detected
and tried with outcomes, the diagnosis with its evidence, next steps, links
(generatorURL, runbook).

Slack (config ``slack``): ``token`` + ``channel`` posts with ``chat.postMessage`` and
blocks (``base_url`` for a proxy or a stand-in), else ``webhook_url`` (an incoming webhook).
PagerDuty (config ``pagerduty``): ``routing_key`` sends Events API v2 ``trigger`` on an
escalation and ``resolve`` on a resolution, ``dedup_key`` = the alert fingerprint.
Alert text is untrusted: Slack control sequences (``<!channel>``, links) are escaped, and
every field is clipped.
"""

from __future__ import annotations

from typing import Any

import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

KIND_TITLES = {
    "advisory": "Aegis proposes",
    "resolved": "Aegis resolved",
    "escalation": "Aegis escalates: a human is needed",
    "noop": "Aegis: no action needed",
    "self_resolved": "Aegis: resolved by itself before any action",
    "approval": "Aegis asks for approval",
    "declined": "Aegis: action declined by a human",
}
PD_SEVERITY = {"critical": "critical", "page": "critical", "error": "error", "high": "error", "warning": "warning", "info": "info"}


def slack_escape(text: Any, limit: int = 2900) -> str:
    """Plain text for mrkdwn: Slack's three control characters escaped, clipped."""
    value = str(text if text is not None else "")
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _attempt_line(a: dict[str, Any]) -> str:
    outcome = {"dry_run": "would run"}.get(a.get("outcome", "?"), a.get("outcome", "?"))
    detail = a.get("reason") or a.get("verification") or ""
    commands = (a.get("plan") or {}).get("commands") or []
    line = f"{a.get('action')} {a.get('target')}: {outcome}" + (f" ({detail})" if detail else "")
    return line + ("; " + "; ".join(str(c) for c in commands[:20]) if commands else "")


def build_report(kind: str, incident: dict[str, Any], diagnosis: dict[str, Any] | None = None,
                 attempts: list[dict[str, Any]] | None = None, timeline: list[dict[str, Any]] | None = None,
                 runbook_url: str = "", note: str = "") -> dict[str, Any]:
    diagnosis = diagnosis or {}
    labels = incident.get("labels") or {}
    annotations = incident.get("annotations") or {}
    alertname = incident.get("alertname") or labels.get("alertname", "alert")
    summary = annotations.get("summary") or annotations.get("description") or alertname
    proposed = f"{diagnosis.get('action', '?')} {diagnosis.get('target', '')}".strip()
    next_steps = {
        "advisory": f"To apply: st2 run aegis.{diagnosis.get('action')} incident_id={incident.get('id')} target=<target> dry_run=false",
        "escalation": "Take over: check the diagnosis and evidence below, then act; Aegis will not act again on this incident.",
        "resolved": "None; the incident is resolved and learned.",
        "noop": "None now; the incident stays open until the alert resolves.",
        "self_resolved": "None; if it flaps, tune the alert (Aegis did nothing).",
        "approval": f"Approve or decline (approvers only): `!st2 aegis approve {incident.get('id')}` / `!st2 aegis deny "
                    f"{incident.get('id')} <reason>` in chat, or st2 inquiry respond <inquiry> -r '{{\"approved\": true}}'",
        "declined": "The incident is yours; Aegis will not act on it.",
    }[kind]
    return {
        "kind": kind,
        "title": f"{KIND_TITLES[kind]}: {alertname}",
        "incident_id": incident.get("id"),
        "fingerprint": incident.get("fingerprint"),
        "summary": summary,
        "impact": f"severity {labels.get('severity', 'unknown')}; " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname"),
        "diagnosis": {"proposed": proposed, "root_cause": diagnosis.get("root_cause", ""), "confidence": diagnosis.get("confidence"),
                      "safety": diagnosis.get("safety", ""), "evidence": diagnosis.get("evidence") or [],
                      "reasoning": diagnosis.get("reasoning", "")},
        "attempts": [_attempt_line(a) for a in attempts or []],
        "timeline": timeline or [],
        "next_steps": next_steps,
        "note": note,
        "links": {k: v for k, v in (("alert", incident.get("generator_url")), ("runbook", runbook_url)) if v},
        "severity": PD_SEVERITY.get(str(labels.get("severity", "")).lower(), "error"),
    }


def report_text(report: dict[str, Any]) -> str:
    """The report as plain text (logs, PagerDuty details, the fallback text of a Slack message)."""
    d = report["diagnosis"]
    lines = [report["title"], f"Incident {report['incident_id']}: {report['summary']}", f"Impact: {report['impact']}",
             f"Diagnosis: {d['proposed']} (confidence {d['confidence']}, {d['safety']}): {d['root_cause']}"]
    if report["note"]:
        lines.append(f"Note: {report['note']}")
    if report["timeline"]:
        lines.append("Timeline:")
        lines += [f"  {t.get('at', '')} {t.get('event', '')}" for t in report["timeline"]]
    if report["attempts"]:
        lines.append("Tried:")
        lines += [f"  {a}" for a in report["attempts"]]
    if d["evidence"]:
        lines.append("Evidence: " + "; ".join(f"{e.get('kind')} {e.get('id')}" for e in d["evidence"] if isinstance(e, dict)))
    lines.append(f"Next: {report['next_steps']}")
    lines += [f"{k}: {v}" for k, v in report["links"].items()]
    return "\n".join(lines)


def slack_blocks(report: dict[str, Any]) -> list[dict[str, Any]]:
    d = report["diagnosis"]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": report["title"][:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{slack_escape(report['summary'], 500)}*\n"
                                                               f"Incident `{slack_escape(report['incident_id'])}` · {slack_escape(report['impact'], 1000)}"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Diagnosis:* {slack_escape(d['proposed'])} "
                                                               f"(confidence {d['confidence']}, {slack_escape(d['safety'])})\n{slack_escape(d['root_cause'], 1500)}"}},
    ]
    if report["note"]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(report["note"])}})
    if report["timeline"] or report["attempts"]:
        rows = [f"• {slack_escape(t.get('at', ''))} {slack_escape(t.get('event', ''), 300)}" for t in report["timeline"]]
        rows += [f"• tried {slack_escape(a, 300)}" for a in report["attempts"]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Timeline*\n" + "\n".join(rows)[:2900]}})
    if d["evidence"]:
        ev = ", ".join(f"{e.get('kind')} {e.get('id')}" for e in d["evidence"] if isinstance(e, dict))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "Evidence: " + slack_escape(ev, 1900)}]})
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Next:* " + slack_escape(report["next_steps"])}})
    if report["links"]:
        links = " · ".join(f"{k}: {slack_escape(v, 500)}" for k, v in report["links"].items())
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": links}]})
    return blocks


def send_slack(section: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    text = slack_escape(report_text(report), 3500)
    if section.get("token"):
        kwargs = {"token": section["token"], "timeout": int(section.get("timeout") or 10)}
        if section.get("base_url"):
            kwargs["base_url"] = section["base_url"].rstrip("/") + "/"
        try:
            resp = WebClient(**kwargs).chat_postMessage(channel=section.get("channel") or "#incidents", text=text,
                                                        blocks=slack_blocks(report))
        except SlackApiError as exc:
            return {"status": "error", "detail": f"slack: {exc.response.get('error')}"}
        except Exception as exc:  # noqa: BLE001 (network errors: the other channel may still work)
            return {"status": "error", "detail": f"slack: {type(exc).__name__}: {exc}"}
        return {"status": "sent", "ts": resp.get("ts"), "channel": resp.get("channel")}
    if section.get("webhook_url"):
        try:
            resp = requests.post(section["webhook_url"], json={"text": text, "blocks": slack_blocks(report)},
                                 timeout=float(section.get("timeout") or 10))
        except requests.RequestException as exc:
            return {"status": "error", "detail": f"slack webhook: {type(exc).__name__}"}
        return {"status": "sent"} if resp.status_code == 200 else {"status": "error", "detail": f"slack webhook: HTTP {resp.status_code}"}
    return {"status": "not_configured"}


def send_pagerduty(section: dict[str, Any], report: dict[str, Any], event_action: str) -> dict[str, Any]:
    if not section.get("routing_key"):
        return {"status": "not_configured"}
    url = (section.get("base_url") or "https://events.pagerduty.com").rstrip("/") + "/v2/enqueue"
    body: dict[str, Any] = {"routing_key": section["routing_key"], "event_action": event_action,
                            "dedup_key": report["fingerprint"] or report["incident_id"]}
    if event_action == "trigger":
        body["payload"] = {"summary": report["title"][:1024], "source": "aegis", "severity": report["severity"],
                           "custom_details": {"report": report_text(report)[:16000], "incident": report["incident_id"]}}
        body["links"] = [{"href": v, "text": k} for k, v in report["links"].items()]
    try:
        resp = requests.post(url, json=body, timeout=float(section.get("timeout") or 10))
    except requests.RequestException as exc:
        return {"status": "error", "detail": f"pagerduty: {type(exc).__name__}"}
    if resp.status_code != 202:
        return {"status": "error", "detail": f"pagerduty: HTTP {resp.status_code}"}
    return {"status": "sent", "event_action": event_action, "dedup_key": body["dedup_key"]}


def deliver(config: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    """Send a report where it belongs; ``routed`` says whether any human channel took it."""
    slack = send_slack(config.get("slack") or {}, report)
    pd_action = {"escalation": "trigger", "resolved": "resolve", "self_resolved": "resolve"}.get(report["kind"])
    pagerduty = send_pagerduty(config.get("pagerduty") or {}, report, pd_action) if pd_action else {"status": "not_applicable"}
    return {"slack": slack, "pagerduty": pagerduty, "routed": "sent" in (slack["status"], pagerduty["status"])}
