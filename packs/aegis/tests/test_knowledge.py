"""Runbook parsing, the persisted FAISS index (incremental, atomic, concurrent) and retrieval quality.

Run in the pack venv: PYTHONPATH=st2lite/pack_env:packs/aegis/actions/lib .venvs/aegis/bin/python -m pytest packs/aegis/tests
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import pytest
from _diag_fixtures import RUNBOOKS, shared_index_config

from knowledge import (
    ACTIONS,
    KnowledgeIndex,
    KnowledgeSettings,
    RunbookError,
    load_runbooks,
    parse_runbook,
    signature_of,
)

GOOD = """---
id: {id}
title: {title}
signals: [{signals}]
action: {action}
safety: safe
verify: {verify}
escalate_when: it happens twice in an hour
---
## Symptoms
{symptoms}
## Remediation
Do the thing.
"""


def write_runbook(directory: Path, rb_id: str, title: str, signals: str, action: str, symptoms: str,
                  verify: str = "the alert resolves") -> Path:
    path = directory / f"{rb_id}.md"
    path.write_text(GOOD.format(id=rb_id, title=title, signals=signals, action=action, symptoms=symptoms,
                                verify=verify))
    return path


# --------------------------------------------------------------------------- parsing


def test_repository_runbooks_parse_and_cover_the_catalogue():
    books = load_runbooks(RUNBOOKS)
    assert len(books) >= 30
    assert {b.action for b in books} == set(ACTIONS)
    for book in books:
        assert book.signals and book.verify and book.escalate_when, book.id


@pytest.mark.parametrize(
    ("front", "field"),
    [
        ("title: t\nsignals: [a]\naction: restart\nsafety: safe\nverify: v\nescalate_when: e", "'id'"),
        ("id: rb\ntitle: t\nsignals: [a]\naction: reboot\nsafety: safe\nverify: v\nescalate_when: e", "'action'"),
        ("id: rb\ntitle: t\nsignals: [a]\naction: restart\nsafety: yolo\nverify: v\nescalate_when: e", "'safety'"),
        ("id: rb\ntitle: t\nsignals: []\naction: restart\nsafety: safe\nverify: v\nescalate_when: e", "'signals'"),
        ("id: rb\ntitle: t\nsignals: a\naction: restart\nsafety: safe\nverify: v\nescalate_when: e", "'signals'"),
        ("id: other\ntitle: t\nsignals: [a]\naction: restart\nsafety: safe\nverify: v\nescalate_when: e", "'id'"),
        ("id: rb\ntitle: t\nsignals: [a]\naction: restart\nsafety: safe\nescalate_when: e", "'verify'"),
    ],
)
def test_invalid_front_matter_names_file_and_field(tmp_path, front, field):
    path = tmp_path / "rb.md"
    path.write_text(f"---\n{front}\n---\n## Symptoms\nx\n")
    with pytest.raises(RunbookError) as err:
        parse_runbook(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_missing_front_matter_and_bad_yaml(tmp_path):
    (tmp_path / "a.md").write_text("# just markdown\n")
    with pytest.raises(RunbookError, match="no YAML front matter"):
        parse_runbook(tmp_path / "a.md")
    (tmp_path / "b.md").write_text("---\nid: [unclosed\n---\n")
    with pytest.raises(RunbookError, match="not valid YAML"):
        parse_runbook(tmp_path / "b.md")


def test_signature_ignores_pods_and_instances():
    a = {"labels": {"alertname": "KubePodCrashLooping", "deployment": "api", "pod": "api-1"}}
    b = {"labels": {"alertname": "KubePodCrashLooping", "deployment": "api", "pod": "api-2"}}
    assert signature_of(a) == signature_of(b) == "KubePodCrashLooping|api"


# --------------------------------------------------------------------------- index lifecycle


@pytest.fixture
def small_kb(tmp_path):
    books = tmp_path / "runbooks"
    books.mkdir()
    write_runbook(books, "oom", "Out of memory kills", "KubePodOOMKilled, OOMKilled", "restart",
                  "The container is killed by the kernel OOM killer when it exceeds its memory limit.")
    write_runbook(books, "disk", "Log partition full", "NodeFilesystemAlmostOutOfSpace", "cleanup_disk",
                  "The /var/log filesystem fills with rotated application logs.")
    write_runbook(books, "slowq", "Slow SQL", "PostgresLongRunningQuery", "cancel_query",
                  "A single query has been running for hours and holds locks.")
    settings = KnowledgeSettings.from_config({"knowledge": {"runbooks_dir": str(books),
                                                            "index_dir": str(tmp_path / "index")}})
    return books, settings


def test_build_writes_manifest_and_is_incremental(small_kb):
    books, settings = small_kb
    index = KnowledgeIndex(settings)
    first = index.update()
    assert (first["count"], first["embedded"], first["reused"]) == (3, 3, 0)
    gen_dir = settings.index_dir / (settings.index_dir / "CURRENT").read_text()
    manifest = json.loads((gen_dir / "manifest.json").read_text())
    assert manifest["model"] == settings.embedding_model and manifest["dimension"] == 384
    assert manifest["count"] == 3 and set(manifest["sources"]) == {"oom", "disk", "slowq"}

    # nothing changed: same generation, nothing embedded
    again = index.update()
    assert again["generation"] == first["generation"] and again["embedded"] == 0

    # one runbook edited, one added, one removed: only the two new texts are embedded
    write_runbook(books, "disk", "Log partition full", "NodeFilesystemAlmostOutOfSpace", "cleanup_disk",
                  "The /var/log filesystem fills with rotated logs and core dumps.")
    write_runbook(books, "certs", "Certificate expiry", "CertificateExpiringSoon", "escalate",
                  "The TLS certificate of the ingress expires in less than seven days.")
    (books / "slowq.md").unlink()
    third = index.update()
    assert (third["count"], third["embedded"], third["reused"], third["removed"]) == (3, 2, 1, 1)
    assert third["generation"] != first["generation"]
    assert [h.id for h in index.search("TLS certificate about to expire", k=1)] == ["certs"]

    # metadata-only change (action) is picked up without re-embedding
    text = (books / "oom.md").read_text().replace("safety: safe", "safety: caution")
    (books / "oom.md").write_text(text)
    fourth = index.update()
    assert fourth["embedded"] == 0 and fourth["generation"] != third["generation"]
    assert index.search("container killed by the OOM killer", k=1)[0].safety == "caution"


def test_readers_follow_the_current_generation_and_old_ones_stay_complete(small_kb):
    _, settings = small_kb
    index = KnowledgeIndex(settings)
    index.update()
    index.remember_incident("X|a", "restart", "resolved")
    gens = sorted(p.name for p in settings.index_dir.glob("gen-*"))
    current = (settings.index_dir / "CURRENT").read_text()
    assert current == gens[-1]
    for gen in gens:  # every generation on disk is whole: readers may still hold an old one
        assert {p.name for p in (settings.index_dir / gen).iterdir()} == {"manifest.json", "docs.json", "index.faiss"}
    assert not list(settings.index_dir.glob(".staging-*"))
    # a second process's view: a fresh KnowledgeIndex reads the same snapshot
    assert KnowledgeIndex(settings).status()["incidents"] == 1


def test_stale_runbooks_are_reindexed_on_search(small_kb):
    books, settings = small_kb
    index = KnowledgeIndex(settings)
    index.update()
    write_runbook(books, "dns", "Name resolution broken", "CoreDNSErrorsHigh", "escalate",
                  "Pods fail to resolve service names, SERVFAIL from CoreDNS.")
    index._last_stale_check = 0.0  # skip the 2 s throttle
    assert index.search("pods cannot resolve hostnames SERVFAIL", k=1)[0].id == "dns"


def test_concurrent_writers_never_lose_incidents(small_kb):
    _, settings = small_kb
    KnowledgeIndex(settings).update()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            ix = KnowledgeIndex(settings)  # own instance, own lock file descriptor
            for i in range(4):
                ix.remember_incident(f"Alert{n}|svc{i}", "restart", "resolved", summary=f"writer {n} item {i}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    status = KnowledgeIndex(settings).status()
    assert status["incidents"] == 16 and status["count"] == 19
    assert len(KnowledgeIndex(settings).incidents()) == 16


def test_incident_written_by_another_writer_is_merged(small_kb):
    """A writer that crashed after writing its incident file is picked up by the next update."""
    _, settings = small_kb
    index = KnowledgeIndex(settings)
    index.update()
    index.remember_incident("Lost|svc", "rollback", "resolved", update_index=False)
    assert index.status()["incidents"] == 0
    index.remember_incident("Other|svc", "restart", "resolved")
    assert index.status()["incidents"] == 2


def test_learning_appends_one_vector_and_is_retrievable_right_after(small_kb, monkeypatch):
    """A learned incident is one embedding added to the live index, not a rebuild, and the
    next search (another process's view too) finds it; the result equals a full rebuild."""
    import knowledge

    _, settings = small_kb
    index = KnowledgeIndex(settings)
    index.update()
    index.remember_incident("DiskFull|billing", "cleanup_disk", "resolved", summary="billing log volume full")
    before = json.loads((settings.index_dir / (settings.index_dir / "CURRENT").read_text() / "docs.json").read_text())
    embedded: list[str] = []
    real_embed = knowledge.embed
    monkeypatch.setattr(knowledge, "embed", lambda model, texts, **kw: embedded.extend(texts) or real_embed(model, texts, **kw))
    index.remember_incident("QueueBacklog|payments", "scale_up", "resolved",
                            summary="payments consumers fell behind a growing queue backlog")
    assert len(embedded) == 1 and "payments" in embedded[0]
    current = settings.index_dir / (settings.index_dir / "CURRENT").read_text()
    docs = json.loads((current / "docs.json").read_text())
    assert docs[:-1] == before and docs[-1]["signature"] == "QueueBacklog|payments"
    assert json.loads((current / "manifest.json").read_text())["incident_files"] == 2
    reader = KnowledgeIndex(settings)  # a second process's view
    hits = reader.search("payments queue backlog growing, consumers behind", k=1)
    assert hits[0].kind == "incident" and hits[0].signature == "QueueBacklog|payments" and hits[0].action == "scale_up"
    monkeypatch.setattr(knowledge, "embed", real_embed)
    rebuilt = KnowledgeIndex(settings).update(force=True)
    assert rebuilt["count"] == len(docs)
    again = reader.search("payments queue backlog growing, consumers behind", k=1)
    assert again[0].id == hits[0].id and again[0].score == pytest.approx(hits[0].score, abs=1e-4)


CRASH_MID_LEARN = """
import os, sys
import knowledge
from knowledge import KnowledgeIndex, KnowledgeSettings
settings = KnowledgeSettings.from_config({"knowledge": {"runbooks_dir": sys.argv[1], "index_dir": sys.argv[2]}})
def die(*args, **kwargs):
    os._exit(17)  # the process dies after recording the incident, while indexing it
knowledge.embed = die
KnowledgeIndex(settings).remember_incident("HighMemoryUsage|orders", "restart", "failed", summary="orders leaks memory")
"""


def test_a_crash_mid_learn_leaves_a_record_that_is_indexed_later(small_kb):
    """The incident file is the record: written before indexing, it is evidence at once, and
    the next search notices the index misses it and rebuilds from the files."""
    import subprocess
    import sys

    books, settings = small_kb
    index = KnowledgeIndex(settings)
    index.update()
    proc = subprocess.run([sys.executable, "-c", CRASH_MID_LEARN, str(books), str(settings.index_dir)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 17, proc.stderr
    assert index.status()["incidents"] == 0  # not indexed: the process died first
    assert index.failed_actions("HighMemoryUsage|orders") == {"restart": 1}  # but recorded
    index._last_stale_check = 0.0  # skip the 2 s throttle
    hits = index.search("orders leaks memory, restart did not fix it", k=1)
    assert hits[0].signature == "HighMemoryUsage|orders" and hits[0].outcome == "failed"
    assert index.status()["incidents"] == 1
    # the lock died with the process: the next learn goes through
    index.remember_incident("HighMemoryUsage|orders", "restart", "resolved")
    assert index.status()["incidents"] == 2


def test_one_text_is_embedded_on_one_thread_and_the_setting_restored(small_kb):
    import torch

    import knowledge

    _, settings = small_kb
    torch.set_num_threads(2)
    seen: list[int] = []
    encoder = knowledge.get_embedder(settings.embedding_model)
    real = encoder.encode

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    encoder.encode = spy
    try:
        knowledge.embed(settings.embedding_model, ["one query"])
        knowledge.embed(settings.embedding_model, [f"text {i}" for i in range(knowledge.SINGLE_THREAD_TEXTS + 1)])
    finally:
        del encoder.encode
    assert seen == [1, 2] and torch.get_num_threads() == 2


def test_negative_evidence_and_later_success(small_kb):
    _, settings = small_kb
    index = KnowledgeIndex(settings)
    index.update()
    index.remember_incident("HighMemoryUsage|api", "restart", "failed")
    assert index.failed_actions("HighMemoryUsage|api") == {"restart": 1}
    assert index.failed_actions("HighMemoryUsage|web") == {}
    hits = index.search("HighMemoryUsage on api: restart did not fix it", k=4)
    assert any(h.kind == "incident" and h.outcome == "failed" for h in hits)
    index.remember_incident("HighMemoryUsage|api", "restart", "resolved")
    assert index.failed_actions("HighMemoryUsage|api") == {}


def test_remember_rejects_bad_input(small_kb):
    _, settings = small_kb
    index = KnowledgeIndex(settings)
    with pytest.raises(Exception, match="action"):
        index.remember_incident("A|b", "reboot", "resolved")
    with pytest.raises(Exception, match="outcome"):
        index.remember_incident("A|b", "restart", "maybe")


def test_missing_runbooks_dir_is_a_clear_error(tmp_path):
    settings = KnowledgeSettings.from_config({"knowledge": {"runbooks_dir": str(tmp_path / "nope"),
                                                            "index_dir": str(tmp_path / "ix")}})
    with pytest.raises(Exception, match="does not exist"):
        KnowledgeIndex(settings).update()


# --------------------------------------------------------------------------- retrieval quality

# Hand-written paraphrases: how an on-call engineer would describe the problem, avoiding
# the runbook's title words where possible.
PARAPHRASES = {
    "backup-failure": "last night's database dump did not complete and the newest snapshot is two days old",
    "bad-deploy-error-spike": "lots of HTTP 500 responses began minutes after we shipped the new release",
    "cache-eviction-storm": "redis keeps evicting keys and the hit rate has collapsed",
    "cache-memory-pressure": "memcached instance used purely for caching has hit its maxmemory limit",
    "cache-stale-data": "users see outdated product prices because old entries are still served from the cache",
    "canary-failing": "the canary pods of the new version show more errors than the stable baseline, promotion halted",
    "certificate-expiry": "the TLS cert on the ingress will lapse in three days",
    "container-logs-node-disk": "kubelet reports DiskPressure because container log files and old images fill the node",
    "container-oomkilled": "the pod was terminated with exit code 137 after exceeding its memory limit once",
    "crashloop-after-deploy": "since the rollout of the new image the pods keep restarting in CrashLoopBackOff",
    "crashloop-no-recent-deploy": "pods restart over and over but nothing was released recently; missing secret on startup",
    "data-volume-full": "the postgres data directory volume is at 95 percent",
    "database-down": "the primary database is not accepting connections, pg_up is 0",
    "dead-workers": "celery workers vanished and nothing consumes from the broker queue",
    "deadlock-thread-hang": "java threads are blocked waiting on each other and requests never complete",
    "disk-full-logs": "/var/log is nearly full because application logs were not rotated",
    "disk-full-tmp": "scratch space under /tmp ran out because of leftover build artifacts and core dumps",
    "dns-resolution-failures": "pods cannot resolve service hostnames, coredns returns SERVFAIL",
    "etcd-health": "etcd members lost their leader and wal fsync latency is high",
    "fd-exhaustion": "the process hit its open file limit: accept fails with EMFILE",
    "hpa-at-max": "the autoscaler cannot add replicas because it is already at its configured ceiling",
    "hung-health-check": "kubelet probes time out against the health endpoint though the process is still running",
    "image-pull-failure": "new pods stuck because the registry says the image tag does not exist",
    "info-inhibitor": "an informational severity alert that only exists to inhibit other notifications",
    "inode-exhaustion": "df shows free space but no inodes left because of millions of tiny session files",
    "jvm-heap-exhaustion": "java service throws OutOfMemoryError and spends all its time in garbage collection",
    "kafka-broker-down": "a kafka broker left the cluster and partitions are under-replicated",
    "kafka-consumer-lag": "the consumer group is falling further behind the topic's latest offsets",
    "latency-regression-after-deploy": "p99 response time doubled right after the new version went out",
    "load-saturation-scale-up": "traffic doubled and every replica is pegged on CPU, requests queue up",
    "memory-leak-restart": "resident memory of the stateless API grows steadily for days until near its limit",
    "node-kernel-errors": "dmesg shows soft lockup and the filesystem was remounted read-only",
    "node-not-ready": "a kubernetes worker node stopped reporting to the control plane",
    "page-cache-memory-noop": "host memory looks 95 percent used but most of it is buffers and cached pages",
    "postgres-connection-exhaustion": "postgres refuses clients: remaining connection slots are reserved",
    "postgres-idle-in-transaction": "sessions opened a transaction and then sat idle for an hour holding locks",
    "postgres-lock-waits": "many postgres backends are blocked waiting for a lock held by another session",
    "postgres-long-running-query": "one SQL statement has been executing for three hours and hogs the database",
    "postgres-replication-lag": "the standby is minutes behind the primary in WAL replay",
    "queue-backlog-scale-up": "rabbitmq messages pile up even though all consumers are healthy and busy",
    "runaway-cpu-process": "a single pod sits at 100 percent CPU in a busy loop while its siblings are idle",
    "scheduled-job-noise": "the nightly batch run always causes this load spike at 2am",
    "security-crypto-miner": "unexpected xmrig-like process mining coins and burning CPU",
    "security-login-burst": "hundreds of failed ssh logins from one address within a minute",
    "security-unknown-process": "a shell binary nobody recognises was spawned inside the container",
    "session-store-memory": "the redis that stores user sessions is close to maxmemory",
    "stuck-job-worker": "the batch job has made no progress for hours and its offset is unchanged",
    "third-party-outage": "our payment provider's API returns errors and their status page shows an incident",
    "watchdog-heartbeat": "the always-firing alert that proves the alerting pipeline works",
}


def _generated_paraphrase(book) -> str:
    """For runbooks added after the table: the symptoms prose, without alert names."""
    text = " ".join(book.sections.get("symptoms", "").split())[:400]
    return re.sub(r"\b[A-Z][a-z]+(?:[A-Z][a-z0-9]+)+\b", "", text) or ", ".join(book.signals[1:4])


def test_paraphrased_query_finds_each_runbook_in_top_3():
    config = shared_index_config()
    index = KnowledgeIndex(KnowledgeSettings.from_config(config))
    misses = []
    for book in load_runbooks(RUNBOOKS):
        query = PARAPHRASES.get(book.id) or _generated_paraphrase(book)
        assert query.lower() != book.title.lower()
        top = [h.id for h in index.search(query, k=3)]
        if book.id not in top:
            misses.append(f"{book.id}: {query!r} -> {top}")
    assert not misses, "\n".join(misses)


def test_copied_index_dir_is_self_contained(tmp_path):
    config = shared_index_config()
    src = Path(config["knowledge"]["index_dir"])
    dst = tmp_path / "copy"
    shutil.copytree(src, dst)
    settings = KnowledgeSettings.from_config({"knowledge": {**config["knowledge"], "index_dir": str(dst)}})
    assert KnowledgeIndex(settings).status()["runbooks"] == len(load_runbooks(RUNBOOKS))
