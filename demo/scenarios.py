"""The demo's scenarios: break the victim one way, watch Aegis handle it, check the outcome.

    with Stack(base) as stack:
        result = run_scenario(stack, SCENARIOS["memory_leak"], progress=print)
        result.ok, result.run.action, result.run.mttr_seconds

Each scenario names its fault, the alert Prometheus raises for it, what Aegis should do
(``expect_action``: the acting task's action and target, or ``escalate``) and how it should
end (``resolved`` or ``escalated``). When Aegis does not fix it, "the on-call human" does
(``manual_fix``), so that the next scenario starts from a healthy victim.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from demo.report import History, Run
from demo.stack import HOST_NAME, Stack, StackError, wait_until

Progress = Callable[[str], None]


def _restart_victim(stack: Stack) -> None:
    proxy = stack.supervisor()
    proxy.supervisor.stopProcess("victim")
    proxy.supervisor.startProcess("victim")


def _empty(sub: str) -> Callable[[Stack], None]:
    def fix(stack: Stack) -> None:
        for path in (stack.base / "volumes" / sub).glob("*"):
            path.unlink()
    return fix


def _fault_off(name: str) -> Callable[[Stack], None]:
    return lambda stack: stack.fault(name, on=False)


def _terminate_report(stack: Stack) -> None:
    stack.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'report'")


def _rollback(stack: Stack) -> None:
    import requests

    requests.post(stack.victim_url + "/deploy", json={"action": "rollback"},
                  headers={"Authorization": f"Bearer {stack.deploy_token}"}, timeout=10).raise_for_status()


def _flush_cache(stack: Stack) -> None:
    cli = ["redis-cli", "-p", str(stack.ports["redis"])]
    keys = subprocess.run([*cli, "--scan", "--pattern", "victim:cache:*"], capture_output=True, text=True).stdout.split()
    if keys:
        subprocess.run([*cli, "DEL", *keys], capture_output=True, check=True)


def _answer(stack: Stack, inquiry_id: str, response: dict[str, Any]) -> None:
    """Answer Aegis's approval request as a human would (``st2 inquiry respond``)."""
    result = stack.aegis("inquiry", "respond", inquiry_id, "-r", json.dumps(response))
    if result.returncode != 0:
        raise StackError(f"answering inquiry {inquiry_id} failed: {result.stdout[-500:]}{result.stderr[-500:]}")


def _bad_release(stack: Stack) -> None:
    """CI/CD reports the deploy (as it would to st2's webhook), then deploys the buggy v2."""
    result = stack.aegis("action", "execute", "aegis.record_deploy", "service=victim", "version=v2",
                         "previous_version=v1", "source=demo-deploy-api")
    if result.returncode != 0:
        raise StackError(f"recording the deploy failed: {result.stdout[-500:]}{result.stderr[-500:]}")
    stack.deploy("v2")


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    alertname: str
    expect_action: str  # "restart victim", "escalate", ...
    expect_outcome: str  # "resolved" | "escalated"
    inject: Callable[[Stack], Any]
    manual_fix: Callable[[Stack], Any]  # what the on-call human does when Aegis does not fix it
    labels: dict[str, str] = field(default_factory=dict)  # to tell apart alerts of one name
    approve: bool = False  # a caution-class action: the on-call human approves Aegis's plan (core.ask)


def _fault(name: str) -> Callable[[Stack], Any]:
    return lambda stack: stack.fault(name)


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("memory_leak", "memory leak", "HighMemoryUsage", "restart victim", "resolved", _fault("memory_leak"),
             _restart_victim),
    Scenario("disk", "rotated logs fill the log volume", "NodeFilesystemAlmostOutOfSpace",
             f"cleanup_disk {HOST_NAME}", "resolved", _fault("fill_logs"), _empty("logs"),
             {"mountpoint": "/var/log/victim"}),
    Scenario("stale_cache", "Redis cache poisoned with stale prices", "CacheStaleContent", "clear_cache victim-cache",
             "resolved", _fault("poison_cache"), _flush_cache),
    Scenario("hung", "hung health check (the process deadlocks)", "LivenessProbeTimeout", "restart victim",
             "resolved", _fault("hung"), _restart_victim),
    Scenario("data_volume", "the data volume fills up (no safe fix)", "NodeFilesystemAlmostOutOfSpace", "escalate",
             "escalated", _fault("fill_data"), _empty("data"), {"mountpoint": "/data"}),
    Scenario("slow_dependency", "slow third-party dependency", "UpstreamLatencyHigh", "escalate", "escalated",
             _fault("slow_dependency"), _fault_off("slow_dependency")),
    Scenario("cpu_spin", "CPU spin (caution: a human approves the restart)", "ProcessCPUHigh",
             "restart victim", "resolved", _fault("cpu_spin"), _restart_victim, approve=True),
    Scenario("idle_in_transaction", "PostgreSQL session idle in transaction (caution: a human approves)",
             "PostgresqlIdleInTransaction", "cancel_query orders", "resolved",
             _fault("idle_in_transaction"), _terminate_report, approve=True),
    # Last: for two hours a deploy of the victim is a suspect for any of its alerts (the
    # diagnoser's deploy window), so the scenarios before it would be rolled back too.
    Scenario("bad_release", "bad release (v2 fails half the checkouts)", "HighErrorRate", "rollback victim",
             "resolved", _bad_release, _rollback),
)}  # fmt: skip


@dataclass
class ScenarioResult:
    scenario: Scenario
    injected: float
    fired: float | None = None  # Alertmanager's startsAt of the alert
    run: Run | None = None
    alert_resolved: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _matches(labels: dict[str, str], scenario: Scenario) -> bool:
    return labels.get("alertname") == scenario.alertname and all(labels.get(k) == v for k, v in scenario.labels.items())


def _am_alerts(stack: Stack, scenario: Scenario, active: bool) -> list[dict[str, Any]]:
    return [a for a in stack.alerts(active_only=active) if _matches(a["labels"], scenario)]


def settle(stack: Stack, timeout: float = 120) -> None:
    """Wait until the victim is healthy, no alert is active and no workflow is running."""
    import requests

    wait_until(lambda: requests.get(stack.victim_url + "/health", timeout=2).ok, timeout, "the victim to answer")
    wait_until(lambda: not [a for a in stack.alerts(active_only=False) if a["status"]["state"] != "unprocessed"
                            and a["labels"].get("job") == "victim"], timeout, "every victim alert to resolve")
    history = History(stack.home)
    wait_until(lambda: all(r.done for r in history.runs()), timeout, "running workflows to finish")


def run_scenario(stack: Stack, scenario: Scenario, progress: Progress = lambda line: None,
                 timeout: float = 180) -> ScenarioResult:
    """Inject the fault, follow Aegis's workflow to its end, check the outcome."""
    history = History(stack.home)
    known = {r.id for r in history.runs()}
    programs_before = stack.programs()
    result = ScenarioResult(scenario, injected=time.time())
    scenario.inject(stack)
    progress(f"{scenario.name}: fault injected ({scenario.title})")
    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(1.0, deadline - time.monotonic())

    from demo.report import epoch

    alerts = wait_until(lambda: _am_alerts(stack, scenario, active=True), left(), f"{scenario.alertname} to fire")
    result.fired = epoch(alerts[0]["startsAt"])
    progress(f"{scenario.name}: {scenario.alertname} firing in Alertmanager")

    def new_run() -> Run | None:
        return next((r for r in history.runs() if r.id not in known and _matches(r.labels, scenario)), None)

    run = wait_until(new_run, left(), f"Aegis to start a workflow for {scenario.alertname}")
    stage, reported, answered = None, 0, set()
    while True:
        run = next(r for r in history.runs() if r.id == run.id)
        # One line per stage, in order, even for a task that came and went between two polls.
        stages = [run.stage_of(t) for t in run.tasks[reported:]] + ([run.outcome] if run.done else [])
        reported = len(run.tasks)
        for new in stages:
            if new != stage:
                stage = new
                detail = run.action if run.action and stage not in ("recorded", "gathering context", "diagnosing") else ""
                progress(f"{scenario.name}: {stage}" + (f" ({detail})" if detail else ""))
        if run.done:
            break
        ask = run.task("approve")
        if ask is not None and ask["status"] == "pending" and ask["id"] not in answered:
            answered.add(ask["id"])
            if scenario.approve:
                _answer(stack, ask["id"], {"approved": True, "reason": "on call: plan looks right"})
                progress(f"{scenario.name}: the on-call human approves the plan (aegis inquiry respond)")
        if time.monotonic() > deadline:
            result.problems.append(f"the workflow did not finish within {timeout:.0f}s (stage {stage})")
            result.run = run
            return result
        time.sleep(0.1)
    result.run = run
    if run.outcome != scenario.expect_outcome:
        result.problems.append(f"ended {run.outcome!r}, expected {scenario.expect_outcome!r}")
    if run.action != scenario.expect_action:
        result.problems.append(f"action {run.action!r}, expected {scenario.expect_action!r}")
    if run.outcome != "resolved":
        progress(f"{scenario.name}: the on-call human fixes it")
        scenario.manual_fix(stack)
    try:
        wait_until(lambda: not _am_alerts(stack, scenario, active=True), left(), f"{scenario.alertname} to resolve")
        result.alert_resolved = True
    except StackError as exc:
        result.problems.append(str(exc))
        scenario.manual_fix(stack)  # so that the next scenario starts from a healthy victim
    # Nothing else was touched: every program but the victim kept its process.
    after = stack.programs()
    for name, before in programs_before.items():
        if name != "victim" and (after[name]["pid"], after[name]["start"]) != (before["pid"], before["start"]):
            result.problems.append(f"{name} was restarted")
    return result
