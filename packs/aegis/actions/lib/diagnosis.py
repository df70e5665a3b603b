"""Incident diagnosis: the offline diagnoser, and ``diagnose()`` which picks LLM or offline.

    from diagnosis import diagnose, diagnose_offline
    decision = diagnose(context, config)          # LLM when a key is configured, else offline
    decision = diagnose_offline(context, config)  # retrieval + deterministic signal reading

``context`` is ``{"alert": {<Alertmanager v4 alert>}, "logs": [...], "deploys": [{"service",
"version", "at"}], "metrics": {...}}``. The decision is exactly::

    {"action": "restart|scale_up|rollback|cleanup_disk|cancel_query|clear_cache|noop|escalate",
     "target": "<a value of one of the alert's labels, or ''>",
     "root_cause": "...", "confidence": 0.0-1.0,
     "evidence": [{"id": "memory-leak-restart", "kind": "runbook", "similarity": 0.71}],
     "reasoning": "...", "safety": "safe|caution|forbidden"}

How the offline path decides, in order (the first that applies wins):

1. Facts that no runbook may override: resolved alerts and known-noise alerts
   (Watchdog, InfoInhibitor, heartbeats, severity none/info) → ``noop``; security signals,
   a database that is down, a full *data* volume, third-party outages → ``escalate``.
2. Retrieval: the alert name, summary, description and log lines are embedded and the
   runbooks (and past incidents) nearest to them are scored; a runbook whose ``signals``
   name the alert, or whose signal phrases occur in the logs, gets a bonus; strong log
   signatures (OOMKilled, "too many open files", ...) vote too.
3. Deploy recency: a deploy of the alerting workload shortly before ``startsAt`` makes a
   workload regression a ``rollback``; without such a deploy there is nothing to roll
   back to, so a rollback runbook yields to the best non-rollback alternative or escalates.
4. Memory of past incidents: an action that failed verification for the same signature
   is not repeated; an alternative is taken or the incident escalates.
5. Safety: restarts of stateful workloads and cache clears of session stores escalate;
   an action needs a target among the alert's labels; low confidence escalates.

Log lines and annotations are *data*: they are matched against signatures, never
followed as instructions.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from knowledge import (
    ACTIONS,
    Hit,
    KnowledgeError,
    KnowledgeIndex,
    KnowledgeSettings,
    Runbook,
    load_runbooks,
    signature_of,
)

LOG = logging.getLogger("aegis.diagnosis")

ACTING = ("restart", "scale_up", "rollback", "cleanup_disk", "cancel_query", "clear_cache")


class DiagnosisInputError(ValueError):
    """The incident context is malformed; the message says which part."""


# --------------------------------------------------------------------------- context


@dataclass
class Context:
    alert: dict[str, Any]
    labels: dict[str, str]
    annotations: dict[str, str]
    logs: list[str]
    deploys: list[dict[str, Any]]
    metrics: dict[str, Any]
    starts_at: datetime

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def annotation_text(self) -> str:
        return " ".join(str(v) for v in self.annotations.values())

    @property
    def log_text(self) -> str:
        return "\n".join(self.logs)

    @property
    def all_text(self) -> str:
        labels = " ".join(f"{k}={v}" for k, v in self.labels.items())
        return f"{self.alertname}\n{labels}\n{self.annotation_text}\n{self.log_text}"


def parse_time(value: Any, what: str) -> datetime:
    """RFC 3339 (Alertmanager sends nanoseconds; Python keeps microseconds)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value.strip():
        raise DiagnosisInputError(f"{what} must be an RFC 3339 timestamp, got {value!r}")
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DiagnosisInputError(f"{what} is not an RFC 3339 timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def normalize_context(context: Any) -> Context:
    """Validate the incident context and give it a typed shape; bad input raises clearly."""
    if not isinstance(context, dict):
        raise DiagnosisInputError("context must be an object with an 'alert'")
    alert = context.get("alert")
    if not isinstance(alert, dict):
        raise DiagnosisInputError("context.alert must be an Alertmanager alert object")
    labels = alert.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise DiagnosisInputError("context.alert.labels must be a non-empty object")
    annotations = alert.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise DiagnosisInputError("context.alert.annotations must be an object")
    logs = context.get("logs") or []
    if not isinstance(logs, list):
        raise DiagnosisInputError("context.logs must be a list of strings")
    deploys = context.get("deploys") or []
    if not isinstance(deploys, list) or not all(isinstance(d, dict) for d in deploys):
        raise DiagnosisInputError("context.deploys must be a list of objects {service, version, at}")
    for i, dep in enumerate(deploys):
        if not dep.get("service") or not dep.get("at"):
            raise DiagnosisInputError(f"context.deploys[{i}] needs 'service' and 'at'")
    metrics = context.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise DiagnosisInputError("context.metrics must be an object")
    starts = alert.get("startsAt")
    starts_at = parse_time(starts, "alert.startsAt") if starts else datetime.now(timezone.utc)
    return Context(
        alert=alert,
        labels={str(k): str(v) for k, v in labels.items()},
        annotations={str(k): str(v) for k, v in annotations.items()},
        logs=[str(line) for line in logs][-200:],
        deploys=deploys,
        metrics=metrics,
        starts_at=starts_at,
    )


# --------------------------------------------------------------------------- targets

TARGET_LABELS: dict[str, tuple[str, ...]] = {
    "restart": ("deployment", "daemonset", "statefulset", "service", "app", "app_kubernetes_io_name",
                "container", "pod", "unit", "process", "groupname", "name", "job", "instance"),
    "scale_up": ("deployment", "horizontalpodautoscaler", "hpa", "service", "app", "app_kubernetes_io_name",
                 "consumergroup", "consumer_group", "statefulset", "job"),
    "rollback": ("deployment", "rollout", "canary", "service", "app", "app_kubernetes_io_name", "name", "container",
                 "job"),
    "cleanup_disk": ("instance", "node", "host", "nodename", "pod"),
    "cancel_query": ("pid", "query_id", "queryid", "backend_pid", "datname", "database", "instance"),
    "clear_cache": ("cache", "cache_name", "zone", "path_prefix", "service", "app", "deployment", "instance"),
    "noop": ("deployment", "service", "app", "job", "instance"),
    "escalate": ("deployment", "statefulset", "service", "app", "job", "instance", "node"),
}

# Infrastructure labels whose values are not the thing that failed.
_NOT_A_TARGET = {"node-exporter", "kube-state-metrics", "kubelet", "cadvisor", "prometheus", "blackbox"}


def pick_target(action: str, labels: dict[str, str]) -> str:
    """The value of the first label fitting ``action``; '' if none. Only labels count."""
    for key in TARGET_LABELS.get(action, ()):
        value = labels.get(key, "").strip()
        if value and value.lower() not in _NOT_A_TARGET:
            return value
    return ""


# --------------------------------------------------------------------------- facts

_NOISE_NAMES = {"watchdog", "deadmansswitch", "deadmanssnitch", "infoinhibitor", "heartbeat", "alwaysfiring"}
_SECURITY = re.compile(
    r"(unknown|unexpected|suspicious|unauthori[sz]ed|unsigned)[ _-]?(process|binary|executable|login|access|"
    r"ssh|outbound|connection|container|user|api)"
    r"|crypto ?min|coin ?min|xmrig|kinsing|brute[ _-]?force|(login|auth(entication)?)[ _-]?(burst|spike|storm|failures)"
    r"|failed password for|invalid user \w+ from|privilege[ _-]?escalation|reverse shell|falco|intrusion|malware"
    r"|rootkit|/etc/shadow|new (admin|root) (user|account)|security[ _-]?(incident|alert|breach)|exfiltrat"
    r"|SuspiciousProcess|UnknownProcess|LoginBurst|SSHBruteForce|ThreatDetected"
    # binaries run from hidden temp dirs are a classic foothold; kdevtmpfsi/kinsing are known miners
    r"|(/tmp|/var/tmp|/dev/shm)/\.[\w.-]+/?\w*|kdevtmpfsi|stratum\+tcp|webshell",
    re.IGNORECASE,
)
_DATA_MOUNT = re.compile(
    r"^/(mnt|srv|export)(/|$)|(^|/)(data|pgdata|datadir|db)(/|$)"
    r"|postgres|pgsql|mysql|mariadb|mongo|kafka|zookeeper|etcd|elasticsearch|opensearch|redis|cassandra|clickhouse"
    r"|rabbitmq|minio|prometheus|influxdb|docker/volumes"
    r"|kubernetes\.io~(csi|aws-ebs|gce-pd|azure-disk|nfs|local-volume)|/pvc-|/volumes/|pg_wal|pg_xlog|wal",
    re.IGNORECASE,
)
_DISK_ALERT = re.compile(r"disk|filesystem|inode|volume|storage|space|df\b", re.IGNORECASE)
_DATA_WORDS = re.compile(
    r"persistent ?volume|\bpvc\b|data (volume|directory|dir|disk)|datadir|database (volume|files|disk)|pg_wal|"
    r"write-ahead log|tablespace|kafka log segments|etcd data",
    re.IGNORECASE,
)
_DB_NAMES = {"postgres", "postgresql", "pg", "mysql", "mariadb", "mongo", "mongodb", "etcd", "kafka", "zookeeper",
             "elasticsearch", "opensearch", "cassandra", "clickhouse", "rabbitmq", "redis", "patroni", "consul",
             "vault", "minio", "db", "database", "memcached", "valkey"}
_STATELESS_TOKENS = {"consumer", "consumers", "worker", "workers", "exporter", "client", "producer", "proxy",
                     "bouncer", "pgbouncer", "connect", "ui", "operator", "api", "web", "frontend", "gateway"}
_DOWN = re.compile(r"(down|unavailable|unreachable|notup|not[ _-]?running|absent|no ?leader|offline|failover)$|"
                   r"is down|has gone away|database system is shut ?down|the database system is in recovery mode|"
                   r"could not connect to (server|database)|connection refused.*(5432|3306|27017)",
                   re.IGNORECASE)
_THIRD_PARTY = re.compile(
    r"third[ -]?party|3rd[ -]?party|external (api|provider|dependency|service|vendor)|vendor (api|outage|status)|"
    r"payment provider|status ?page|\b(stripe|twilio|sendgrid|paypal|braintree|adyen|mailgun|okta|auth0|"
    r"github api|slack api|pagerduty api|cloudflare)\b",
    re.IGNORECASE,
)
_REGRESSION = re.compile(
    r"error|5xx|\b50[0-4]\b|exception|panic|fatal|crash|backoff|oom|memory|heap|latenc|slow|p99|p95|restart|probe|"
    r"not ?ready|unhealthy|pull|image|canary|rollout|release|slo|budget|cpu|timeout|timed out|segfault|traceback|"
    r"replicas ?mismatch|unavailable",
    re.IGNORECASE,
)
_SESSION = re.compile(r"session", re.IGNORECASE)
_PAGE_CACHE = re.compile(r"page ?cache|buff(/|ers)?[ /]?cache|cached memory|reclaimable|inactive_file",
                         re.IGNORECASE)
_LOAD_SURGE = re.compile(
    r"(traffic|request rate|query rate|requests|rps|qps|load)[^.;]{0,40}?(doubled|tripled|quadrupled|\d+(\.\d+)?x\b|"
    r"\+\d{2,}%|spiked|surge)|(\d+(\.\d+)?x|doubled|tripled) (normal|usual|the usual)|campaign|flash sale|peak traffic",
    re.IGNORECASE)
_ALL_REPLICAS = re.compile(r"(all|every|each)( \w+)? (replicas?|pods?|instances|workers)|across (all|\d+/\d+)|"
                           r"\b(\d+)/\3 replicas", re.IGNORECASE)
_ONE_REPLICA = re.compile(r"one of \d+ (replicas|pods|instances)|(single|only one|one) (pod|replica|instance)\b|"
                          r"other (replicas|pods|instances)( are| look)? (fine|healthy|normal|idle)|siblings",
                          re.IGNORECASE)
_HPA_MAXED = re.compile(r"at (its )?max(imum)? ?replicas|maxReplicas[^.]{0,30}reached|ScalingLimited|"
                        r"more than the maximum replica count|\b(\d+)/\2 replicas \(max", re.IGNORECASE)
_CRASHLOOP = re.compile(r"CrashLoopBackOff|crash ?loop", re.IGNORECASE)
_REPEATED = re.compile(r"(OOMKilled|killed|restarted|restarts?|crashed)\D{0,12}(\d+) times", re.IGNORECASE)
# Sessions an SRE never cancels: maintenance, backups, schema changes, replication.
_PROTECTED_SESSION = re.compile(
    r"autovacuum|wraparound|pg_dump|pg_basebackup|pgbackrest|wal-g|barman|usename=backup|\bbackup@|"
    r"(role|user|usename)[ =']+backup|ALTER TABLE|CREATE (UNIQUE )?INDEX|REINDEX|VACUUM FULL|CLUSTER |migrat|"
    r"alembic|flyway|liquibase|walsender|replication",
    re.IGNORECASE)


@dataclass(frozen=True)
class LogSignature:
    pattern: re.Pattern[str]
    action: str
    cause: str
    weight: float = 0.25


def _sig(regex: str, action: str, cause: str, weight: float = 0.25) -> LogSignature:
    return LogSignature(re.compile(regex, re.IGNORECASE), action, cause, weight)


# Signatures an SRE recognises on sight. They vote; they do not decide alone.
LOG_SIGNATURES: tuple[LogSignature, ...] = (
    _sig(r"OOMKilled|out of memory: kill(ed)? process|memory cgroup out of memory|exit code 137", "restart",
         "the container was OOM-killed"),
    _sig(r"java\.lang\.OutOfMemoryError|GC overhead limit exceeded|heap out of memory|JavaScript heap", "restart",
         "the heap is exhausted"),
    _sig(r"too many open files|EMFILE|\(24: too many open files\)", "restart", "file descriptors are exhausted"),
    _sig(r"Found one Java-level deadlock|all goroutines are asleep - deadlock|waiting to lock <0x", "restart",
         "threads are deadlocked"),
    _sig(r"canceling statement due to statement timeout|long[- ]running (query|transaction)|"
         r"query (has been )?running for|pg_stat_activity", "cancel_query", "a long-running query"),
    _sig(r"idle in transaction", "cancel_query", "a session idle in transaction holds locks"),
    _sig(r"lock wait timeout|waiting for (Share|Exclusive|RowExclusive|AccessExclusive)\w* ?Lock|"
         r"still waiting for \w*lock|blocked by process \d+", "cancel_query", "lock waits behind a blocking query"),
    _sig(r"ImagePullBackOff|ErrImagePull|Failed to pull image|manifest unknown", "rollback",
         "the new image cannot be pulled", 0.2),
    _sig(r"No space left on device|ENOSPC", "cleanup_disk", "the filesystem is full", 0.2),
    _sig(r"remaining connection slots are reserved|too many (clients|connections)|"
         r"connection pool exhausted|Connection is not available, request timed out", "escalate",
         "connection pool or database connection slots exhausted", 0.1),
    _sig(r"worker lost|WorkerLostError|missed heartbeat from|no active consumers", "restart", "workers died"),
    _sig(r"x509: certificate (has expired|is not yet valid)|certificate verify failed|SSL certificate problem",
         "escalate", "a TLS certificate problem", 0.3),
    _sig(r"no such host|SERVFAIL|NXDOMAIN|i/o timeout.*:53\b", "escalate", "DNS resolution failing", 0.3),
    _sig(r"\b(nightly|weekly|scheduled|cron ?job|batch window|maintenance window|planned maintenance)\b", "noop",
         "expected load from a scheduled job or maintenance", 0.2),
)


def _tokens(value: str) -> set[str]:
    return {t for t in re.split(r"[^a-z0-9]+", value.lower()) if t}


def is_stateful(labels: dict[str, str]) -> bool:
    """Databases, brokers and other stateful workloads: never restarted automatically."""
    if labels.get("statefulset"):
        return True
    for key in ("deployment", "service", "app", "app_kubernetes_io_name", "container", "job", "pod"):
        toks = _tokens(labels.get(key, ""))
        if toks & _DB_NAMES and not toks & _STATELESS_TOKENS:
            return True
    return False


def workload_names(labels: dict[str, str]) -> set[str]:
    names = set()
    for key in ("deployment", "service", "app", "app_kubernetes_io_name", "container", "job", "statefulset",
                "daemonset", "rollout", "canary", "name", "groupname"):
        if labels.get(key):
            names.add(labels[key].lower())
    return names


@dataclass
class DeployFact:
    service: str
    version: str
    minutes_before: float


def recent_deploy(ctx: Context, window_minutes: float = 120, skew_minutes: float = 10) -> DeployFact | None:
    """The latest deploy of the alerting workload within the window before startsAt."""
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


def mountpoint_of(labels: dict[str, str]) -> str:
    for key in ("mountpoint", "mount", "mount_point", "path", "volume", "persistentvolumeclaim", "device"):
        if labels.get(key):
            return labels[key]
    return ""


def is_data_volume(ctx: Context) -> bool:
    """A disk alert about a volume that holds data (never cleaned automatically)."""
    if ctx.labels.get("persistentvolumeclaim") or ctx.labels.get("persistentvolume"):
        return True
    mount = mountpoint_of(ctx.labels)
    if mount and _DATA_MOUNT.search(mount):
        return True
    if mount in ("/", "/var/log", "/tmp", "/var/tmp", "/var/lib/docker", "/var/lib/containerd"):
        return False
    if _tokens(ctx.alertname) & _DB_NAMES or re.search(r"postgres|mysql|mongo|elasticsearch|kafka|etcd|redis",
                                                        ctx.alertname, re.I):
        return True  # a datastore's own disk alert is about its data
    return bool(_DATA_WORDS.search(ctx.alertname + " " + ctx.annotation_text))


def is_disk_alert(ctx: Context) -> bool:
    return bool(_DISK_ALERT.search(ctx.alertname)) or bool(mountpoint_of(ctx.labels) and "mountpoint" in ctx.labels)


def is_noise(ctx: Context) -> str:
    """Why the alert needs no action ('' if it does)."""
    name = ctx.alertname.lower()
    if ctx.alert.get("status") == "resolved":
        return "the alert has already resolved"
    if name in _NOISE_NAMES or re.fullmatch(r"(heartbeat|watchdog|deadmans?switch)[\w-]*", name):
        return f"{ctx.alertname} is a pipeline heartbeat/inhibitor alert that fires by design"
    if ctx.labels.get("severity", "").lower() in {"none", "info"}:
        return f"severity {ctx.labels['severity']} is informational"
    return ""


def security_signal(ctx: Context) -> str:
    for text in (ctx.alertname, " ".join(ctx.labels.values()), ctx.annotation_text, ctx.log_text):
        match = _SECURITY.search(text)
        if match:
            return match.group(0)
    if ctx.labels.get("category", "").lower() == "security" or ctx.labels.get("team", "").lower() == "security":
        return "security-labelled alert"
    return ""


def database_down(ctx: Context) -> bool:
    subject = " ".join([ctx.alertname, *ctx.labels.values()])
    if not (_tokens(subject) & _DB_NAMES or re.search(r"postgres|mysql|mongo|redis|etcd|kafka", subject, re.I)):
        return False
    return bool(_DOWN.search(ctx.alertname) or _DOWN.search(ctx.annotation_text))


def _metric(ctx: Context, *fragments: str) -> float | None:
    """The first numeric metric sample whose name contains all ``fragments`` (case-insensitive)."""
    for key, value in ctx.metrics.items():
        if all(f in key.lower() for f in fragments) and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def page_cache_memory(ctx: Context) -> bool:
    """A node "memory" alert that is really reclaimable page cache."""
    if not re.search(r"mem", ctx.alertname, re.I) or ctx.labels.get("pod") or ctx.labels.get("container"):
        return False
    available = _metric(ctx, "available", "ratio")
    if available is not None:
        return available >= 0.2  # real pressure shows as little *available* memory
    return bool(_PAGE_CACHE.search(ctx.annotation_text)) and not re.search(r"oom", ctx.all_text, re.I)


def vetoes(ctx: Context) -> dict[str, str]:
    """Actions a careful SRE would not take here, whatever the runbook ranking says."""
    text = ctx.alertname + "\n" + ctx.annotation_text + "\n" + ctx.log_text
    out: dict[str, str] = {}
    hpa_now, hpa_max = _metric(ctx, "hpa", "current"), _metric(ctx, "hpa", "max")
    if _HPA_MAXED.search(text) or (hpa_now is not None and hpa_max is not None and hpa_now >= hpa_max):
        out["scale_up"] = "the autoscaler is already at its maximum; raising it is a capacity decision"
    members, partitions = _metric(ctx, "member"), _metric(ctx, "partitions")
    if ctx.labels.get("partition"):
        out["scale_up"] = "the lag is on one partition: more consumers cannot help (poison message or hot key)"
    elif members is not None and partitions is not None and members >= partitions:
        out["scale_up"] = "the group already has one consumer per partition: more cannot help"
    elif re.search(r"(\d+) members for \1 partitions", text):
        out["scale_up"] = "the group already has one consumer per partition: more cannot help"
    restarts = _metric(ctx, "restart")
    repeated = max((int(m.group(2)) for m in _REPEATED.finditer(text)), default=0)
    if _CRASHLOOP.search(text + " ".join(ctx.labels.values())) or repeated >= 3 or (restarts or 0) >= 3:
        out["restart"] = "it is already restarting repeatedly; another restart changes nothing"
    if _PROTECTED_SESSION.search(text):
        out["cancel_query"] = "the session is maintenance, a backup, a migration or replication: never cancelled blindly"
    if _ONE_REPLICA.search(ctx.annotation_text):
        out.setdefault("scale_up", "only one replica is affected: more replicas do not fix it")
    return out


# --------------------------------------------------------------------------- retrieval


@functools.lru_cache(maxsize=8)
def _runbooks_cached(directory: str, fingerprint: str) -> tuple[Runbook, ...]:
    return tuple(load_runbooks(directory))


def runbooks_for(settings: KnowledgeSettings) -> dict[str, Runbook]:
    if settings.runbooks_dir is None:
        return {}
    index = KnowledgeIndex(settings)
    books = _runbooks_cached(str(settings.runbooks_dir), index._runbook_fingerprint())
    return {b.id: b for b in books}


def retrieval_query(ctx: Context, max_chars: int = 480) -> str:
    """Alert name + summary/description first, then a few distinct log lines.

    Kept short on purpose: the encoder's cost grows with the token count (a 256-token
    query costs ~10x a 40-token one) and the first sentences carry the signal. Signal
    phrases deeper in the logs are matched exactly by ``_signal_bonus`` instead.
    """
    parts = [ctx.alertname]
    for key in ("summary", "description", "message"):
        if ctx.annotations.get(key):
            parts.append(ctx.annotations[key][:240])
    seen: set[str] = set()
    for line in ctx.logs[-10:]:
        short = re.sub(r"\d+", "#", line)[:120]
        if short not in seen and len(seen) < 3:
            seen.add(short)
            parts.append(re.sub(r"\s+", " ", line)[:120])
    return "\n".join(parts)[:max_chars]


def _signal_bonus(book: Runbook, ctx: Context, name_share: int = 1) -> tuple[float, list[str]]:
    """Bonus for runbook signals present in the alert: its name exactly, or phrases in text.

    An alert name listed by several runbooks discriminates less, so its bonus is shared.
    """
    bonus = 0.0
    matched: list[str] = []
    name = ctx.alertname.lower()
    text = (ctx.annotation_text + "\n" + ctx.log_text).lower()
    for signal in book.signals:
        s = signal.lower()
        if s == name:
            bonus += 0.3 / max(1, name_share) ** 0.5
            matched.append(signal)
        elif len(s) >= 6 and (" " in s or not s.isalnum()) and s in text:
            bonus += 0.12
            matched.append(signal)
        elif len(s) >= 6 and s in text:
            bonus += 0.06
            matched.append(signal)
    return min(bonus, 0.5), matched


@dataclass
class Candidate:
    action: str
    score: float
    runbook: Runbook | None
    similarity: float
    matched: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- decision


def _decision(action: str, target: str, root_cause: str, confidence: float, evidence: list[dict[str, Any]],
              reasoning: str, safety: str) -> dict[str, Any]:
    return {
        "action": action,
        "target": target,
        "root_cause": root_cause,
        "confidence": round(max(0.0, min(1.0, confidence)), 3),
        "evidence": evidence,
        "reasoning": reasoning,
        "safety": safety,
    }


def _evidence(hits: list[Hit], limit: int = 5) -> list[dict[str, Any]]:
    return [{"id": h.id, "kind": h.kind, "similarity": round(float(h.score), 3)} for h in hits[:limit]]


def _search(settings: KnowledgeSettings, text: str, k: int) -> list[Hit]:
    from knowledge_service import search as service_search

    hits, _ = service_search(settings, text, k)
    return hits


OFFLINE_HITS = 48  # the offline diagnoser weighs many runbooks; the LLM prompt gets the best few
LLM_HITS = 8


def _retrieve(settings: KnowledgeSettings, ctx: Context) -> list[Hit]:
    """Runbooks and incidents for this context; none (and a warning) when retrieval is down."""
    try:
        return _search(settings, retrieval_query(ctx), k=OFFLINE_HITS)
    except KnowledgeError as exc:
        LOG.warning("retrieval unavailable, deciding on signals alone: %s", exc)
        return []


def diagnose_offline(
    context: dict[str, Any] | Context,
    config: dict[str, Any] | None = None,
    *,
    settings: KnowledgeSettings | None = None,
    hits: list[Hit] | None = None,
) -> dict[str, Any]:
    """Decide from retrieval and deterministic signal reading; never calls the network
    except the local knowledge service. Pass ``hits`` to skip the search (tests, LLM path)."""
    ctx = context if isinstance(context, Context) else normalize_context(context)
    settings = settings or KnowledgeSettings.from_config(config)
    diag_cfg = dict((config or {}).get("diagnosis") or {})
    window = float(diag_cfg.get("deploy_window_minutes", 120))
    labels = ctx.labels
    esc_target = pick_target("escalate", labels)

    # 1. facts no runbook may override
    noise = is_noise(ctx)
    security = security_signal(ctx)
    if security:
        return _decision("escalate", esc_target, f"possible security incident ({security})", 0.95, [],
                         "Security signals are never remediated automatically; a human must investigate.",
                         "forbidden")
    if noise:
        return _decision("noop", pick_target("noop", labels), noise, 0.9, [],
                         "Nothing is broken that an action could fix.", "safe")

    if hits is None:
        hits = _retrieve(settings, ctx)
    try:
        books = runbooks_for(settings)
    except KnowledgeError as exc:
        LOG.warning("runbooks unavailable: %s", exc)
        books = {}
    runbook_hits = [h for h in hits if h.kind == "runbook"]
    evidence = _evidence(runbook_hits)

    if is_disk_alert(ctx) or re.search(r"no space left on device", ctx.log_text, re.I):
        if is_data_volume(ctx):
            return _decision(
                "escalate", esc_target,
                f"data volume {mountpoint_of(labels) or ''} is filling up".replace("  ", " "),
                0.9, evidence,
                "A data volume (database, broker or persistent volume) is never cleaned automatically: "
                "deleting its files loses data. Grow the volume or free space by hand.", "forbidden")
    if database_down(ctx):
        return _decision("escalate", esc_target, "a database is down or unreachable", 0.9, evidence,
                         "Database outages need a human (failover, recovery); no automated action is safe.",
                         "forbidden")
    if _THIRD_PARTY.search(ctx.alertname + " " + ctx.annotation_text):
        return _decision("escalate", esc_target, "an external provider is failing", 0.8, evidence,
                         "Restarting or rolling back our services does not fix a third-party outage.", "caution")
    if page_cache_memory(ctx):
        return _decision("noop", pick_target("noop", labels), "memory is reclaimable page cache", 0.8, evidence,
                         "Page cache is freed on demand; the node is not under memory pressure.", "safe")

    # 2. retrieval + signal votes
    sim_by_id = {h.id: float(h.score) for h in runbook_hits}
    candidates: list[Candidate] = []
    name_share = sum(1 for b in books.values() if ctx.alertname.lower() in {x.lower() for x in b.signals})
    for book in books.values():
        sim = sim_by_id.get(book.id, 0.0)
        bonus, matched = _signal_bonus(book, ctx, name_share)
        if book.services and not workload_names(labels) & {s.lower() for s in book.services}:
            bonus -= 0.2  # a service-specific runbook about another service
        candidates.append(Candidate(book.action, sim + bonus, book, sim, matched))
    if not books:  # no runbook metadata: use the hits as they are
        for h in runbook_hits:
            candidates.append(Candidate(h.action, float(h.score), None, float(h.score)))
    votes: dict[str, float] = {}
    causes: dict[str, str] = {}
    for sig in LOG_SIGNATURES:
        if sig.pattern.search(ctx.log_text) or sig.pattern.search(ctx.annotation_text):
            votes[sig.action] = votes.get(sig.action, 0.0) + sig.weight
            causes.setdefault(sig.action, sig.cause)
    surge_text = ctx.annotation_text + "\n" + ctx.log_text
    rate_ratio = _metric(ctx, "rate", "ratio")
    if _LOAD_SURGE.search(surge_text) or (rate_ratio is not None and rate_ratio >= 1.5):
        votes["scale_up"] = votes.get("scale_up", 0.0) + (0.4 if _ALL_REPLICAS.search(surge_text) else 0.25)
        causes.setdefault("scale_up", "more traffic than the current replicas can serve")
    if _ONE_REPLICA.search(ctx.annotation_text):
        votes["restart"] = votes.get("restart", 0.0) + 0.15
    for h in hits:  # similar past incidents that worked
        if h.kind == "incident" and h.outcome == "resolved" and h.score >= 0.6:
            votes[h.action] = votes.get(h.action, 0.0) + 0.1
    signature = signature_of(ctx.alert)
    index = KnowledgeIndex(settings)
    failed = index.failed_actions(signature)
    worked = index.resolved_actions(signature)
    for act, count in worked.items():
        votes[act] = votes.get(act, 0.0) + min(0.15 * count, 0.3)

    def action_score(cands: list[Candidate]) -> dict[str, tuple[float, Candidate | None]]:
        best: dict[str, tuple[float, Candidate | None]] = {}
        for c in cands:
            if c.action not in best or c.score > best[c.action][0]:
                best[c.action] = (c.score, c)
        for act, vote in votes.items():
            score, cand = best.get(act, (0.0, None))
            best[act] = (score + vote, cand)
        return best

    deploy = recent_deploy(ctx, window_minutes=window)
    regression = bool(_REGRESSION.search(ctx.alertname + " " + ctx.annotation_text + " " + ctx.log_text))
    scores = action_score(candidates)
    ranked = sorted(scores.items(), key=lambda kv: kv[1][0], reverse=True)
    notes: list[str] = []

    # 3. deploy recency
    if deploy is not None and regression and ranked and ranked[0][0] in {"restart", "rollback", "scale_up", "escalate"}:
        top_cand = ranked[0][1][1]
        wants_human = top_cand is not None and top_cand.runbook is not None and top_cand.action == "escalate" \
            and not re.search(r"deploy|release|rollout|crash", top_cand.runbook.title + " ".join(top_cand.runbook.signals), re.I)
        if not wants_human and "rollback" not in failed:
            rb = next((c for c in sorted(candidates, key=lambda c: c.score, reverse=True) if c.action == "rollback"), None)
            conf = 0.85 if deploy.minutes_before <= 60 else 0.7
            target = pick_target("rollback", labels)
            rid = rb.runbook.id if rb and rb.runbook else ""
            ev = ([{"id": rid, "kind": "runbook", "similarity": round(rb.similarity, 3)}] if rid else []) + \
                [e for e in evidence if e["id"] != rid][:4]
            return _finish(
                "rollback", target, f"regression introduced by the deploy of {deploy.service} {deploy.version} "
                f"{deploy.minutes_before:.0f} min before the alert", conf, ev,
                f"{deploy.service} {deploy.version} was deployed {deploy.minutes_before:.0f} min before "
                f"{ctx.alertname} started; the symptoms are a workload regression, so the release is the prime suspect.",
                "safe", labels, esc_target)
    if deploy is None:
        # nothing to roll back to: rollback runbooks give way to the alternatives
        if ranked and ranked[0][0] == "rollback":
            notes.append("no deploy of the workload shortly before the alert, so not a rollback")
        ranked = [(a, s) for a, s in ranked if a != "rollback"]
    else:
        notes.append(f"{deploy.service} was deployed {deploy.minutes_before:.0f} min before the alert")

    # vetoes: actions that cannot help here, whatever the ranking says
    vetoed = vetoes(ctx)
    if ranked and ranked[0][0] in vetoed:
        act, (score, cand) = ranked[0]
        book = cand.runbook if cand else None
        return _decision("escalate", esc_target, causes.get(act) or (book.title if book else ctx.alertname),
                         0.75, evidence, f"the best match suggests {act}, but {vetoed[act]}.", "caution")

    # 4. negative evidence from memory
    for act, count in failed.items():
        if any(a == act for a, _ in ranked):
            notes.append(f"{act} already failed verification {count}x for {signature}")
        ranked = [(a, s) for a, s in ranked if a != act]

    if not ranked:
        return _decision("escalate", esc_target, "no runbook or signal explains the alert", 0.4, evidence,
                         "; ".join(notes) or "Nothing known matches this alert; a human should look.", "caution")
    action, (score, cand) = ranked[0]
    second = ranked[1][1][0] if len(ranked) > 1 else 0.0
    book = cand.runbook if cand else None
    # 2 parts: absolute fit of the best runbook (cosine + signal bonus) and its margin
    confidence = min(0.95, 0.3 + 0.6 * min(max(score - 0.3, 0.0), 0.6) / 0.6 + min(score - second, 0.3))
    if failed:
        confidence -= 0.1
    root_cause = causes.get(action) or (book.title if book else f"matches past incidents resolved by {action}")
    reasons = []
    if book:
        matched = f" (signals: {', '.join(cand.matched[:4])})" if cand and cand.matched else ""
        reasons.append(f"runbook {book.id} recommends {book.action}{matched}")
    if action in causes:
        reasons.append(f"logs show {causes[action]}")
    if action in worked:
        reasons.append(f"{action} resolved {signature} before")
    reasons.extend(notes)
    safety = book.safety if book else ("caution" if action in ACTING else "safe")
    ev = evidence
    if book and book.id not in {e["id"] for e in ev}:
        ev = [{"id": book.id, "kind": "runbook", "similarity": round(cand.similarity, 3)}, *ev][:5]
    ev = ev + [{"id": h.id, "kind": "incident", "similarity": round(float(h.score), 3)}
               for h in hits if h.kind == "incident"][:3]
    return _finish(action, pick_target(action, labels), root_cause, confidence, ev,
                   "; ".join(reasons) + ".", safety, labels, esc_target)


def _finish(action: str, target: str, root_cause: str, confidence: float, evidence: list[dict[str, Any]],
            reasoning: str, safety: str, labels: dict[str, str], esc_target: str) -> dict[str, Any]:
    """Last safety checks of the offline path (the guardrails re-check them for both paths)."""
    if action == "restart" and is_stateful(labels):
        return _decision("escalate", esc_target, root_cause, max(confidence, 0.6), evidence,
                         reasoning + " But the workload is stateful (database/broker): restarts need a human.",
                         "caution")
    if action == "clear_cache" and _SESSION.search(" ".join(labels.values())):
        return _decision("escalate", esc_target, root_cause, max(confidence, 0.6), evidence,
                         reasoning + " But the cache is a session store: clearing it logs every user out.",
                         "caution")
    if action in ACTING and not target:
        return _decision("escalate", esc_target, root_cause, confidence, evidence,
                         reasoning + f" But no alert label names what to {action}.", "caution")
    if action not in ACTING:
        target = esc_target if action == "escalate" else pick_target("noop", labels)
    return _decision(action, target, root_cause, confidence, evidence, reasoning, safety)


# --------------------------------------------------------------------------- entry point


def _cross_check_injection(decision: dict[str, Any], ctx: Context, config: dict[str, Any] | None,
                           settings: KnowledgeSettings, hits: list[Hit]) -> dict[str, Any]:
    """When logs/annotations contain instruction-like text, an LLM's acting decision must
    agree with the offline reading of the same context; otherwise a human decides."""
    from guardrails import injection_suspected

    if decision.get("action") not in ACTING or not injection_suspected(ctx):
        return decision
    offline = diagnose_offline(ctx, config, settings=settings, hits=hits)
    if offline["action"] == decision["action"]:
        return decision
    return {**decision, "action": "escalate", "safety": "caution",
            "reasoning": f"guardrail: the context contains instruction-like text and the model's "
                         f"{decision['action']} disagrees with the offline reading ({offline['action']}). "
                         + str(decision.get("reasoning", ""))}


def llm_configured(config: dict[str, Any] | None) -> bool:
    section = dict((config or {}).get("anthropic") or {})
    key = section.get("api_key") or os.environ.get("ANTHROPIC_API_KEY")
    return bool(key and "{{" not in str(key))


def diagnose(
    context: dict[str, Any],
    config: dict[str, Any] | None = None,
    *,
    offline: bool = False,
    settings: KnowledgeSettings | None = None,
) -> dict[str, Any]:
    """The full diagnosis: LLM when configured (falling back to offline), then guardrails."""
    from guardrails import apply_guardrails

    started = time.perf_counter()
    ctx = normalize_context(context)
    settings = settings or KnowledgeSettings.from_config(config)
    path = "offline"
    if offline or not llm_configured(config):
        decision = diagnose_offline(ctx, config, settings=settings)
    else:
        from llm import LLMError, diagnose_llm

        # One search serves both: the prompt's top hits, and the offline fallback's.
        hits = _retrieve(settings, ctx)
        try:
            decision = diagnose_llm(ctx, config, hits=hits[:LLM_HITS], settings=settings)
            path = "llm"
            decision = _cross_check_injection(decision, ctx, config, settings, hits)
        except LLMError as exc:
            LOG.warning("LLM diagnosis unusable, falling back to offline: %s", exc)
            decision = diagnose_offline(ctx, config, settings=settings, hits=hits)
            decision["reasoning"] = f"[LLM unusable: {exc}] " + decision["reasoning"]
    decision = apply_guardrails(decision, ctx, config, settings=settings)
    LOG.info("diagnosis %s via %s in %.1f ms", decision["action"], path, (time.perf_counter() - started) * 1000)
    return decision


__all__ = [
    "ACTIONS", "Context", "DiagnosisInputError", "diagnose", "diagnose_offline", "normalize_context",
    "pick_target", "recent_deploy", "retrieval_query", "is_stateful", "is_data_volume", "security_signal",
]
