"""Facts about an incident: safety predicates, what was seen, and which workload it is about.

    from facts import Facts
    facts = Facts(ctx, book)            # book: rules.RuleBook (knowledge/rules/*.yaml)
    facts.security                      # matched text of a security signal, or ''
    facts.data_volume, facts.stateful   # bools
    facts.deploy                        # DeployFact of *this* workload before the alert, or None
    facts.faults                        # [(kind, reason, matched text)]: the fault sits elsewhere
    facts.load_pressure                 # a surge or capacity/provider/abuse/cache fault pressing on it, or ''
    facts.outside_lines                 # lines an escalating signature reads as a fault outside the workload
    facts.target("restart")             # the label value the alert is about for that action
    facts.vetoes                        # {action: why a careful SRE would not take it}

Everything is read from the rule book, so an SRE changes what counts as a data volume, a
security signal or a veto by editing YAML, not Python. Targets come only from the alert's
labels; text in annotations or logs never chooses what is acted on.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from alert_context import Context, parse_time
from matchers import mountpoint_of, tokens
from rules import RuleBook

#: For each action, the labels that name what it acts on, most specific first. The scrape
#: ``job`` comes last: it names the exporter more often than the workload.
TARGET_LABELS: dict[str, tuple[str, ...]] = {
    "restart": ("deployment", "daemonset", "statefulset", "destination_workload", "service", "app",
                "app_kubernetes_io_name", "container", "pod", "unit", "process", "groupname", "name", "instance", "job"),
    "scale_up": ("deployment", "horizontalpodautoscaler", "hpa", "consumer_deployment", "destination_workload",
                 "service", "app", "app_kubernetes_io_name", "consumergroup", "consumer_group", "statefulset", "job"),
    "rollback": ("deployment", "rollout", "canary", "service", "app", "app_kubernetes_io_name", "name", "container",
                 "job"),
    "cleanup_disk": ("instance", "node", "host", "nodename", "pod"),
    "cancel_query": ("pid", "query_id", "queryid", "backend_pid", "datname", "database", "instance"),
    "clear_cache": ("cache", "cache_name", "zone", "path_prefix", "service", "app", "deployment", "instance"),
    "noop": ("deployment", "statefulset", "daemonset", "service", "app", "consumergroup", "pod", "instance", "node",
             "job"),
    "escalate": ("deployment", "statefulset", "daemonset", "consumer_deployment", "destination_workload", "service",
                 "app", "horizontalpodautoscaler", "consumergroup", "groupname", "pod", "instance", "node", "host",
                 "job"),
}

#: Label values that name monitoring infrastructure, never the thing that failed.
NOT_A_TARGET = frozenset({"node-exporter", "node", "kube-state-metrics", "kubelet", "cadvisor", "prometheus", "blackbox",
                          "blackbox-exporter", "blackbox-external", "apiserver", "kube-apiserver", "windows-exporter",
                          "postgres-exporter", "mysqld-exporter", "redis-exporter", "kafka-exporter", "audit-log",
                          "yace", "cloudwatch", "envoy-stats"})

#: Scrape jobs whose ``instance`` is the exporter's own address, not the thing alerted on.
EXPORTER_INSTANCE_JOBS = frozenset({"kube-state-metrics", "kubelet", "cadvisor", "yace", "cloudwatch", "envoy-stats"})

#: Fault kinds that put load or a limit on the workload from outside: beside one of them, a
#: resource limit the workload hits (descriptors, heap, memory) is capacity, not a leak.
PRESSURE_KINDS = frozenset({"capacity", "provider", "abuse", "cache"})

WORKLOAD_LABELS = ("deployment", "service", "app", "app_kubernetes_io_name", "container", "job", "statefulset",
                   "daemonset", "rollout", "canary", "name", "groupname")


def _infra(value: str) -> bool:
    v = value.lower()
    return v in NOT_A_TARGET or v.endswith("-exporter")


def pick_target(action: str, labels: dict[str, str]) -> str:
    """The value of the first label fitting ``action`` that is not monitoring infrastructure; '' if none."""
    exporter_instance = labels.get("job", "").lower() in EXPORTER_INSTANCE_JOBS
    for key in TARGET_LABELS.get(action, ()):
        value = labels.get(key, "").strip()
        if value and not _infra(value) and not (key == "instance" and exporter_instance):
            return value
    return ""


def workload_names(labels: dict[str, str]) -> set[str]:
    return {labels[k].lower() for k in WORKLOAD_LABELS if labels.get(k) and not _infra(labels[k])}


@dataclass
class DeployFact:
    service: str
    version: str
    minutes_before: float
    source: str = "deploys"  # "deploys" (gathered) or "annotations" (stated in the alert)


def recent_deploy(ctx: Context, window_minutes: float = 120, skew_minutes: float = 10) -> DeployFact | None:
    """The latest deploy of the alerting workload itself within the window before startsAt.

    Deploys of other services never count: "something was deployed" is not evidence.
    """
    names = workload_names(ctx.labels)
    pod = ctx.labels.get("pod", "").lower()
    best: DeployFact | None = None
    for i, dep in enumerate(ctx.deploys):
        service = str(dep.get("service", "")).lower()
        if service not in names and not (pod and pod.startswith(service + "-")):
            continue
        at = parse_time(dep.get("at"), f"deploys[{i}].at")
        minutes = (ctx.starts_at - at).total_seconds() / 60
        if -skew_minutes <= minutes <= window_minutes and (best is None or minutes < best.minutes_before):
            best = DeployFact(str(dep.get("service")), str(dep.get("version", "")), minutes)
    return best


def stated_deploy(ctx: Context, book: RuleBook, window_minutes: float = 120) -> DeployFact | None:
    """A deploy the alert's own annotations state ("4 minutes after v5.2.0 was deployed")."""
    hit = book.first("deploy_statement", ctx)
    if not hit:
        return None
    numbers = [int(n) for n in re.findall(r"(\d{1,3}) ?(?:min(?:ute)?s?|m)\b", hit[1])]
    minutes = float(numbers[0]) if numbers else 0.0
    if minutes > window_minutes:
        return None
    version = re.search(r"\bv?\d+\.\d+[\w.-]*", ctx.annotation_text)
    name = pick_target("rollback", ctx.labels)
    return DeployFact(name, version.group(0) if version else "", minutes, "annotations") if name else None


class Facts:
    """Lazily computed facts of one context under one rule book."""

    def __init__(self, ctx: Context, book: RuleBook, *, deploy_window: float = 120) -> None:
        self.ctx = ctx
        self.book = book
        self.deploy_window = deploy_window

    # ------------------------------------------------------------------ what the alert is about
    def target(self, action: str) -> str:
        return pick_target(action, self.ctx.labels)

    @functools.cached_property
    def subject(self) -> str:
        """What the alert is about, for escalations and reasoning."""
        return pick_target("escalate", self.ctx.labels)

    # ------------------------------------------------------------------ safety predicates
    @functools.cached_property
    def security(self) -> str:
        return self.book.any("security", self.ctx)

    @functools.cached_property
    def noise(self) -> str:
        hit = self.book.first("noise", self.ctx)
        if not hit:
            return ""
        labels = self.ctx.labels
        return str(hit[0].get("reason")).replace("{alertname}", self.ctx.alertname) \
            .replace("{severity}", labels.get("severity", ""))

    @functools.cached_property
    def disk_alert(self) -> bool:
        return bool(self.book.any("disk_alert", self.ctx))

    @functools.cached_property
    def disk_full_in_logs(self) -> bool:
        return bool(re.search(r"no space left on device", self.ctx.log_text, re.I))

    @functools.cached_property
    def data_volume(self) -> bool:
        hit = self.book.first("data_volume", self.ctx)
        return bool(hit and hit[0].get("result"))

    @functools.cached_property
    def mountpoint(self) -> str:
        return mountpoint_of(self.ctx.labels)

    @functools.cached_property
    def stateful(self) -> bool:
        return bool(self.book.any("stateful", self.ctx))

    @functools.cached_property
    def session_store(self) -> bool:
        return bool(self.book.any("session_store", self.ctx))

    @functools.cached_property
    def database_down(self) -> bool:
        return bool(self.book.any("database_down", self.ctx))

    @functools.cached_property
    def third_party(self) -> str:
        return self.book.any("third_party", self.ctx)

    @functools.cached_property
    def page_cache(self) -> bool:
        hit = self.book.first("page_cache", self.ctx)
        return bool(hit and hit[0].get("result"))

    @functools.cached_property
    def memory_pressure(self) -> bool:
        """A page-cache rule found real memory pressure (little MemAvailable, measured or stated)."""
        hit = self.book.first("page_cache", self.ctx)
        return bool(hit and hit[0].get("pressure"))

    @functools.cached_property
    def injection(self) -> str:
        return self.book.any("injection", self.ctx)

    @functools.cached_property
    def vetoes(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for rule, _ in self.book.matches("vetoes", self.ctx):
            out.setdefault(str(rule.get("action")), str(rule.get("reason")))
        return out

    @functools.cached_property
    def faults(self) -> list[tuple[str, str, str]]:
        """Evidence that the fault sits outside the workload: (kind, reason, matched text)."""
        return [(str(r.get("kind")), str(r.get("reason")), hit[:160]) for r, hit in self.book.matches("faults", self.ctx)]

    # ------------------------------------------------------------------ evidence about the workload
    @functools.cached_property
    def deploy(self) -> DeployFact | None:
        return recent_deploy(self.ctx, self.deploy_window) or stated_deploy(self.ctx, self.book, self.deploy_window)

    @functools.cached_property
    def regression(self) -> bool:
        return bool(self.book.any("regression", self.ctx))

    @functools.cached_property
    def signatures(self) -> list[tuple[str, str, float, bool, bool]]:
        """Matching log signatures: (action, cause, weight, names a failure of the workload itself,
        names a resource limit reached)."""
        return [(str(r.get("action")), str(r.get("cause")), float(r.get("weight")), bool(r.get("own_failure")),
                 bool(r.get("limit"))) for r, _ in self.book.matches("signatures", self.ctx)]

    @functools.cached_property
    def outside_lines(self) -> frozenset[str]:
        """Log lines and annotations that a signature reads as a fault outside the workload (an
        ``escalate`` signature that names no failure of the workload itself, e.g. an exhausted
        connection pool): a runbook signal found only in these lines is no evidence for acting
        on the workload (``scoring.signal_bonus`` ignores it)."""
        hits = [hit.lower() for r, hit in self.book.matches("signatures", self.ctx)
                if r.get("action") == "escalate" and not r.get("own_failure") and hit]
        if not hits:
            return frozenset()
        pieces = [*(str(v) for v in self.ctx.annotations.values()), *self.ctx.logs]
        return frozenset(p for p in pieces if any(h in p.lower() for h in hits))

    @functools.cached_property
    def load_surge(self) -> bool:
        ratio = self.ctx.metric("rate", "ratio")
        return bool(self.book.any("load_surge", self.ctx)) or (ratio is not None and ratio >= 1.5)

    @functools.cached_property
    def load_pressure(self) -> str:
        """What says a limit was reached by the load rather than by the workload's own state: a
        load surge, or a capacity, provider, abuse or cold-cache fault in the context ('' if none)."""
        if self.load_surge:
            return "the load surges"
        for kind, reason, line in self.faults:
            if kind in PRESSURE_KINDS:
                return f"{reason} ({line!r})"
        return ""

    @functools.cached_property
    def all_replicas(self) -> bool:
        return bool(self.book.any("all_replicas", self.ctx))

    @functools.cached_property
    def one_replica(self) -> bool:
        return bool(self.book.any("one_replica", self.ctx))

    def deploy_note(self) -> str:
        """What is known about deploys, stating only what was checked."""
        if self.deploy is not None:
            d = self.deploy
            where = "stated in the alert" if d.source == "annotations" else "recorded"
            return f"{d.service} {d.version} deployed {d.minutes_before:.0f} min before the alert ({where})".replace("  ", " ")
        status = self.ctx.gathered("deploys")
        if status == "ok":
            return "no deploy of the workload in the window before the alert"
        if status == "error":
            return "deploy data could not be gathered"
        return "no deploy data"


def is_stateful(labels: dict[str, str], book: RuleBook) -> bool:
    """Convenience for callers holding only labels (a context of just those labels)."""
    from alert_context import normalize_context

    ctx = normalize_context({"alert": {"labels": labels or {"alertname": ""}, "startsAt": "1970-01-01T00:00:00Z"}})
    return Facts(ctx, book).stateful


__all__ = ["Facts", "DeployFact", "TARGET_LABELS", "NOT_A_TARGET", "pick_target", "recent_deploy", "stated_deploy",
           "workload_names", "tokens", "is_stateful"]
